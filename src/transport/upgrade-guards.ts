/**
 * What stands before a socket becomes a WebSocket: the count of connections per client address,
 * the deadline for finishing the handshake and admission, and the HTTP refusal written on the raw
 * socket.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, type ErrorCode, errorBody } from '../errors.js';
import type { AddressSlot } from './ws-connection.js';

/** Connections per client address; only addresses with a connection have an entry. */
export class AddressCounts {
  readonly #slots = new Map<string, AddressSlot>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a place for the address; undefined when it has `max` already. */
  take(address: string): AddressSlot | undefined {
    const slot = this.#slots.get(address);
    if (slot === undefined) {
      const first = { address, count: 1 };
      this.#slots.set(address, first);
      return first;
    }
    if (slot.count >= this.#max) return undefined;
    slot.count++;
    return slot;
  }

  give(slot: AddressSlot): void {
    slot.count--;
    if (slot.count === 0) this.#slots.delete(slot.address);
  }
}

/**
 * Sockets that have not finished their handshake and admission, with when they came: one sweep
 * every min(1000, timeout / 4) ms rather than a timer per socket, so a socket goes between
 * `timeoutMs` and `timeoutMs` plus one sweep after it came. Closed sockets leave at the next sweep.
 */
export class HandshakeDeadlines {
  readonly #since = new Map<Duplex, number>();
  readonly #timeoutMs: number;
  readonly #onExpired: (socket: Duplex) => void;
  readonly #timer: NodeJS.Timeout;

  constructor(timeoutMs: number, onExpired: (socket: Duplex) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onExpired = onExpired;
    this.#timer = setInterval(() => this.#sweep(), Math.min(1000, Math.ceil(timeoutMs / 4)));
    this.#timer.unref();
  }

  get size(): number {
    return this.#since.size;
  }

  start(socket: Duplex): void {
    this.#since.set(socket, performance.now());
  }

  /** The socket finished its handshake and admission, or was answered: no deadline any more. */
  end(socket: Duplex): void {
    this.#since.delete(socket);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #sweep(): void {
    const late = performance.now() - this.#timeoutMs;
    for (const [socket, since] of this.#since) {
      if (socket.destroyed) {
        this.#since.delete(socket);
      } else if (since <= late) {
        this.#since.delete(socket);
        socket.destroy();
        this.#onExpired(socket);
      }
    }
  }
}

function destroySelf(this: Duplex): void {
  this.destroy();
}

/**
 * Answers an upgrade with an HTTP status on the raw socket and drops the socket once the answer is
 * written (HTTP server sockets allow half-open connections: `end` alone would wait for the client).
 */
function refuseUpgrade(socket: Duplex, status: number, headers: string[] = [], body = ''): void {
  socket.once('finish', destroySelf);
  socket.end(
    [
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
      'Connection: close',
      ...headers,
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  );
}

/** Refuses an upgrade with the API's error body; a 429 or 503 says to retry in a second. */
export function refuseUpgradeWith(socket: Duplex, code: ErrorCode): void {
  const { status } = ERRORS[code];
  const headers = ['Content-Type: application/json; charset=utf-8'];
  if (status === 429 || status === 503) headers.push('Retry-After: 1');
  refuseUpgrade(socket, status, headers, errorBody(code));
}
