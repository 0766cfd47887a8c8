/**
 * The history read of `GET /api/rooms/:room/messages`, shared with the admin's
 * `GET /admin/projects/:hash/rooms/:room/messages`: the query's checks, in the contract's order,
 * and the store read with its errors.
 */
import type { RoomMessage } from '../domain.js';
import type { ErrorCode } from '../errors.js';
import { codePointLength } from '../protocol/parse.js';
import type { HistoryQuery, Store } from '../store/store.js';

export const DEFAULT_HISTORY_LIMIT = 50;
export const MAX_HISTORY_LIMIT = 1000;

const WHOLE_NUMBER = /^\d+$/;

export type Checked<T> = { ok: true; value: T } | { ok: false; error: ErrorCode };

/**
 * A `limit` query parameter: absent → `fallback`; a whole number ≥ 1 → itself, capped at `max`;
 * anything else → `Limit must be a positive integer`.
 */
export function parseLimit(raw: string | null, fallback: number, max: number): Checked<number> {
  if (raw === null) return { ok: true, value: fallback };
  if (!WHOLE_NUMBER.test(raw) || Number(raw) < 1) return { ok: false, error: 'invalidLimit' };
  return { ok: true, value: Math.min(Number(raw), max) };
}

/**
 * The room and query of a history read, checked in order: the room's length, `limit`, then
 * `since` (a safe integer ≥ 0, never with `after`/`before`).
 */
export function parseHistoryQuery(
  room: string,
  search: URLSearchParams,
  maxRoomLength: number,
): Checked<HistoryQuery> {
  if (codePointLength(room, maxRoomLength) > maxRoomLength) {
    return { ok: false, error: 'roomTooLong' };
  }
  const limit = parseLimit(search.get('limit'), DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT);
  if (!limit.ok) return limit;
  const after = search.get('after') ?? undefined;
  const before = search.get('before') ?? undefined;
  const rawSince = search.get('since');
  if (rawSince === null) return { ok: true, value: { limit: limit.value, after, before } };
  const since = WHOLE_NUMBER.test(rawSince) ? Number(rawSince) : Number.NaN;
  if (!Number.isSafeInteger(since) || after !== undefined || before !== undefined) {
    return { ok: false, error: 'invalidSince' };
  }
  return { ok: true, value: { limit: limit.value, since } };
}

/**
 * Reads the page: `Unknown message id` for a cursor that is not a message of the room,
 * `Store unavailable` when the store fails.
 */
export async function readHistory(
  store: Pick<Store, 'history'>,
  project: string,
  room: string,
  query: HistoryQuery,
): Promise<Checked<RoomMessage[]>> {
  let messages: RoomMessage[] | undefined;
  try {
    messages = await store.history(project, room, query);
  } catch {
    return { ok: false, error: 'storeUnavailable' };
  }
  if (messages === undefined) return { ok: false, error: 'unknownMessageId' };
  // Stores build each message with the keys in the documented order: id, seq, room, payload,
  // from, ts.
  return { ok: true, value: messages };
}
