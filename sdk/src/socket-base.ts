/**
 * @socket-base/client: the client SDK for socket-base. Runs in browsers and on Node 20 (pass
 * `WebSocket` from the `ws` package there). See README.md for every option, event and error.
 */
export { backoffDelay, type ReconnectOptions } from './backoff.js';
export { SocketBase, type SocketBaseOptions } from './client.js';
export {
  CLIENT_ERRORS,
  type ClientErrorCode,
  SocketBaseError,
  type SocketBaseErrorCode,
} from './errors.js';
export { CLOSE_CODES, ERRORS } from './generated/catalogue.js';
export type {
  ClientFrame,
  HistoryResponse,
  PresenceResponse,
  ServerFrame,
  WireMessage,
} from './generated/wire.js';
export type {
  FetchFunction,
  FetchResponse,
  WebSocketConstructor,
  WebSocketLike,
} from './host.js';
export { Room, type RoomOptions } from './room.js';
export type { TokenSource } from './token.js';
export type {
  BroadcastEvent,
  ClientEvents,
  ConnectionState,
  HistoryOptions,
  JoinResult,
  PresenceEvent,
  PresenceList,
  PresentUser,
  RoomEvents,
  RoomMessage,
  SendResult,
} from './types.js';
