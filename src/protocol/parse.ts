/**
 * Client input → typed frame or the exact error the contract names, checked in the contract's
 * order. Pure: no I/O. The HTTP API runs the same checks on its bodies, so that a WebSocket frame
 * and an HTTP body that say the same thing get the same answer.
 */
import type { ErrorCode } from '../errors.js';
import type { ClientFrame } from './frames.js';

export interface ParseLimits {
  maxRoomLength: number;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: ErrorCode };

const NEEDS_ROOM = new Set(['join', 'leave', 'message']);
const NEEDS_PAYLOAD = new Set(['message', 'broadcast']);
const KNOWN_TYPES = new Set(['join', 'leave', 'message', 'broadcast', 'ping']);

function fail(error: ErrorCode): { ok: false; error: ErrorCode } {
  return { ok: false, error };
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

/** Checks 3 to 6 of the contract on an object whose type is known. */
function checkFields(
  type: string,
  body: Record<string, unknown>,
  limits: ParseLimits,
): ParseResult<ClientFrame> {
  const { room, payload } = body;
  const needsRoom = NEEDS_ROOM.has(type);
  const needsPayload = NEEDS_PAYLOAD.has(type);
  if (needsRoom && absent(room)) return fail('roomRequired');
  if (needsPayload && absent(payload)) return fail('payloadRequired');
  if (needsRoom && typeof room !== 'string') return fail('roomNotString');
  if (needsPayload && typeof payload !== 'string') return fail('payloadNotString');
  if (needsRoom && codePointLength(room as string, limits.maxRoomLength) > limits.maxRoomLength) {
    return fail('roomTooLong');
  }
  switch (type) {
    case 'join':
      return { ok: true, value: { type: 'join', room: room as string } };
    case 'leave':
      return { ok: true, value: { type: 'leave', room: room as string } };
    case 'message':
      return {
        ok: true,
        value: { type: 'message', room: room as string, payload: payload as string },
      };
    case 'broadcast':
      return { ok: true, value: { type: 'broadcast', payload: payload as string } };
    default:
      return { ok: true, value: { type: 'ping' } };
  }
}

export function parseClientFrame(text: string, limits: ParseLimits): ParseResult<ClientFrame> {
  const body = parseObject(text);
  if (body === undefined) return fail('invalidJson');
  const { type } = body;
  if (typeof type !== 'string' || !KNOWN_TYPES.has(type)) return fail('unknownType');
  return checkFields(type, body, limits);
}

export type HttpPublish =
  | { type: 'message'; room: string; payload: string }
  | { type: 'broadcast'; payload: string };

/** An HTTP body read as the frame of the given type (the endpoint says the type). */
export function parseHttpBody(
  type: HttpPublish['type'],
  text: string,
  limits: ParseLimits,
): ParseResult<HttpPublish> {
  const body = parseObject(text);
  if (body === undefined) return fail('invalidJson');
  return checkFields(type, body, limits) as ParseResult<HttpPublish>;
}
