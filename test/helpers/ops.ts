/**
 * Helpers for the limits, burst and operations suites: a raw WebSocket client on a plain TCP
 * socket (for broken frames and ignored pings), a spawned `socket-base serve` process, a
 * Prometheus scrape, and full-history reads.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { RoomMessage } from '../../src/domain.js';
import type { TestClient } from './client.js';
import { nextSource } from './loopback.js';

export const WAIT_MS = 5000;

export interface RawFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

export interface RawSend {
  opcode?: number;
  payload?: Buffer | string;
  fin?: boolean;
  /** RSV1..3 as a 3-bit number (4 = RSV1). */
  rsv?: number;
  /** Client frames must be masked; false sends an unmasked (broken) frame. */
  mask?: boolean;
}

export interface RawClientOptions {
  /** The source address (by default the next of 127.0.0.1 to 127.0.0.250 for a 127.0.0.1 server). */
  localAddress?: string;
  /** Bytes sent in the same write as the upgrade request, before the server could answer. */
  head?: Buffer;
}

/**
 * A WebSocket client written by hand on a TCP socket: it completes the HTTP upgrade, parses the
 * server's frames, never answers pings, and answers a close frame with a close frame.
 */
export class RawClient {
  readonly socket: Socket;
  readonly frames: RawFrame[] = [];
  /** When the 101 response was read (performance.now()). */
  handshakeAt = 0;
  pings = 0;
  closeCode: number | undefined;
  /** True once the TCP socket is closed. */
  ended = false;
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  #upgraded = false;
  #closeSent = false;
  readonly #waiters = new Set<() => void>();
  readonly #upgrade: Promise<void>;

  private constructor(url: string, options: RawClientOptions) {
    const target = new URL(url);
    this.socket = connect({
      host: target.hostname,
      port: Number(target.port),
      localAddress: options.localAddress ?? nextSource(target.hostname),
    });
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      this.socket.once('close', () => {
        this.ended = true;
        this.#wake();
        resolve();
      });
    });
    this.#upgrade = new Promise((resolve, reject) => {
      this.socket.once('connect', () => {
        const request = [
          `GET ${target.pathname}${target.search} HTTP/1.1`,
          `Host: ${target.host}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
          'Sec-WebSocket-Version: 13',
          '',
          '',
        ].join('\r\n');
        this.socket.write(Buffer.concat([Buffer.from(request), options.head ?? Buffer.alloc(0)]));
      });
      this.socket.on('data', (chunk: Buffer) => {
        this.#buffer = Buffer.concat([this.#buffer, chunk]);
        if (!this.#upgraded) {
          const end = this.#buffer.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = this.#buffer.subarray(0, end).toString('latin1');
          this.#buffer = this.#buffer.subarray(end + 4);
          if (!head.startsWith('HTTP/1.1 101')) {
            reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
            return;
          }
          this.#upgraded = true;
          this.handshakeAt = performance.now();
          resolve();
        }
        this.#parse();
      });
      this.socket.once('close', () => reject(new Error('socket closed during the upgrade')));
    });
  }

  /** Connects and completes the upgrade; `ws://host:port/ws/HASH?jwt=…`. */
  static async connect(url: string, options: RawClientOptions = {}): Promise<RawClient> {
    const client = new RawClient(url, options);
    await client.#upgrade;
    return client;
  }

  /** Text frames received, parsed as JSON. */
  get texts(): { type: string; [key: string]: unknown }[] {
    return this.frames
      .filter((frame) => frame.opcode === 1)
      .map((frame) => JSON.parse(frame.payload.toString('utf8')) as { type: string });
  }

  send(options: RawSend): void {
    const payload =
      typeof options.payload === 'string'
        ? Buffer.from(options.payload, 'utf8')
        : (options.payload ?? Buffer.alloc(0));
    const masked = options.mask ?? true;
    if (options.opcode === 8) this.#closeSent = true;
    const first =
      (options.fin === false ? 0 : 0x80) | ((options.rsv ?? 0) << 4) | (options.opcode ?? 1);
    let header: Buffer;
    if (payload.length < 126) {
      header = Buffer.from([first, payload.length]);
    } else if (payload.length < 65536) {
      header = Buffer.alloc(4);
      header[0] = first;
      header[1] = 126;
      header.writeUInt16BE(payload.length, 2);
    } else {
      header = Buffer.alloc(10);
      header[0] = first;
      header[1] = 127;
      header.writeBigUInt64BE(BigInt(payload.length), 2);
    }
    if (!masked) {
      this.socket.write(Buffer.concat([header, payload]));
      return;
    }
    header[1] = (header[1] ?? 0) | 0x80;
    const key = randomBytes(4);
    const body = Buffer.alloc(payload.length);
    for (let i = 0; i < payload.length; i++) {
      body[i] = (payload[i] ?? 0) ^ (key[i % 4] ?? 0);
    }
    this.socket.write(Buffer.concat([header, key, body]));
  }

  sendText(text: string): void {
    this.send({ opcode: 1, payload: text });
  }

  /** Waits until `ready()` holds, re-checked on every frame and on close. */
  waitFor(ready: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ready()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  /** Waits for the `connected` frame. */
  async connected(): Promise<void> {
    await this.waitFor(() => this.texts.some((frame) => frame.type === 'connected'), 'connected');
  }

  /** Waits for the server's close frame and the end of the TCP connection; returns the code. */
  async waitClosed(timeoutMs = WAIT_MS): Promise<number | undefined> {
    await this.waitFor(() => this.ended, 'the connection to close', timeoutMs);
    return this.closeCode;
  }

  destroy(): void {
    this.socket.destroy();
  }

  #parse(): void {
    for (;;) {
      const buffer = this.#buffer;
      if (buffer.length < 2) break;
      const first = buffer[0] ?? 0;
      const second = buffer[1] ?? 0;
      let length = second & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) break;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) break;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (buffer.length < offset + length) break;
      const frame = {
        fin: (first & 0x80) !== 0,
        opcode: first & 0x0f,
        payload: Buffer.from(buffer.subarray(offset, offset + length)),
      };
      this.#buffer = buffer.subarray(offset + length);
      this.frames.push(frame);
      if (frame.opcode === 9) this.pings++;
      if (frame.opcode === 8) {
        this.closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
        if (!this.#closeSent) this.send({ opcode: 8, payload: frame.payload.subarray(0, 2) });
        this.socket.end();
      }
    }
    this.#wake();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** Waits until `ready()` holds, re-checked on every frame the TestClient receives and on close. */
export function until(
  client: TestClient,
  ready: () => boolean,
  what: string,
  timeoutMs = WAIT_MS,
): Promise<void> {
  if (ready()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer);
      client.socket.off('message', check);
      client.socket.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    // Listeners run in order of registration: the client's own listener has recorded the frame.
    const check = (): void => {
      if (ready()) done();
    };
    const onClose = (): void => {
      if (ready()) done();
      else done(new Error(`socket closed while waiting for ${what}`));
    };
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), timeoutMs);
    client.socket.on('message', check);
    client.socket.on('close', onClose);
  });
}

/** A Prometheus scrape: `value('name', {label: 'x'})` reads one series. */
export interface Scrape {
  readonly text: string;
  readonly contentType: string;
  value(name: string, labels?: Record<string, string>): number | undefined;
}

export async function scrapeMetrics(baseUrl: string): Promise<Scrape> {
  const response = await fetch(`${baseUrl}/metrics`);
  assert.equal(response.status, 200);
  const text = await response.text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return {
    text,
    contentType: response.headers.get('content-type') ?? '',
    value(name, labels) {
      const pairs = Object.entries(labels ?? {}).map(([key, value]) => `${key}="${value}"`);
      if (pairs.length === 0) return series.get(name);
      // Label order is the order of the metric's labelNames; accept any order.
      for (const [key, value] of series) {
        const open = key.indexOf('{');
        if (open < 0 || key.slice(0, open) !== name) continue;
        const inner = key.slice(open + 1, -1).split(/,(?=[a-zA-Z_]+=")/);
        if (inner.length === pairs.length && pairs.every((pair) => inner.includes(pair))) {
          return value;
        }
      }
      return undefined;
    },
  };
}

/** A message as the history API answers it: the domain's stored message. */
export type StoredMessage = RoomMessage;

async function historyPage(
  baseUrl: string,
  auth: { hash: string; token: string },
  room: string,
  query: string,
): Promise<StoredMessage[]> {
  const response = await fetch(
    `${baseUrl}/api/rooms/${encodeURIComponent(room)}/messages?${query}`,
    { headers: { 'x-hash': auth.hash, authorization: `Bearer ${auth.token}` } },
  );
  assert.equal(response.status, 200, `history ${query}: ${response.status}`);
  return ((await response.json()) as { messages: StoredMessage[] }).messages;
}

/**
 * A room's whole history, read twice: backwards from the newest with `before=ID`, and forwards
 * from the oldest with `after=ID`, `limit=1000`. Both readings must agree; returns it oldest first.
 */
export async function fullHistory(
  baseUrl: string,
  auth: { hash: string; token: string },
  room: string,
): Promise<StoredMessage[]> {
  const limit = 1000;
  let backwards = await historyPage(baseUrl, auth, room, `limit=${limit}`);
  let page = backwards;
  while (page.length === limit) {
    page = await historyPage(baseUrl, auth, room, `limit=${limit}&before=${page[0]?.id}`);
    backwards = [...page, ...backwards];
  }
  const first = backwards[0];
  if (first === undefined) return [];
  const forwards = [first];
  for (;;) {
    const last = forwards[forwards.length - 1] as StoredMessage;
    const next = await historyPage(baseUrl, auth, room, `limit=${limit}&after=${last.id}`);
    forwards.push(...next);
    if (next.length < limit) break;
  }
  assert.deepEqual(forwards, backwards, 'history read forwards and backwards differ');
  return forwards;
}

/** Asserts that messages carry seq 1..N in order, each once. */
export function assertGapless(messages: readonly object[], what: string): void {
  const seqs = messages.map((message) => ('seq' in message ? message.seq : undefined));
  const expected = Array.from({ length: messages.length }, (_, i) => i + 1);
  assert.deepEqual(seqs, expected, `${what}: seqs are not 1..${messages.length}`);
}

/** A `socket-base serve` process. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly wsUrl: string;
  readonly output: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal (SIGTERM by default) and waits for the exit; kills and throws when late. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The CLI entry point, built beside the tests: DIST/src/cli/main.js. */
export const CLI_PATH = new URL('../../src/cli/main.js', import.meta.url);

/**
 * Spawns `node <dist>/src/cli/main.js serve` with the environment given (and PORT=0), in `cwd` so
 * that no `.env` of the repository is read, and waits for the `listening` line.
 */
export async function spawnServer(
  env: Record<string, string>,
  cwd: string,
  timeoutMs = 10_000,
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [CLI_PATH.pathname, 'serve'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const url = await new Promise<string>((resolve, reject) => {
    let pending = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listening line: ${output.join('\n')}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        output.push(line);
        const match = /listening\b.*?(https?:\/\/[^\s"]+)/.exec(line);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening: ${output.join('\n')}`));
    });
  });
  return {
    child,
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      // A server that does not stop is a failure, not a hung test run.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), timeoutMs);
      });
      const outcome = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (outcome === 'late') {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`server did not exit within ${timeoutMs} ms of ${signal}`);
      }
      return outcome;
    },
  };
}

/** `POST /admin/projects` on any server. */
export async function createProjectAt(
  baseUrl: string,
  adminToken: string,
  name: string,
): Promise<{ hash: string; jwtSecret: string; name: string; createdAt: string }> {
  const response = await fetch(`${baseUrl}/admin/projects`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  assert.equal(response.status, 201);
  return (await response.json()) as {
    hash: string;
    jwtSecret: string;
    name: string;
    createdAt: string;
  };
}
