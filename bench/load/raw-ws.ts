/**
 * A raw WebSocket client on a TCP socket: the handshake by hand, client frames masked as RFC 6455
 * requires, server frames read incrementally from the socket's chunks. It hands each text frame to
 * its owner as (buffer, start, end) without decoding it, so the owner can look for the bytes it
 * needs and skip the rest: the load generator must cost less per received frame than the servers.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RawWsEvents {
  /** The upgrade was answered with 101. */
  onOpen(): void;
  /** A whole text (or binary) message; `now` is the hrtime in µs when its chunk was read. */
  onText(data: Buffer, start: number, end: number, now: number): void;
  /** The socket is gone; `code` is the server's close code, or 1006 if it sent none. */
  onClose(code: number, handshakeFailed: string | undefined): void;
}

export interface RawWsOptions {
  host: string;
  port: number;
  path: string;
  localAddress?: string | undefined;
}

const OP_CONTINUATION = 0;
const OP_TEXT = 1;
const OP_BINARY = 2;
const OP_CLOSE = 8;
const OP_PING = 9;
const HEADER_END = Buffer.from('\r\n\r\n');

/** Random mask keys, drawn from a pool refilled in bulk rather than one call per frame. */
const maskPool = Buffer.alloc(64 * 1024);
let maskOffset = maskPool.length;

function nextMask(target: Buffer, at: number): void {
  if (maskOffset + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskOffset = 0;
  }
  maskPool.copy(target, at, maskOffset, maskOffset + 4);
  maskOffset += 4;
}

/**
 * The monotonic clock in microseconds, the same in every process of the machine: process.hrtime
 * read once, then performance.now() (the same clock, without an allocation per reading).
 */
const [startSeconds, startNanos] = process.hrtime();
const clockOffsetUs = startSeconds * 1e6 + startNanos / 1e3 - performance.now() * 1000;

export function nowUs(): number {
  return performance.now() * 1000 + clockOffsetUs;
}

/**
 * Every socket of the process reads into this one buffer (net's `onread`): no Buffer is allocated
 * per read, since frames are handled synchronously and only a partial frame is copied out.
 */
const readBuffer = Buffer.alloc(256 * 1024);

/** Builds one masked client frame. */
export function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length % 2 ** 32, 6);
  }
  nextMask(frame, headerLength);
  const m0 = frame[headerLength] ?? 0;
  const m1 = frame[headerLength + 1] ?? 0;
  const m2 = frame[headerLength + 2] ?? 0;
  const m3 = frame[headerLength + 3] ?? 0;
  const base = headerLength + 4;
  for (let i = 0; i < length; i++) {
    const key = (i & 3) === 0 ? m0 : (i & 3) === 1 ? m1 : (i & 3) === 2 ? m2 : m3;
    frame[base + i] = (payload[i] ?? 0) ^ key;
  }
  return frame;
}

export class RawWs {
  readonly #socket: Socket;
  readonly #events: RawWsEvents;
  #open = false;
  #closed = false;
  #closeSent = false;
  #closeCode = 1006;
  #pending: Buffer | undefined;
  #fragments: Buffer[] | undefined;

  constructor(options: RawWsOptions, events: RawWsEvents) {
    this.#events = events;
    const key = randomBytes(16).toString('base64');
    this.#socket = connect({
      host: options.host,
      port: options.port,
      localAddress: options.localAddress,
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (bytes: number, buffer: Uint8Array): boolean => {
          this.#read(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
          return true;
        },
      },
    });
    this.#socket.on('connect', () => {
      this.#socket.write(
        `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.#socket.on('error', () => undefined);
    this.#socket.on('close', () => this.#finish(undefined));
  }

  get isOpen(): boolean {
    return this.#open && !this.#closed;
  }

  /** Sends one text message (masked). */
  sendText(text: string | Buffer): void {
    if (!this.isOpen) return;
    const payload = typeof text === 'string' ? Buffer.from(text) : text;
    this.#socket.write(maskedFrame(OP_TEXT, payload));
  }

  /** Starts the closing handshake, and ends the socket if the server does not within a second. */
  close(code = 1000): void {
    if (this.#closed) return;
    if (!this.#open) {
      this.#socket.destroy();
      return;
    }
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code, 0);
    this.#closeSent = true;
    this.#socket.write(maskedFrame(OP_CLOSE, payload));
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 1000).unref();
  }

  /** Drops the socket at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  #finish(handshakeFailed: string | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    const failed = handshakeFailed ?? (this.#open ? undefined : 'connection closed before 101');
    this.#events.onClose(this.#closeCode, failed);
  }

  #read(chunk: Buffer): void {
    let data = chunk;
    if (this.#pending !== undefined) {
      data = Buffer.concat([this.#pending, chunk]);
      this.#pending = undefined;
    }
    let position = 0;
    if (!this.#open) {
      const end = data.indexOf(HEADER_END);
      if (end === -1) {
        if (data.length > 16384) this.#fail('handshake response too large');
        else this.#pending = Buffer.from(data);
        return;
      }
      const status = data.toString('latin1', 0, Math.min(end, 32));
      if (!status.startsWith('HTTP/1.1 101')) {
        this.#fail(status.split('\r\n')[0] ?? 'bad handshake');
        return;
      }
      this.#open = true;
      position = end + 4;
      this.#events.onOpen();
    }
    const now = nowUs();
    const length = data.length;
    while (position + 2 <= length && !this.#closed) {
      const b0 = data[position] ?? 0;
      const b1 = data[position + 1] ?? 0;
      let payloadLength = b1 & 0x7f;
      let header = 2;
      if (payloadLength === 126) {
        if (position + 4 > length) break;
        payloadLength = data.readUInt16BE(position + 2);
        header = 4;
      } else if (payloadLength === 127) {
        if (position + 10 > length) break;
        payloadLength = data.readUInt32BE(position + 2) * 2 ** 32 + data.readUInt32BE(position + 6);
        header = 10;
      }
      if ((b1 & 0x80) !== 0) header += 4; // servers must not mask; tolerate it anyway
      const start = position + header;
      const end = start + payloadLength;
      if (end > length) break;
      this.#frame(b0, data, start, end, now);
      position = end;
    }
    if (position < length && !this.#closed) this.#pending = Buffer.from(data.subarray(position));
  }

  #frame(b0: number, data: Buffer, start: number, end: number, now: number): void {
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (fin) this.#events.onText(data, start, end, now);
      else this.#fragments = [Buffer.from(data.subarray(start, end))];
      return;
    }
    if (opcode === OP_CONTINUATION) {
      if (this.#fragments === undefined) return;
      this.#fragments.push(Buffer.from(data.subarray(start, end)));
      if (fin) {
        const whole = Buffer.concat(this.#fragments);
        this.#fragments = undefined;
        this.#events.onText(whole, 0, whole.length, now);
      }
      return;
    }
    if (opcode === OP_PING) {
      this.#socket.write(maskedFrame(0x0a, Buffer.from(data.subarray(start, end))));
      return;
    }
    if (opcode === OP_CLOSE) {
      this.#closeCode = end - start >= 2 ? data.readUInt16BE(start) : 1005;
      if (!this.#closeSent) {
        this.#closeSent = true;
        this.#socket.write(maskedFrame(OP_CLOSE, Buffer.from(data.subarray(start, start + 2))));
        this.#socket.end();
      }
      this.#finish(undefined);
      setTimeout(() => this.#socket.destroy(), 1000).unref();
    }
  }

  #fail(reason: string): void {
    this.#finish(reason);
    this.#socket.destroy();
  }
}
