/**
 * The wire protocol's shapes: every frame a client and the server exchange, and the JSON bodies of
 * the HTTP reads. Written once, here, for the server and the SDK: this file imports nothing and
 * holds only types, so that the SDK's build can carry it into its own package (its published
 * `.d.ts` files never point into the server's sources).
 */

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

/** A stored room message as clients see it, in a `message` frame and in history. */
export interface WireMessage {
  id: string;
  seq: number;
  room: string;
  payload: string;
  from: string;
  ts: number;
}

/** One user present in a room, with how many of their connections are in it. */
export interface PresentUser {
  user: string;
  connections: number;
}

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
  | ({ type: 'message' } & WireMessage)
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

export type ServerFrameType = ServerFrame['type'];

/** `GET /api/rooms/:room/messages`: always oldest first. */
export interface HistoryResponse {
  messages: WireMessage[];
}

/** `GET /api/rooms/:room/presence`: users sorted by user, paged. */
export interface PresenceResponse {
  users: PresentUser[];
  count: number;
  partial?: true;
}

/** `POST /api/message`. */
export interface PublishResponse {
  success: true;
  id: string;
  seq: number;
  duplicate?: true;
}

/** Every HTTP error answer. */
export interface ErrorResponse {
  success: false;
  error: string;
}
