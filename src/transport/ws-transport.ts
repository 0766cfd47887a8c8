/**
 * WebSocket transport on `ws`, attached to the HTTP server's `upgrade` event: the frame size limit
 * (1009), RFC 6455 closes (1002, 1007, done by ws), protocol pings, and the hand-over of each
 * admitted socket to a handler. It knows sockets, not rooms.
 */

import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Connection } from './connection.js';

/** What the transport hands an admitted socket's frames to. */
export interface ClientHandler {
  onText(text: string): void;
  /** A binary frame whose bytes are not UTF-8 text. */
  onUnreadable(): void;
  onClose(): void;
}

export type Admission =
  | { ok: true; handler: ClientHandler }
  | { ok: false; message: string; code: number };

export type Admit = (connection: Connection, hash: string, token: string) => Promise<Admission>;

export interface WsTransportOptions {
  maxFrameBytes: number;
  heartbeatMs: number;
  /** Serialises the error frame sent before a refused socket is closed. */
  errorFrame(message: string): string;
  onFrameIn(): void;
  onFrameOut(): void;
  onError(error: unknown): void;
}

const WS_PATH = /^\/ws\/([^/?#]+)\/?(?:\?|$)/;

class WsConnection implements Connection {
  readonly #socket: WebSocket;
  readonly #onFrameOut: () => void;

  constructor(socket: WebSocket, onFrameOut: () => void) {
    this.#socket = socket;
    this.#onFrameOut = onFrameOut;
  }

  send(frame: string | Buffer): void {
    if (this.#socket.readyState !== 1) return;
    this.#onFrameOut();
    this.#socket.send(frame, { binary: false });
  }

  close(code: number, reason: string): void {
    if (this.#socket.readyState >= 2) return;
    this.#socket.close(code, reason);
  }

  get backlog(): number {
    return this.#socket.bufferedAmount;
  }
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
  readonly #awaitingPong = new Set<WebSocket>();
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
    const url = new URL(request.url ?? '/', 'http://localhost');
    let hash: string;
    try {
      hash = decodeURIComponent(match[1] ?? '');
    } catch {
      hash = '';
    }
    const token = url.searchParams.get('jwt') ?? '';
    this.#server.handleUpgrade(request, socket, head, (ws) => this.#open(ws, hash, token));
  }

  #open(socket: WebSocket, hash: string, token: string): void {
    const connection = new WsConnection(socket, this.#options.onFrameOut);
    let handler: ClientHandler | undefined;
    let early: { data: Buffer; isBinary: boolean }[] | undefined = [];
    let closed = false;
    const receive = (data: Buffer, isBinary: boolean): void => {
      if (handler === undefined) return;
      if (isBinary && !isUtf8(data)) handler.onUnreadable();
      else handler.onText(data.toString('utf8'));
    };
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      this.#options.onFrameIn();
      this.#awaitingPong.delete(socket);
      if (early !== undefined) early.push({ data, isBinary });
      else receive(data, isBinary);
    });
    socket.on('pong', () => this.#awaitingPong.delete(socket));
    socket.on('error', (error) => this.#options.onError(error));
    socket.on('close', () => {
      closed = true;
      this.#awaitingPong.delete(socket);
      handler?.onClose();
    });
    this.#admit(connection, hash, token).then(
      (admission) => {
        if (!admission.ok) {
          connection.send(this.#options.errorFrame(admission.message));
          connection.close(admission.code, admission.message);
          return;
        }
        handler = admission.handler;
        const queued = early ?? [];
        early = undefined;
        for (const frame of queued) receive(frame.data, frame.isBinary);
        if (closed) handler.onClose();
      },
      (error: unknown) => {
        this.#options.onError(error);
        connection.close(1011, 'Internal error');
      },
    );
  }

  #beat(): void {
    for (const socket of this.#server.clients) {
      if (this.#awaitingPong.has(socket)) {
        this.#awaitingPong.delete(socket);
        socket.terminate();
        continue;
      }
      this.#awaitingPong.add(socket);
      socket.ping();
    }
  }
}
