/**
 * A WebSocket test client that records every frame, so that tests wait on events (never on
 * sleeps) and can assert that nothing more arrived.
 */
import WebSocket, { type ClientOptions } from 'ws';
import { nextSource } from './loopback.js';

export interface Frame {
  type: string;
  [key: string]: unknown;
}

export const DEFAULT_WAIT_MS = 5000;
/** How long a test listens for something that must not arrive. */
export const SILENCE_MS = 150;

export class TestClient {
  readonly socket: WebSocket;
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly #waiters = new Set<() => void>();
  #read = 0;
  readonly closed: Promise<{ code: number; reason: string }>;

  /** `options` go to ws (e.g. `localAddress`, `headers`); sources are spread by default. */
  constructor(url: string, options: ClientOptions = {}) {
    this.socket = new WebSocket(url, {
      localAddress: nextSource(new URL(url).hostname),
      ...options,
    });
    this.socket.on('message', (data: Buffer) => {
      this.frames.push(JSON.parse(data.toString('utf8')) as Frame);
      this.#wake();
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.#wake();
        resolve({ code, reason: this.closeReason });
      });
    });
    this.socket.on('error', () => undefined);
  }

  /** Connects and waits for the `connected` frame. */
  static async connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
    const client = new TestClient(url, options);
    await client.next('connected');
    return client;
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Waits for the next unread frame (of the given type, skipping nothing else unless told). */
  async next(type?: string, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame> {
    const frame = await this.#waitFor(() => this.frames.length > this.#read, timeoutMs, type);
    return frame;
  }

  /** Sends a frame and waits for the next one. */
  async request(frame: unknown, type?: string): Promise<Frame> {
    this.send(frame);
    return this.next(type);
  }

  async join(room: string): Promise<void> {
    const answer = await this.request({ type: 'join', room });
    if (answer.type !== 'joined' || answer.room !== room) {
      throw new Error(`join ${room}: ${JSON.stringify(answer)}`);
    }
  }

  /** Unread frames of a type (or all), marking them read. */
  drain(type?: string): Frame[] {
    const unread = this.frames.slice(this.#read);
    this.#read = this.frames.length;
    return type === undefined ? unread : unread.filter((frame) => frame.type === type);
  }

  /** Waits until `count` unread frames of `type` arrived; fails on a timeout. */
  async collect(type: string, count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame[]> {
    const matching = (): Frame[] =>
      this.frames.slice(this.#read).filter((frame) => frame.type === type);
    await this.#until(() => matching().length >= count, timeoutMs, `${count} ${type} frames`);
    return matching().slice(0, count);
  }

  /**
   * The next `count` frames of a type, and not one more of it within a short silence: every unread
   * frame is then marked read, so that a later wait starts after them.
   */
  async exactly(type: string, count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<Frame[]> {
    const frames = await this.collect(type, count, timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, SILENCE_MS));
    const more = this.drain().filter((frame) => frame.type === type).length - count;
    if (more !== 0) throw new Error(`${more} ${type} frames more than ${count}`);
    return frames;
  }

  /** Asserts that no unread frame arrives for a while. */
  async expectSilence(ms = SILENCE_MS): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const unread = this.frames.slice(this.#read);
    if (unread.length > 0) throw new Error(`unexpected frames: ${JSON.stringify(unread)}`);
  }

  async waitClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('socket not closed in time')), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    if (this.socket.readyState <= 1) this.socket.close();
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
  }

  async #waitFor(ready: () => boolean, timeoutMs: number, type?: string): Promise<Frame> {
    await this.#until(ready, timeoutMs, type ?? 'a frame');
    const frame = this.frames[this.#read++] as Frame;
    if (type !== undefined && frame.type !== type) {
      throw new Error(`expected a ${type} frame, got ${JSON.stringify(frame)}`);
    }
    return frame;
  }

  #until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (ready()) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          resolve();
        } else if (this.closeCode !== undefined) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          reject(new Error(`socket closed (${this.closeCode}) while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames)}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }
}
