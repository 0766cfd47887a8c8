/**
 * WebSocket transport on `ws`, attached to the HTTP server's `upgrade` event: the frame size limit
 * (1009), RFC 6455 closes (1002, 1007, done by ws), protocol pings, and the hand-over of each
 * admitted socket to a handler. It knows sockets, not rooms.
 */

import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Admit, ClientHandler, Connection, PreparedFrame } from './connection.js';

export interface WsTransportOptions {
  maxFrameBytes: number;
  heartbeatMs: number;
  /** Proxies whose X-Forwarded-For names the client (TRUST_PROXY). */
  trustProxy: string[];
  /** Whether to look up each client's address (only logs use it: it costs a system call). */
  addresses: boolean;
  /** Serialises the error frame sent before a refused socket is closed. */
  errorFrame(message: string): string;
  /** Frames in and out, counted as plain numbers (read when metrics are scraped). */
  counts: { framesIn: number; framesOut: number };
  onError(error: unknown): void;
}

const WS_PATH = /^\/ws\/([^/?#]+)\/?(?:\?|$)/;

/** The client's address: the socket's peer, or X-Forwarded-For's last hop when a trusted proxy sent it. */
export function clientAddress(request: IncomingMessage, trustProxy: string[]): string {
  const peer = request.socket.remoteAddress ?? '';
  const forwarded = request.headers['x-forwarded-for'];
  if (typeof forwarded !== 'string' || !trustProxy.includes(peer.replace(/^::ffff:/, ''))) {
    return peer;
  }
  const hops = forwarded.split(',').map((hop) => hop.trim());
  return hops[hops.length - 1] || peer;
}

const TEXT_FRAME = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false };

/** ws exports its framing as `Sender.frame`; its type definitions do not declare it. */
const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, options: typeof TEXT_FRAME): Buffer[] };
};

/** Frames a text message once (RFC 6455, server to client: unmasked, uncompressed). */
export function prepareFrame(text: string): PreparedFrame {
  return Buffer.concat(Sender.frame(Buffer.from(text), TEXT_FRAME)) as PreparedFrame;
}

/**
 * Writes to many sockets within one turn of the event loop are coalesced: a socket is corked on its
 * first prepared frame and every corked socket is uncorked once, on the next turn, so a burst of
 * frames to one client costs one write to the network rather than one per frame.
 */
const corked: WsConnection[] = [];
let flushScheduled = false;

function flushCorked(): void {
  flushScheduled = false;
  for (const connection of corked.splice(0)) connection.uncork();
}

/** ws keeps the network socket in `_socket`; prepared frames are written to it directly. */
type WithNetSocket = WebSocket & { _socket: Socket };

/** Where a socket keeps its WsConnection, so that one set of listeners serves every socket. */
const STATE = Symbol('socket-base connection');
type TrackedSocket = WebSocket & { [STATE]: WsConnection };
/** ws's typings give listeners `this: WebSocket`; ours know the socket carries its state. */
type EventEmitterOf<T> = { on(event: string, listener: (this: T, ...args: never[]) => void): void };

class WsConnection implements Connection {
  readonly #socket: WebSocket;
  readonly #net: Socket;
  readonly options: WsTransportOptions;
  /** Bytes written this turn, held by the cork: not yet a sign of a slow reader. */
  #heldThisTurn = 0;
  /** Set once the socket is admitted; frames that come before wait in `early`. */
  handler: ClientHandler | undefined;
  early: { data: Buffer; isBinary: boolean }[] | undefined = [];
  closed = false;
  /** A ping went out and neither a pong nor any frame came back since. */
  awaitingPong = false;

  constructor(socket: WebSocket, options: WsTransportOptions) {
    this.#socket = socket;
    this.#net = (socket as WithNetSocket)._socket;
    this.options = options;
  }

  receive(data: Buffer, isBinary: boolean): void {
    const handler = this.handler;
    if (handler === undefined) return;
    if (isBinary && !isUtf8(data)) handler.onUnreadable();
    else handler.onText(data.toString('utf8'));
  }

  send(text: string): void {
    // The same path as shared frames: one buffer, coalesced with the turn's other frames.
    this.sendPrepared(prepareFrame(text));
  }

  sendPrepared(frame: PreparedFrame): void {
    if (this.#socket.readyState !== 1) return;
    this.options.counts.framesOut++;
    // Safe beside ws's own writes: without permessage-deflate its sender writes synchronously and
    // never queues, so frames stay whole and in order on the socket.
    if (this.#net.writableCorked === 0) {
      this.#net.cork();
      this.#heldThisTurn = 0;
      corked.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushCorked);
      }
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

  /** What earlier turns left unsent: the client is not reading fast enough. */
  get backlog(): number {
    return this.#socket.bufferedAmount - this.#heldThisTurn;
  }
}

// One set of listeners for every socket (no closures per connection): `this` is the socket.
function onMessage(this: TrackedSocket, data: Buffer, isBinary: boolean): void {
  const connection = this[STATE];
  connection.options.counts.framesIn++;
  connection.awaitingPong = false;
  if (connection.early !== undefined) connection.early.push({ data, isBinary });
  else connection.receive(data, isBinary);
}

function onPong(this: TrackedSocket): void {
  this[STATE].awaitingPong = false;
}

function onError(this: TrackedSocket, error: Error): void {
  this[STATE].options.onError(error);
}

function onClose(this: TrackedSocket): void {
  const connection = this[STATE];
  connection.closed = true;
  connection.handler?.onClose();
}

export class WsTransport {
  readonly #server = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    clientTracking: true,
    maxPayload: 0,
  });
  readonly #options: WsTransportOptions;
  readonly #admit: Admit;
  readonly #heartbeat: NodeJS.Timeout;
  #accepting = true;

  constructor(httpServer: Server, admit: Admit, options: WsTransportOptions) {
    this.#options = options;
    this.#admit = admit;
    // ws closes with 1009 when a frame is larger than maxPayload.
    (this.#server.options as { maxPayload: number }).maxPayload = options.maxFrameBytes;
    httpServer.on('upgrade', (request, socket, head) => this.#upgrade(request, socket, head));
    this.#heartbeat = setInterval(() => this.#beat(), options.heartbeatMs);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#server.clients.size;
  }

  /** Refuses new sockets from now on (shutdown). */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /** Closes every socket with the code, waits (bounded) for them to go, and stops the heartbeat. */
  async close(code: number, reason: string, graceMs = 2000): Promise<void> {
    this.#accepting = false;
    clearInterval(this.#heartbeat);
    const sockets = [...this.#server.clients];
    for (const socket of sockets) socket.close(code, reason);
    const gone = Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.readyState === 3) resolve();
            else socket.once('close', () => resolve());
          }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([gone, late]);
    clearTimeout(timer);
    for (const socket of this.#server.clients) socket.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const match = WS_PATH.exec(request.url ?? '');
    if (match === null || !this.#accepting) {
      const status = match === null ? '404 Not Found' : '503 Service Unavailable';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const url = request.url ?? '';
    const query = url.indexOf('?');
    let hash: string;
    try {
      hash = decodeURIComponent(match[1] ?? '');
    } catch {
      hash = '';
    }
    const token = query === -1 ? '' : (new URLSearchParams(url.slice(query + 1)).get('jwt') ?? '');
    const address = this.#options.addresses ? clientAddress(request, this.#options.trustProxy) : '';
    // The 101 answer waits for admission, so that it leaves with the `connected` frame (or the
    // refusal) in one write instead of two.
    socket.cork();
    this.#server.handleUpgrade(request, socket, head, (ws) => this.#open(ws, hash, token, address));
  }

  #open(socket: WebSocket, hash: string, token: string, address: string): void {
    const connection = new WsConnection(socket, this.#options);
    const tracked = Object.assign(socket, { [STATE]: connection }) as EventEmitterOf<TrackedSocket>;
    tracked.on('message', onMessage);
    tracked.on('pong', onPong);
    tracked.on('error', onError);
    tracked.on('close', onClose);
    this.#admit(connection, hash, token, address).then(
      (admission) => {
        if (!admission.ok) {
          connection.send(this.#options.errorFrame(admission.message));
          connection.close(admission.code, admission.message);
          connection.releaseHandshake();
          return;
        }
        connection.handler = admission.handler;
        connection.releaseHandshake();
        const queued = connection.early ?? [];
        connection.early = undefined;
        for (const frame of queued) connection.receive(frame.data, frame.isBinary);
        if (connection.closed) admission.handler.onClose();
      },
      (error: unknown) => {
        this.#options.onError(error);
        connection.close(1011, 'Internal error');
        connection.releaseHandshake();
      },
    );
  }

  #beat(): void {
    for (const socket of this.#server.clients) {
      const connection = (socket as TrackedSocket)[STATE];
      if (connection === undefined) continue;
      if (connection.awaitingPong) {
        socket.terminate();
        continue;
      }
      connection.awaitingPong = true;
      socket.ping();
    }
  }
}
