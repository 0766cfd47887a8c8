/**
 * One `ws` socket as the realtime layer's Connection: prepared frames written straight to the
 * network socket, coalesced per turn of the event loop, and the frames that come before admission
 * held (within a bound) until there is a handler for them.
 */
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { CLOSE_CODES } from '../errors.js';
import type { ClientHandler, Connection, PreparedFrame } from './connection.js';
import { netSocketOf, prepareFrame } from './ws-internals.js';

/** A client address's share of MAX_CONNECTIONS_PER_IP, one object for all its connections. */
export interface AddressSlot {
  readonly address: string;
  count: number;
}

/**
 * Writes to many sockets within one turn of the event loop are coalesced: a socket is corked on its
 * first prepared frame and every corked socket is uncorked once, on the next turn, so a burst of
 * frames to one client costs one write to the network rather than one per frame. One queue per
 * transport, so that two servers in a process flush their own sockets.
 */
export class CorkQueue {
  readonly #corked: WsConnection[] = [];
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    for (const connection of this.#corked.splice(0)) connection.uncork();
  };

  add(connection: WsConnection): void {
    this.#corked.push(connection);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }
}

/** What the connections of one transport share: one object per transport, a pointer per socket. */
export interface TransportShared {
  /**
   * The open sockets (ws's `clientTracking` is off: it would give each socket a closure and a
   * second `close` listener of its own); a socket leaves on its `close` event.
   */
  readonly sockets: Set<WebSocket>;
  readonly counts: { framesIn: number; framesOut: number };
  readonly corks: CorkQueue;
  /** RATE_BURST: frames that may wait for admission. */
  readonly maxEarlyFrames: number;
  onError(error: unknown): void;
  /** More frames than may wait came before admission; the socket is being closed with 1008. */
  onEarlyOverflow(connection: WsConnection): void;
  /** The socket is gone: its place (and its address's) is free. */
  onGone(connection: WsConnection): void;
}

interface EarlyFrame {
  data: Buffer;
  isBinary: boolean;
}

/** `early` of a socket closed for sending too much before admission: what comes is dropped. */
const DISCARDED: readonly EarlyFrame[] = Object.freeze([]);

export class WsConnection implements Connection {
  readonly #socket: WebSocket;
  readonly #net: Socket;
  readonly shared: TransportShared;
  /** Bytes written this turn, held by the cork: not yet a sign of a slow reader. */
  #heldThisTurn = 0;
  /** Set once the socket is admitted; frames that come before wait in `early`. */
  handler: ClientHandler | undefined;
  early: readonly EarlyFrame[] | undefined = [];
  closed = false;
  /**
   * The network socket's bytesRead when the last ping went out (-1: none yet). Unchanged at the
   * next heartbeat: neither a pong nor any frame came back since. Read from the socket rather than
   * set by a `pong` listener, so that a socket carries no listener for it.
   */
  pingedAt = -1;
  /** Its address's count, when MAX_CONNECTIONS_PER_IP is set; given back when the socket goes. */
  slot: AddressSlot | undefined;

  constructor(socket: WebSocket, shared: TransportShared, slot: AddressSlot | undefined) {
    this.#socket = socket;
    this.#net = netSocketOf(socket);
    this.shared = shared;
    this.slot = slot;
  }

  receive(data: Buffer, isBinary: boolean): void {
    const handler = this.handler;
    if (handler === undefined) return;
    if (isBinary && !isUtf8(data)) handler.onUnreadable();
    else handler.onText(data.toString('utf8'));
  }

  /** Keeps a frame that came before admission; one past the bound closes the socket with 1008. */
  hold(early: readonly EarlyFrame[], data: Buffer, isBinary: boolean): void {
    if (early === DISCARDED) return;
    if (early.length < this.shared.maxEarlyFrames) {
      (early as EarlyFrame[]).push({ data, isBinary });
      return;
    }
    const { code, reason } = CLOSE_CODES.policyViolation;
    // The close goes now, with the 101 it would otherwise wait behind until admission ends.
    this.refuse(undefined, code, reason);
    this.shared.onEarlyOverflow(this);
  }

  /** Closes a socket that will not be served (with its error frame first, if any). */
  refuse(errorFrame: string | undefined, code: number, reason: string): void {
    this.early = DISCARDED;
    if (errorFrame !== undefined) this.send(errorFrame);
    this.close(code, reason);
    this.releaseHandshake();
  }

  /** Hands the frames that waited, then every later one, to the admitted socket's handler. */
  admitted(handler: ClientHandler): void {
    this.handler = handler;
    this.releaseHandshake();
    const queued = this.early;
    // A socket closed for what it sent before admission stays deaf until it is gone.
    if (queued !== DISCARDED) {
      this.early = undefined;
      for (const frame of queued ?? []) this.receive(frame.data, frame.isBinary);
    }
    if (this.closed) handler.onClose();
  }

  send(text: string): void {
    // The same path as shared frames: one buffer, coalesced with the turn's other frames.
    this.sendPrepared(prepareFrame(text));
  }

  sendPrepared(frame: PreparedFrame): void {
    if (this.#socket.readyState !== 1) return;
    this.shared.counts.framesOut++;
    // Safe beside ws's own writes: without permessage-deflate its sender writes synchronously and
    // never queues, so frames stay whole and in order on the socket.
    if (this.#net.writableCorked === 0) {
      this.#net.cork();
      this.#heldThisTurn = 0;
      this.shared.corks.add(this);
    }
    this.#heldThisTurn += frame.length;
    this.#net.write(frame);
  }

  uncork(): void {
    this.#heldThisTurn = 0;
    this.#net.uncork();
  }

  /** Sends the handshake's answer, held back since the upgrade, with the frames admission wrote. */
  releaseHandshake(): void {
    if (this.#net.writableCorked > 0) this.uncork();
  }

  close(code: number, reason: string): void {
    if (this.#socket.readyState >= 2) return;
    this.#socket.close(code, reason);
  }

  /** Bytes read from the client so far, frames and pongs alike (the heartbeat compares them). */
  get bytesRead(): number {
    return this.#net.bytesRead;
  }

  /** What earlier turns left unsent: the client is not reading fast enough. */
  get backlog(): number {
    return this.#socket.bufferedAmount - this.#heldThisTurn;
  }
}

/** Where a socket keeps its WsConnection, so that one set of listeners serves every socket. */
const STATE = Symbol('socket-base connection');
type TrackedSocket = WebSocket & { [STATE]: WsConnection };
/** ws's typings give listeners `this: WebSocket`; ours know the socket carries its state. */
type EventEmitterOf<T> = { on(event: string, listener: (this: T, ...args: never[]) => void): void };

// One set of listeners for every socket (no closures per connection): `this` is the socket.
function onMessage(this: TrackedSocket, data: Buffer, isBinary: boolean): void {
  const connection = this[STATE];
  connection.shared.counts.framesIn++;
  const early = connection.early;
  if (early !== undefined) connection.hold(early, data, isBinary);
  else connection.receive(data, isBinary);
}

function onError(this: TrackedSocket, error: Error): void {
  this[STATE].shared.onError(error);
}

function onClose(this: TrackedSocket): void {
  const connection = this[STATE];
  connection.closed = true;
  connection.shared.sockets.delete(this);
  connection.shared.onGone(connection);
  connection.handler?.onClose();
}

/** Makes a WsConnection of an opened socket and listens to it. */
export function track(
  socket: WebSocket,
  shared: TransportShared,
  slot: AddressSlot | undefined,
): WsConnection {
  const connection = new WsConnection(socket, shared, slot);
  const tracked = Object.assign(socket, { [STATE]: connection }) as EventEmitterOf<TrackedSocket>;
  // Three listeners, no more: the socket's `_events` is a dictionary that grows with each event.
  tracked.on('message', onMessage);
  tracked.on('error', onError);
  tracked.on('close', onClose);
  shared.sockets.add(socket);
  return connection;
}

/** The WsConnection of a tracked socket (undefined for one still being opened). */
export function connectionOf(socket: WebSocket): WsConnection | undefined {
  return (socket as Partial<TrackedSocket>)[STATE];
}
