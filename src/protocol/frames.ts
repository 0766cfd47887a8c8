import type { RoomMessage } from '../domain.js';
import type { ServerFrame, WireMessage } from './wire.js';

export type {
  ClientFrame,
  ClientFrameType,
  PresentUser,
  Ref,
  ServerFrame,
  WireMessage,
} from './wire.js';

/** A stored message must be what the wire says a message is: checked here, at compile time. */
type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const storedIsWire: SameShape<RoomMessage, WireMessage> = true;
void storedIsWire;

export function messageFrame(message: RoomMessage): string {
  // Key order is part of what clients see; build it explicitly rather than spreading a row.
  return JSON.stringify({
    type: 'message',
    room: message.room,
    payload: message.payload,
    from: message.from,
    id: message.id,
    seq: message.seq,
    ts: message.ts,
  });
}

export function broadcastFrame(payload: string, from: string, ts: number): string {
  return JSON.stringify({ type: 'broadcast', payload, from, ts });
}

export function serverFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}
