/** What the SQLite and PostgreSQL stores share in committing appends by batches. */
import type { RoomMessage } from '../domain.js';
import type { NewMessage } from './store.js';

export interface PendingAppend {
  message: NewMessage;
  resolve: (message: RoomMessage) => void;
  reject: (error: unknown) => void;
}

const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;

/**
 * A payload as UTF-8 can hold it: a lone UTF-16 surrogate cannot be stored as UTF-8, and becomes
 * U+FFFD here, so that what `append` answers is exactly what history gives back. Every well-formed
 * string, NUL included, is returned unchanged.
 */
export function storablePayload(payload: string): string {
  return LONE_SURROGATE.test(payload) ? payload.replace(LONE_SURROGATES, '\uFFFD') : payload;
}

/**
 * Resolves a committed batch's promises in queue order (which is seq order within each room) and
 * reports its size and commit time. A failing metrics hook never fails committed messages.
 */
export function settleBatch<T extends PendingAppend>(
  batch: readonly T[],
  stored: readonly RoomMessage[],
  seconds: number,
  onBatch: ((size: number, seconds: number) => void) | undefined,
): void {
  batch.forEach((pending, i) => {
    const message = stored[i];
    if (message) pending.resolve(message);
    else pending.reject(new Error('Message was not stored'));
  });
  try {
    onBatch?.(batch.length, seconds);
  } catch {
    // Metrics must never fail messages that are already committed.
  }
}
