import type { RoomMessage } from '../domain.js';

/** A client's reference on a frame, echoed on its direct answer: 1–64 characters or a safe integer. */
export type Ref = string | number;

/** Frames a client may send, after parsing: a discriminated union on `type`. */
export type ClientFrame =
  | { type: 'join'; room: string; since?: number; presence?: boolean; ref?: Ref }
  | { type: 'leave'; room: string; ref?: Ref }
  | { type: 'message'; room: string; payload: string; idempotencyKey?: string; ref?: Ref }
  | { type: 'broadcast'; payload: string; ref?: Ref }
  | { type: 'presence'; room: string; ref?: Ref }
  | { type: 'ping'; ref?: Ref }
  | { type: 'refresh'; jwt: string; ref?: Ref };

export type ClientFrameType = ClientFrame['type'];

/** Frames the server sends. Each is serialised once, whatever the number of receivers. */
export type ServerFrame =
  | { type: 'connected'; connectionId: string; user: string }
  | { type: 'joined'; room: string; seq: number; recovered?: boolean; ref?: Ref }
  | { type: 'left'; room: string; ref?: Ref }
  | { type: 'pong'; ref?: Ref }
  /** `exp` in seconds since the epoch, as the token says; null: the new token never expires. */
  | { type: 'refreshed'; exp: number | null; ref?: Ref }
  | { type: 'error'; message: string; ref?: Ref }
  | {
      type: 'ack';
      ref: Ref;
      room?: string;
      id?: string;
      seq?: number;
      duplicate?: true;
    }
  | ({ type: 'message' } & RoomMessage)
  | { type: 'broadcast'; payload: string; from: string; ts: number }
  | {
      type: 'presence';
      room: string;
      users: PresentUser[];
      count: number;
      partial?: true;
      ref?: Ref;
    }
  | { type: 'presence_join' | 'presence_leave'; room: string; user: string };

/** One user present in a room, with how many of their connections are in it. */
export interface PresentUser {
  user: string;
  connections: number;
}

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
