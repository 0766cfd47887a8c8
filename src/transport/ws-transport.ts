/**
 * WebSocket transport on `ws`, attached to the HTTP server's `upgrade` event: the guards before
 * admission (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP, HANDSHAKE_TIMEOUT_MS, the bound on early
 * frames), the frame size limit (1009), RFC 6455 closes (1002, 1007, done by ws), protocol pings,
 * and the hand-over of each admitted socket to a handler. It knows sockets, not rooms.
 */

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { CLOSE_CODES } from '../errors.js';
import type { Admit } from './connection.js';
import { AddressCounts, HandshakeDeadlines, refuseUpgradeWith } from './upgrade-guards.js';
import {
  type AddressSlot,
  CorkQueue,
  connectionOf,
  type TransportShared,
  track,
  type WsConnection,
} from './ws-connection.js';
import { checkWsInternals } from './ws-internals.js';

export { prepareFrame } from './ws-internals.js';

/** Why the transport itself refused or dropped a socket (the `reason` of the refusal counter). */
export type TransportRefusal = 'capacity' | 'per_ip' | 'handshake_timeout' | 'early_frames';

export interface WsTransportOptions {
  maxFrameBytes: number;
  heartbeatMs: number;
  /** Proxies whose X-Forwarded-For names the client (TRUST_PROXY). */
  trustProxy: string[];
  /** Whether logs want each client's address (it costs a system call; the per-IP limit needs it). */
  addresses: boolean;
  /** MAX_CONNECTIONS: open WebSockets plus upgrades being admitted. */
  maxConnections: number;
  /** MAX_CONNECTIONS_PER_IP, counted by `clientAddress`; undefined: no limit. */
  maxConnectionsPerIp: number | undefined;
  /** HANDSHAKE_TIMEOUT_MS: from the TCP connection to the end of admission. */
  handshakeTimeoutMs: number;
  /** RATE_BURST: frames that may wait for admission; one more closes the socket with 1008. */
  maxEarlyFrames: number;
  /** Serialises the error frame sent before a refused socket is closed. */
  errorFrame(message: string): string;
  /** Frames in and out, counted as plain numbers (read when metrics are scraped). */
  counts: { framesIn: number; framesOut: number };
  onError(error: unknown): void;
  onRefused(reason: TransportRefusal, address: string): void;
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
    // The transport keeps its own set (TransportShared.sockets), removed from by the one `close`
    // listener every socket shares: ws's tracking adds a closure and a listener per socket.
    clientTracking: false,
    maxPayload: 0,
  });
  readonly #sockets = new Set<WebSocket>();
  readonly #options: WsTransportOptions;
  readonly #admit: Admit;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #perAddress: AddressCounts | undefined;
  readonly #deadlines: HandshakeDeadlines;
  readonly #shared: TransportShared;
  #accepting = true;

  constructor(httpServer: Server, admit: Admit, options: WsTransportOptions) {
    checkWsInternals();
    this.#options = options;
    this.#admit = admit;
    // ws closes with 1009 when a frame is larger than maxPayload.
    (this.#server.options as { maxPayload: number }).maxPayload = options.maxFrameBytes;
    this.#perAddress =
      options.maxConnectionsPerIp === undefined
        ? undefined
        : new AddressCounts(options.maxConnectionsPerIp);
    this.#deadlines = new HandshakeDeadlines(options.handshakeTimeoutMs, () =>
      options.onRefused('handshake_timeout', ''),
    );
    const perAddress = this.#perAddress;
    this.#shared = {
      sockets: this.#sockets,
      counts: options.counts,
      corks: new CorkQueue(),
      maxEarlyFrames: options.maxEarlyFrames,
      onError: options.onError,
      onEarlyOverflow: () => options.onRefused('early_frames', ''),
      onGone(connection: WsConnection): void {
        if (connection.slot === undefined) return;
        perAddress?.give(connection.slot);
        connection.slot = undefined;
      },
    };
    // Every TCP connection has until the deadline to send a whole request: a plain HTTP request
    // ends its deadline when its headers are read (keep-alive is Node's), an upgrade when admitted.
    httpServer.on('connection', (socket: Duplex) => this.#deadlines.start(socket));
    httpServer.on('request', (request: IncomingMessage) => this.#deadlines.end(request.socket));
    httpServer.on('upgrade', (request, socket, head) => this.#upgrade(request, socket, head));
    this.#heartbeat = setInterval(() => this.#beat(), options.heartbeatMs);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#sockets.size;
  }

  /** Refuses new sockets from now on (shutdown). */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /** Closes every socket with the code, waits (bounded) for them to go, and stops the timers. */
  async close(code: number, reason: string, graceMs = 2000): Promise<void> {
    this.#accepting = false;
    clearInterval(this.#heartbeat);
    this.#deadlines.stop();
    const sockets = [...this.#sockets];
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
    for (const socket of this.#sockets) socket.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = request.url ?? '';
    const match = WS_PATH.exec(url);
    if (match === null) {
      this.#refuse(socket, 'notFound');
      return;
    }
    if (!this.#accepting) {
      this.#refuse(socket, 'shuttingDown');
      return;
    }
    let hash: string;
    try {
      hash = decodeURIComponent(match[1] ?? '');
    } catch {
      this.#refuse(socket, 'invalidPath');
      return;
    }
    // Counted before anything is looked up: a refusal here costs no store or token work.
    if (this.#sockets.size >= this.#options.maxConnections) {
      this.#refuse(socket, 'serverAtCapacity');
      this.#options.onRefused('capacity', '');
      return;
    }
    const perAddress = this.#perAddress;
    const address =
      this.#options.addresses || perAddress !== undefined
        ? clientAddress(request, this.#options.trustProxy)
        : '';
    let slot: AddressSlot | undefined;
    if (perAddress !== undefined) {
      slot = perAddress.take(address);
      if (slot === undefined) {
        this.#refuse(socket, 'tooManyConnections');
        this.#options.onRefused('per_ip', address);
        return;
      }
    }
    const query = url.indexOf('?');
    const token = query === -1 ? '' : (new URLSearchParams(url.slice(query + 1)).get('jwt') ?? '');
    // The 101 answer waits for admission, so that it leaves with the `connected` frame (or the
    // refusal) in one write instead of two.
    socket.cork();
    let opened = false;
    this.#server.handleUpgrade(request, socket, head, (ws) => {
      opened = true;
      this.#open(ws, socket, hash, token, address, slot);
    });
    // ws answers a broken handshake itself, synchronously, without a WebSocket to count.
    if (!opened && slot !== undefined) perAddress?.give(slot);
  }

  #refuse(
    socket: Duplex,
    code: 'notFound' | 'invalidPath' | 'shuttingDown' | 'serverAtCapacity' | 'tooManyConnections',
  ): void {
    this.#deadlines.end(socket);
    refuseUpgradeWith(socket, code);
  }

  #open(
    socket: WebSocket,
    net: Duplex,
    hash: string,
    token: string,
    address: string,
    slot: AddressSlot | undefined,
  ): void {
    const connection = track(socket, this.#shared, slot);
    this.#admit(connection, hash, token, address).then(
      (admission) => {
        this.#deadlines.end(net);
        if (admission.ok) {
          connection.admitted(admission.handler);
          return;
        }
        const { message, code } = admission;
        connection.refuse(this.#options.errorFrame(message), code, message);
      },
      (error: unknown) => {
        this.#deadlines.end(net);
        this.#options.onError(error);
        const { code, reason } = CLOSE_CODES.internalError;
        connection.refuse(undefined, code, reason);
      },
    );
  }

  #beat(): void {
    for (const socket of this.#sockets) {
      const connection = connectionOf(socket);
      if (connection === undefined) continue;
      // Nothing came back since the last ping, not even a pong: the client is gone.
      const read = connection.bytesRead;
      if (read === connection.pingedAt) {
        socket.terminate();
        continue;
      }
      connection.pingedAt = read;
      socket.ping();
    }
  }
}
