/**
 * The generator's framing layer: the same join / message / delivery exchange spoken as socket-base's
 * JSON frames (`plain`, also spoken by the minimal ws and uWS servers) or as Socket.IO events over
 * the engine.io v4 framing (`socketio`). A delivery is recognised by the `~` that starts every
 * payload the generator sends (`~STEP.SENT_US~padding`): no JSON parse on the receiving path.
 */
import { signHs256 } from './jwt.js';
import type { ConnAuth, Protocol } from './messages.js';

export const TILDE = 0x7e;
const DOT = 0x2e;
const ZERO = 0x30;

/** What a control frame (one without `~`) means to the connection. */
export type Control =
  | { kind: 'connected' }
  | { kind: 'joined' }
  | { kind: 'presence' }
  | { kind: 'reply'; text: string }
  | { kind: 'error'; message: string }
  | { kind: 'ignore' };

export interface Framing {
  path(auth: ConnAuth | undefined): string;
  /** The first frame to send once the upgrade is done (Socket.IO waits for the open packet). */
  joinOnOpen: boolean;
  join(room: string): string;
  message(room: string, payload: string): string;
  /** Reads a control frame; `join` asks the caller to send its join now. */
  control(text: string): Control | { kind: 'join' };
}

const plain: Framing = {
  path: (auth) =>
    auth === undefined
      ? '/ws'
      : `/ws/${encodeURIComponent(auth.hash)}?jwt=${signHs256(auth.secret, auth.sub)}`,
  joinOnOpen: true,
  join: (room) => `{"type":"join","room":${JSON.stringify(room)}}`,
  message: (room, payload) =>
    `{"type":"message","room":${JSON.stringify(room)},"payload":"${payload}"}`,
  control(text) {
    if (text.startsWith('{"type":"joined"')) return { kind: 'joined' };
    if (text.startsWith('{"type":"connected"')) return { kind: 'connected' };
    if (text.startsWith('{"type":"presence",')) return { kind: 'presence' };
    if (text.startsWith('{"type":"error"')) {
      const parsed: unknown = JSON.parse(text);
      const message =
        typeof parsed === 'object' && parsed !== null && 'message' in parsed
          ? String(parsed.message)
          : text;
      return { kind: 'error', message };
    }
    return { kind: 'ignore' };
  },
};

const socketio: Framing = {
  path: () => '/socket.io/?EIO=4&transport=websocket',
  joinOnOpen: false,
  join: (room) => `42["join",${JSON.stringify(room)}]`,
  message: (room, payload) =>
    `42["message",{"room":${JSON.stringify(room)},"payload":"${payload}"}]`,
  control(text) {
    if (text === '2') return { kind: 'reply', text: '3' };
    if (text.startsWith('0{')) return { kind: 'reply', text: '40' };
    if (text.startsWith('40')) return { kind: 'join' };
    if (text.startsWith('42["joined"')) return { kind: 'joined' };
    if (text.startsWith('44')) return { kind: 'error', message: `connect_error ${text.slice(2)}` };
    return { kind: 'ignore' };
  },
};

/** A join that recovers from `since` (socket-base's JSON frames only: no other server recovers). */
export function joinSinceFrame(room: string, since: number): string {
  return `{"type":"join","room":${JSON.stringify(room)},"since":${since}}`;
}

/** A join that asks for the room's presence (socket-base's JSON frames only). */
export function joinPresenceFrame(room: string): string {
  return `{"type":"join","room":${JSON.stringify(room)},"presence":true}`;
}

/** The position a `joined` frame gives (socket-base); undefined when it carries none. */
export function joinedPosition(
  text: string,
): { seq: number; recovered: boolean | undefined } | undefined {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || !('seq' in parsed)) return undefined;
  const { seq } = parsed;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return undefined;
  const recovered = 'recovered' in parsed ? parsed.recovered : undefined;
  return { seq, recovered: typeof recovered === 'boolean' ? recovered : undefined };
}

export function framingOf(protocol: Protocol): Framing {
  return protocol === 'plain' ? plain : socketio;
}

/** The payload of one message: its step and send time, then padding up to `bytes`. */
export function payloadOf(step: number, sentUs: number, bytes: number): string {
  const head = `~${step}.${Math.round(sentUs)}~`;
  return bytes > head.length ? head + 'x'.repeat(bytes - head.length) : head;
}

const SEQ_KEY = Buffer.from('"seq":');

/**
 * The `seq` of the delivery between `from` and `end` (-1 if none), read without a JSON parse. The
 * key cannot occur inside a string value: JSON escapes every quote there.
 */
export function readSeq(data: Buffer, from: number, end: number): number {
  const at = data.indexOf(SEQ_KEY, from);
  if (at === -1 || at >= end) return -1;
  let position = at + SEQ_KEY.length;
  let seq = 0;
  let digit = (data[position] ?? 0) - ZERO;
  if (digit < 0 || digit > 9) return -1;
  while (position < end && digit >= 0 && digit <= 9) {
    seq = seq * 10 + digit;
    digit = (data[++position] ?? 0) - ZERO;
  }
  return seq;
}

/** Where readStamp leaves what it read: one shared object, no allocation per delivery. */
export const stamp = { step: 0, sentUs: 0 };

/** Reads the step and send time (µs) after the `~` at `at` into `stamp`; false if malformed. */
export function readStamp(data: Buffer, at: number, end: number): boolean {
  let position = at + 1;
  let step = 0;
  let digit = (data[position] ?? 0) - ZERO;
  if (digit < 0 || digit > 9) return false;
  while (position < end && digit >= 0 && digit <= 9) {
    step = step * 10 + digit;
    digit = (data[++position] ?? 0) - ZERO;
  }
  if (data[position] !== DOT) return false;
  let sentUs = 0;
  digit = (data[++position] ?? 0) - ZERO;
  while (position < end && digit >= 0 && digit <= 9) {
    sentUs = sentUs * 10 + digit;
    digit = (data[++position] ?? 0) - ZERO;
  }
  if (data[position] !== TILDE) return false;
  stamp.step = step;
  stamp.sentUs = sentUs;
  return true;
}
