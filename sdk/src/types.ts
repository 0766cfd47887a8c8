import type { SocketBaseError } from './errors.js';
import type { PresentUser, Ref, ServerFrame, WireMessage } from './generated/wire.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A stored room message, delivered once, in `seq` order. */
export type RoomMessage = WireMessage;

export interface BroadcastEvent {
  payload: string;
  from: string;
  ts: number;
}

/** Another user became present in the room (first connection) or stopped being (last one). */
export interface PresenceEvent {
  type: 'join' | 'leave';
  user: string;
}

export interface ClientEvents extends Record<string, unknown> {
  state: ConnectionState;
  broadcast: BroadcastEvent;
  error: SocketBaseError;
}

export interface RoomEvents extends Record<string, unknown> {
  message: RoomMessage;
  presence: PresenceEvent;
  /** Recovery was impossible (gap too long, retention, a new log): reload `room.history()`. */
  reset: undefined;
}

export interface JoinResult {
  /** The room's position when the membership began: the `seq` of its last stored message. */
  seq: number;
}

export interface SendResult {
  id: string;
  seq: number;
  /** The server had already stored this message (a retry after a lost answer). */
  duplicate?: true;
}

export interface HistoryOptions {
  limit?: number;
  before?: string;
  after?: string;
  since?: number;
}

export interface PresenceOptions {
  limit?: number;
  after?: string;
}

export interface PresenceList {
  users: PresentUser[];
  count: number;
  /** The shared state was away: the list is what one instance knows. */
  partial?: true;
}

/** A frame sent with a `ref`, waiting for its direct answer on the current connection. */
export interface Awaiting {
  answer(frame: ServerFrame): void;
  /** The connection closed before the answer came. */
  lost(): void;
}

export type { PresentUser, Ref };
