/**
 * Client input → typed frame or the exact error the contract names, checked in the contract's
 * order. Pure: no I/O. The HTTP API runs the same checks on its bodies, so that a WebSocket frame
 * and an HTTP body that say the same thing get the same answer.
 */
import type { ErrorCode } from '../errors.js';
import type { ClientFrame, Ref } from './frames.js';

export interface ParseLimits {
  maxRoomLength: number;
}

/** A failure carries the frame's `ref` once it was read as valid (step 2 on). */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: ErrorCode; ref?: Ref };

const NEEDS_ROOM = new Set(['join', 'leave', 'message', 'presence']);
const NEEDS_PAYLOAD = new Set(['message', 'broadcast']);
const KNOWN_TYPES = new Set([
  'join',
  'leave',
  'message',
  'broadcast',
  'presence',
  'ping',
  'refresh',
]);
const MAX_REF_LENGTH = 64;
const MAX_IDEMPOTENCY_KEY_LENGTH = 128;

function fail(error: ErrorCode, ref?: Ref): { ok: false; error: ErrorCode; ref?: Ref } {
  return ref === undefined ? { ok: false, error } : { ok: false, error, ref };
}

function absent(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** Length in code points, so that an emoji counts as one character. */
export function codePointLength(text: string, stopAfter: number): number {
  if (text.length <= stopAfter) return text.length;
  let count = 0;
  for (const _ of text) {
    count++;
    if (count > stopAfter) break;
  }
  return count;
}

function isShortText(value: unknown, maxLength: number): value is string {
  return (
    typeof value === 'string' && value !== '' && codePointLength(value, maxLength) <= maxLength
  );
}

function parseObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

/** A `ref` as the contract allows it; undefined when absent or null, false when malformed. */
function readRef(value: unknown): Ref | undefined | false {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : false;
  return isShortText(value, MAX_REF_LENGTH) ? value : false;
}

/** The `ref` of a frame refused before parsing (the rate limit), when it has a valid one. */
export function refOf(text: string): Ref | undefined {
  const body = parseObject(text);
  const ref = body === undefined ? undefined : readRef(body.ref);
  return ref === false ? undefined : ref;
}

/** Whether an idempotency key (frame field or HTTP header) has the contract's shape. */
export function isIdempotencyKey(value: unknown): value is string {
  return isShortText(value, MAX_IDEMPOTENCY_KEY_LENGTH);
}

/** Checks 4 to 8 of the contract on an object whose type is known. */
function checkFields(
  type: string,
  body: Record<string, unknown>,
  limits: ParseLimits,
  ref: Ref | undefined,
): ParseResult<ClientFrame> {
  const { room, payload } = body;
  const needsRoom = NEEDS_ROOM.has(type);
  const needsPayload = NEEDS_PAYLOAD.has(type);
  if (needsRoom && absent(room)) return fail('roomRequired', ref);
  if (needsPayload && absent(payload)) return fail('payloadRequired', ref);
  if (needsRoom && typeof room !== 'string') return fail('roomNotString', ref);
  if (needsPayload && typeof payload !== 'string') return fail('payloadNotString', ref);
  const since = type === 'join' ? body.since : undefined;
  if (since !== undefined && since !== null) {
    if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0) {
      return fail('invalidSince', ref);
    }
  }
  const key = type === 'message' ? body.idempotencyKey : undefined;
  if (key !== undefined && key !== null && !isIdempotencyKey(key)) {
    return fail('invalidIdempotencyKey', ref);
  }
  const presence = type === 'join' ? body.presence : undefined;
  if (presence !== undefined && presence !== null && typeof presence !== 'boolean') {
    return fail('invalidPresence', ref);
  }
  if (needsRoom && codePointLength(room as string, limits.maxRoomLength) > limits.maxRoomLength) {
    return fail('roomTooLong', ref);
  }
  const frame = build(type, room as string, payload as string, since, key, presence === true);
  if (ref !== undefined) frame.ref = ref;
  return { ok: true, value: frame };
}

function build(
  type: string,
  room: string,
  payload: string,
  since: unknown,
  key: unknown,
  presence: boolean,
): ClientFrame {
  switch (type) {
    case 'join': {
      const join: Extract<ClientFrame, { type: 'join' }> = { type: 'join', room };
      if (typeof since === 'number') join.since = since;
      if (presence) join.presence = true;
      return join;
    }
    case 'leave':
      return { type: 'leave', room };
    case 'message':
      return typeof key === 'string'
        ? { type: 'message', room, payload, idempotencyKey: key }
        : { type: 'message', room, payload };
    case 'broadcast':
      return { type: 'broadcast', payload };
    case 'presence':
      return { type: 'presence', room };
    default:
      return { type: 'ping' };
  }
}

export function parseClientFrame(text: string, limits: ParseLimits): ParseResult<ClientFrame> {
  const body = parseObject(text);
  if (body === undefined) return fail('invalidJson');
  const ref = readRef(body.ref);
  if (ref === false) return fail('invalidRef');
  const { type } = body;
  if (typeof type !== 'string' || !KNOWN_TYPES.has(type)) return fail('unknownType', ref);
  // A refresh has no room or payload: its one check comes right after the type's.
  if (type === 'refresh') return refreshFrame(body.jwt, ref);
  return checkFields(type, body, limits, ref);
}

/** A `refresh` frame: `jwt` missing or not a string → `Invalid token`, as a bad token would be. */
function refreshFrame(jwt: unknown, ref: Ref | undefined): ParseResult<ClientFrame> {
  if (typeof jwt !== 'string') return fail('invalidToken', ref);
  return {
    ok: true,
    value: ref === undefined ? { type: 'refresh', jwt } : { type: 'refresh', jwt, ref },
  };
}

export type HttpPublish =
  | { type: 'message'; room: string; payload: string; idempotencyKey?: string }
  | { type: 'broadcast'; payload: string };

/**
 * An HTTP body read as the frame of the given type (the endpoint says the type). The
 * `Idempotency-Key` header of `POST /api/message` is checked where a frame's `idempotencyKey` is;
 * a body's own `ref` or `idempotencyKey` fields are not read (unknown fields are ignored).
 */
export function parseHttpBody(
  type: HttpPublish['type'],
  text: string,
  limits: ParseLimits,
  idempotencyKey?: string,
): ParseResult<HttpPublish> {
  const body = parseObject(text);
  if (body === undefined) return fail('invalidJson');
  const fields: Record<string, unknown> = { room: body.room, payload: body.payload };
  if (type === 'message' && idempotencyKey !== undefined) fields.idempotencyKey = idempotencyKey;
  return checkFields(type, fields, limits, undefined) as ParseResult<HttpPublish>;
}
