/**
 * What crosses between SqliteWorkerStore (the event loop's side) and its thread (sqlite-worker.ts).
 * Appends travel packed: a turn's appends are one message holding one string and one array of
 * lengths, and their answers one Float64Array (transferred, not copied) plus the few strings a
 * number cannot carry. A structured clone of one object per message would cost the event loop
 * more than the message's own framing.
 */
import type { Appended, NewMessage } from './store.js';

/** The Store methods the thread answers besides `append`, with their arguments. */
export type CallMethod =
  | 'createProject'
  | 'getProject'
  | 'getProjects'
  | 'listProjects'
  | 'countProjects'
  | 'deleteProject'
  | 'setProjectSecret'
  | 'updateProject'
  | 'revokeTokens'
  | 'revocations'
  | 'history'
  | 'range'
  | 'lastSeq'
  | 'purgeExpired'
  | 'rooms'
  | 'storedMessages'
  | 'ping';

/** A turn's appends: the strings of every message back to back, and where each one ends. */
export interface PackedAppends {
  text: string;
  /** FIELDS_PER_MESSAGE lengths per message; NO_KEY where there is no idempotency key. */
  lengths: Uint32Array;
}

export type ToWorker =
  | { kind: 'append'; batch: number; appends: PackedAppends }
  | { kind: 'call'; call: number; method: CallMethod; args: unknown[] }
  | { kind: 'close' };

/** An error as it crossed the thread: SQLite's code kept, so that callers can tell faults apart. */
export interface WireError {
  message: string;
  code: string | undefined;
}

/** A batch's answers: ANSWER_WIDTH numbers per message, in the order they were sent. */
export interface PackedAnswers {
  numbers: Float64Array;
  /** The room of each duplicate's first message, in order (it may be another room). */
  duplicateRooms: string[];
  /** The error of each failed append, in order. */
  errors: WireError[];
}

export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'opening-failed'; error: WireError }
  /**
   * A batch's answers, and the commits made since the last answers (StoreStats.onBatch): size and
   * seconds, in pairs. Every commit settles appends, so its figures always go out with answers.
   */
  | { kind: 'appended'; batch: number; answers: PackedAnswers; commits: number[] }
  | { kind: 'answered'; call: number; value: unknown }
  | { kind: 'call-failed'; call: number; error: WireError }
  /** A fault the store worked around (StoreStats.onFault). */
  | { kind: 'fault'; error: WireError; what: string }
  | { kind: 'closed' };

const FIELDS_PER_MESSAGE = 5;
const NO_KEY = 0xffffffff;
const ANSWER_WIDTH = 4;
const STORED = 0;
const DUPLICATE = 1;
const FAILED = 2;

export function packAppends(messages: readonly NewMessage[]): PackedAppends {
  const parts: string[] = [];
  const lengths = new Uint32Array(messages.length * FIELDS_PER_MESSAGE);
  let at = 0;
  for (const { project, room, payload, from, idempotencyKey } of messages) {
    parts.push(project, room, payload, from, idempotencyKey ?? '');
    lengths[at++] = project.length;
    lengths[at++] = room.length;
    lengths[at++] = payload.length;
    lengths[at++] = from.length;
    lengths[at++] = idempotencyKey === undefined ? NO_KEY : idempotencyKey.length;
  }
  return { text: parts.join(''), lengths };
}

export function unpackAppends({ text, lengths }: PackedAppends): NewMessage[] {
  const messages: NewMessage[] = [];
  let offset = 0;
  const next = (length: number): string => {
    const value = text.slice(offset, offset + length);
    offset += length;
    return value;
  };
  for (let at = 0; at < lengths.length; at += FIELDS_PER_MESSAGE) {
    const project = next(lengths[at] as number);
    const room = next(lengths[at + 1] as number);
    const payload = next(lengths[at + 2] as number);
    const from = next(lengths[at + 3] as number);
    const keyLength = lengths[at + 4] as number;
    const message: NewMessage = { project, room, payload, from };
    if (keyLength !== NO_KEY) message.idempotencyKey = next(keyLength);
    messages.push(message);
  }
  return messages;
}

export function packAnswers(results: readonly PromiseSettledResult<Appended>[]): PackedAnswers {
  const numbers = new Float64Array(results.length * ANSWER_WIDTH);
  const duplicateRooms: string[] = [];
  const errors: WireError[] = [];
  results.forEach((result, i) => {
    const at = i * ANSWER_WIDTH;
    if (result.status === 'rejected') {
      numbers[at] = FAILED;
      errors.push(toWire(result.reason));
      return;
    }
    const answer = result.value;
    numbers[at + 1] = Number(answer.id);
    numbers[at + 2] = answer.seq;
    if ('duplicate' in answer) {
      numbers[at] = DUPLICATE;
      duplicateRooms.push(answer.room);
    } else {
      numbers[at] = STORED;
      numbers[at + 3] = answer.ts;
    }
  });
  return { numbers, duplicateRooms, errors };
}

/**
 * Settles the appends of one batch, in the order they were sent (which is seq order within each
 * room), from their answers. A stored message is rebuilt from what was sent: only its id, seq
 * and ts crossed back.
 */
export function settleAppends(
  sent: readonly NewMessage[],
  { numbers, duplicateRooms, errors }: PackedAnswers,
  settle: (i: number, answer: Appended | Error) => void,
): void {
  let duplicates = 0;
  let failures = 0;
  for (let i = 0; i < sent.length; i++) {
    const at = i * ANSWER_WIDTH;
    const kind = numbers[at];
    const id = String(numbers[at + 1]);
    const seq = numbers[at + 2] as number;
    if (kind === FAILED) {
      settle(i, fromWire(errors[failures++]));
    } else if (kind === DUPLICATE) {
      settle(i, { duplicate: true, room: duplicateRooms[duplicates++] ?? '', id, seq });
    } else {
      const { room, payload, from } = sent[i] as NewMessage;
      settle(i, { id, seq, room, payload, from, ts: numbers[at + 3] as number });
    }
  }
}

export function toWire(error: unknown): WireError {
  const code = (error as { code?: unknown } | null)?.code;
  return {
    message: error instanceof Error ? error.message : String(error),
    code: typeof code === 'string' ? code : undefined,
  };
}

/** An Error with the message and SQLite code it had on the thread. */
export function fromWire(wire: WireError | undefined): Error {
  const error = new Error(wire?.message ?? 'Message was not stored') as Error & { code?: string };
  if (wire?.code !== undefined) error.code = wire.code;
  return error;
}
