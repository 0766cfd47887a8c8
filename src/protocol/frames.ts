import type { RoomMessage } from '../domain.js';

/** Frames a client may send, after parsing: a discriminated union on `type`. */
export type ClientFrame =
  | { type: 'join'; room: string }
  | { type: 'leave'; room: string }
  | { type: 'message'; room: string; payload: string }
  | { type: 'broadcast'; payload: string }
  | { type: 'ping' };

export type ClientFrameType = ClientFrame['type'];

/** Frames the server sends. Each is serialised once, whatever the number of receivers. */
export type ServerFrame =
  | { type: 'connected'; connectionId: string; user: string }
  | { type: 'joined'; room: string }
  | { type: 'left'; room: string }
  | { type: 'pong' }
  | { type: 'error'; message: string }
  | ({ type: 'message' } & RoomMessage)
  | { type: 'broadcast'; payload: string; from: string; ts: number };

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
