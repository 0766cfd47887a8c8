/** What the SQLite and PostgreSQL stores share in committing appends by batches. */
import type { Appended, NewMessage } from './store.js';

export interface PendingAppend {
  message: NewMessage;
  resolve: (message: Appended) => void;
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
  stored: readonly Appended[],
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

/** How long a used idempotency key answers as a duplicate unless the store is told otherwise. */
export const IDEMPOTENCY_WINDOW_MS = 86_400_000;

export interface IdempotencyOptions {
  /**
   * How long after its first use an idempotency key makes a message a duplicate, in ms (default
   * IDEMPOTENCY_WINDOW_MS); an older key counts as unused.
   */
  idempotencyWindowMs?: number;
}

/** Whether any message of the batch carries an idempotency key (a batch without pays nothing). */
export function anyKeyed(messages: readonly NewMessage[]): boolean {
  return messages.some((message) => message.idempotencyKey !== undefined);
}

/**
 * For each message of a batch, the index of the first earlier message of the same project with the
 * same idempotency key, or -1: the copy is that message's duplicate, whatever the database holds.
 */
export function earlierCopies(messages: readonly NewMessage[]): number[] {
  const first = new Map<string, Map<string, number>>();
  return messages.map(({ project, idempotencyKey }, i) => {
    if (idempotencyKey === undefined) return -1;
    let keys = first.get(project);
    if (!keys) {
      keys = new Map();
      first.set(project, keys);
    }
    const earlier = keys.get(idempotencyKey);
    if (earlier !== undefined) return earlier;
    keys.set(idempotencyKey, i);
    return -1;
  });
}

/**
 * The answers of a batch: `answers` holds those of the messages that were stored or found used,
 * `copies` (from earlierCopies) says which others are copies; each copy answers its first
 * message's place.
 */
export function withCopies(
  answers: readonly (Appended | undefined)[],
  copies: readonly number[],
): Appended[] {
  return answers.map((answer, i): Appended => {
    const first = answers[copies[i] ?? -1];
    if (first) return { duplicate: true, room: first.room, id: first.id, seq: first.seq };
    if (!answer) throw new Error('An idempotency key was neither stored nor found');
    return answer;
  });
}
