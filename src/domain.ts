/**
 * The domain types that cross seams: a stored room message and a project, and the stores' order of
 * room names. They belong to no layer (store, bus, cluster state, protocol and realtime all speak
 * them), so this module imports nothing.
 */

/** A message as stored and delivered: the store assigns `id`, `seq` and `ts`. */
export interface RoomMessage {
  id: string;
  seq: number;
  room: string;
  payload: string;
  from: string;
  ts: number;
}

/**
 * A room as the store knows it: one that has had at least one message. `lastSeq` is the room's
 * LAST (the `seq` of its last message, whether or not retention removed that message since);
 * `lastTs` the `ts` of that message, or null when the store no longer knows it (a message removed
 * by retention before the store kept that time beside the position).
 */
export interface StoredRoom {
  room: string;
  lastSeq: number;
  lastTs: number | null;
}

/** `null`: the project has no value of its own (the server-wide default applies, if any). */
export interface RetentionSettings {
  maxAgeSeconds: number | null;
  maxMessagesPerRoom: number | null;
}

export interface LimitSettings {
  maxConnections: number | null;
  maxConnectionsPerUser: number | null;
  maxMessagesPerSecond: number | null;
}

/** A project's own settings, as `PATCH /admin/projects/:hash` sets them. */
export interface ProjectSettings {
  retention: RetentionSettings;
  limits: LimitSettings;
}

/** The settings of a project that has none of its own. */
export function noSettings(): ProjectSettings {
  return {
    retention: { maxAgeSeconds: null, maxMessagesPerRoom: null },
    limits: { maxConnections: null, maxConnectionsPerUser: null, maxMessagesPerSecond: null },
  };
}

export interface Project {
  hash: string;
  name: string;
  jwtSecret: string;
  createdAt: string;
  settings: ProjectSettings;
}

export type ProjectSummary = Omit<Project, 'jwtSecret' | 'settings'>;

/**
 * A project's token revocations (`POST /admin/projects/:hash/disconnect` with `revoke`): a token
 * issued before its not-before (an `iat` earlier, in epoch seconds as JWTs count, or no `iat`) is
 * refused. `all` covers every user of the project (null: none); `users` one user (`sub`) each, and
 * holds only not-befores later than `all` (an earlier one is covered by it).
 */
export interface Revocations {
  all: number | null;
  users: ReadonlyMap<string, number>;
}

/**
 * The answer to a message whose idempotency key its project already used within the window: the
 * first message's place. It was neither stored nor delivered again.
 */
export interface DuplicateMessage {
  duplicate: true;
  room: string;
  id: string;
  seq: number;
}

/** Whether an append's answer is the first message's place rather than a new message. */
export function isDuplicate(
  appended: RoomMessage | DuplicateMessage,
): appended is DuplicateMessage {
  return 'duplicate' in appended;
}

/**
 * Code-point order (UTF-8 byte order, the stores' order): UTF-16 code-unit order but for
 * surrogates (U+10000 and up), which sort after U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return codePointRank(x) - codePointRank(y);
    return x - y;
  }
  return a.length - b.length;
}

/** Units from U+D800 on, ranked by the code points they begin: surrogates after U+FFFF. */
function codePointRank(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}
