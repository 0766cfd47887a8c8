import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { closeRedis } from '../redis/close.js';

/** A Lua script, run by its SHA1 once loaded. */
export class Script {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

export type Arg = string | Buffer | number;

/**
 * One ioredis connection that runs scripts, answering in Buffers (names are binary, see
 * redis-scripts.ts). As in the Bus's link, the promise of a command is tied to the socket it was
 * written on: when that socket drops, the command rejects at once, and it is never resent (no
 * offline queue, no resend on reconnect), so a caller always learns promptly that an answer is
 * missing. Every (re)connection loads the scripts before `ready()` turns true, so that a server
 * restarted empty does not answer NOSCRIPT to a call pipelined behind another.
 */
export class ScriptLink {
  readonly #redis: Redis;
  readonly #scripts: readonly Script[];
  readonly #inFlight = new Set<(error: Error) => void>();
  #loaded = false;
  #closing: Promise<void> | undefined;

  constructor(
    url: string,
    scripts: readonly Script[],
    commandTimeout: number,
    onError: (error: Error) => void,
    onReady: () => void,
  ) {
    this.#scripts = scripts;
    this.#redis = new Redis(url, {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      commandTimeout,
    });
    this.#redis.on('error', onError);
    this.#redis.on('close', () => {
      this.#loaded = false;
      const error = new Error('Redis connection lost');
      for (const reject of this.#inFlight) reject(error);
      this.#inFlight.clear();
    });
    this.#redis.on('ready', () => {
      this.#load().then(
        () => {
          this.#loaded = true;
          onReady();
        },
        () => {
          // The link dropped while loading; its next 'ready' starts over.
        },
      );
    });
  }

  ready(): boolean {
    return this.#closing === undefined && this.#loaded && this.#redis.status === 'ready';
  }

  /**
   * Runs `script` with no keys and `args` as ARGV. The command is written before this returns, so
   * calls made one after the other run in that order.
   */
  run(script: Script, args: readonly Arg[]): Promise<unknown> {
    return this.#send('EVALSHA', [script.sha, 0, ...args]).catch((error: unknown) => {
      // A script flushed behind our back: sent once more in full, which caches it again.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.#send('EVAL', [script.source, 0, ...args]);
    });
  }

  close(): Promise<void> {
    this.#closing ??= closeRedis(this.#redis);
    return this.#closing;
  }

  async #load(): Promise<void> {
    await Promise.all(
      this.#scripts.map((script) => this.#redis.call('SCRIPT', 'LOAD', script.source)),
    );
  }

  #send(command: string, args: Arg[]): Promise<unknown> {
    if (this.#closing || this.#redis.status !== 'ready') {
      return Promise.reject(new Error('Redis connection is not ready'));
    }
    return new Promise((resolve, reject) => {
      this.#inFlight.add(reject);
      this.#redis.callBuffer(command, args).then(
        (value) => {
          this.#inFlight.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          this.#inFlight.delete(reject);
          reject(error);
        },
      );
    });
  }
}

/** UTF-16BE: byte order is code unit order, and every string (lone surrogates too) round-trips. */
export function encodeName(name: string): Buffer {
  return Buffer.from(name, 'utf16le').swap16();
}

export function decodeName(bytes: unknown): string {
  if (!Buffer.isBuffer(bytes)) throw new Error('Redis answered a name that is not a string');
  return Buffer.from(bytes).swap16().toString('utf16le');
}

/** Checks the shape of a reply: a bug (or a foreign writer under our prefix) fails the call. */
export function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error('Redis answered an unexpected reply');
  return value;
}

export function asNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value) && value.length > 0) {
    const parsed = Number(value.toString('latin1'));
    if (Number.isFinite(parsed)) return parsed;
  }
  throw new Error('Redis answered a number that is not one');
}
