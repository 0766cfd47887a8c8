/**
 * WebSocket transport on `ws`, attached to the HTTP server's `upgrade` event: the frame size limit
 * (1009), RFC 6455 closes (1002, 1007, done by ws), protocol pings, and the hand-over of each
 * admitted socket to a handler. It knows sockets, not rooms.
 */

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Admit } from './connection.js';
import { CorkQueue, connectionOf, type TransportShared, track } from './ws-connection.js';
import { checkWsInternals } from './ws-internals.js';

export { prepareFrame } from './ws-internals.js';

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
  readonly #shared: TransportShared;
  #accepting = true;

  constructor(httpServer: Server, admit: Admit, options: WsTransportOptions) {
    checkWsInternals();
    this.#options = options;
    this.#admit = admit;
    // ws closes with 1009 when a frame is larger than maxPayload.
    (this.#server.options as { maxPayload: number }).maxPayload = options.maxFrameBytes;
    this.#shared = { counts: options.counts, corks: new CorkQueue(), onError: options.onError };
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
    const connection = track(socket, this.#shared);
    this.#admit(connection, hash, token, address).then(
      (admission) => {
        if (!admission.ok) {
          connection.send(this.#options.errorFrame(admission.message));
          connection.close(admission.code, admission.message);
          connection.releaseHandshake();
          return;
        }
        connection.admitted(admission.handler);
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
      const connection = connectionOf(socket);
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
