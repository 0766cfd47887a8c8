import { Redis } from 'ioredis';
import { closeRedis } from '../redis/close.js';
import { type Bus, type BusEvent, type BusHandler, callHandlers } from './bus.js';

export interface RedisBusHooks {
  /** An event was taken by Redis. */
  onPublish?(): void;
  /** An event arrived from Redis and was handed to the handlers. */
  onReceive?(): void;
  /** Something arrived on one of our channels that is not an event; it was dropped. */
  onMalformed?(): void;
  /**
   * A link failed (refused connection, reset, ...); it keeps reconnecting on its own. Without this
   * hook such errors are not reported anywhere: pass it to a logger.
   */
  onLinkError?(link: 'publisher' | 'subscriber', error: Error): void;
}

export interface RedisBusOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Prepended to every channel, so that deployments sharing one Redis do not hear each other. */
  prefix: string;
  hooks?: RedisBusHooks;
  /** How long `RedisBus.connect` waits for both links before giving up. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** How long a command (publish, subscribe, quit) may wait for Redis' answer. Default 2000 ms. */
  commandTimeoutMs?: number;
}

/**
 * The Bus on Redis pub/sub, for several processes. Each event is one PUBLISH of its JSON text on
 * channel `prefix + topic`.
 *
 * Guarantees, on top of the contract in bus.ts:
 * - Two connections: events are published on one and received on the other, so a slow reader
 *   never delays a publish.
 * - `publish` rejects at once while the publisher link is down (no offline queue), and rejects,
 *   rather than hangs, when the link drops or `commandTimeoutMs` passes before Redis answers. It is
 *   never resent after a reconnect: delivery stays at most once.
 * - The set of subscribed topics is kept here, not in Redis: `subscribe` while the link is down
 *   resolves at once, and every (re)connection of the subscriber link subscribes the whole set
 *   before `healthy()` turns true and before the `onReconnect` handlers run. Those handlers run
 *   after every reconnection of the subscriber link, never after the first connection.
 * - An event arriving for a topic no longer subscribed is not delivered.
 * - What arrives on a channel is decoded defensively: invalid UTF-8, invalid JSON or a value that
 *   is not a BusEvent is dropped and reported through `hooks.onMalformed`, never thrown.
 * - Both links reconnect forever, waiting min(attempt × 100, 1000) ms between attempts.
 * - `close` waits for the answers to publishes already sent, then ends both links and leaves no
 *   timer or socket behind. It is safe to call twice.
 */
export class RedisBus implements Bus {
  readonly #prefix: string;
  readonly #hooks: RedisBusHooks;
  readonly #publisher: Link;
  readonly #subscriber: Link;
  readonly #topics = new Set<string>();
  readonly #handlers: BusHandler[] = [];
  readonly #reconnectHandlers: Array<() => void> = [];
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  #subscribed = false;
  #connectedBefore = false;
  #closing: Promise<void> | undefined;
  #whenHealthy: (() => void) | undefined;

  /** Opens both links and waits until they are ready, or fails after `connectTimeoutMs`. */
  static async connect(options: RedisBusOptions): Promise<RedisBus> {
    const bus = new RedisBus(options);
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      bus.#whenHealthy = () => {
        clearTimeout(timer);
        resolve(true);
      };
      bus.#checkHealthy();
    });
    if (!ready) {
      await bus.close();
      throw new Error(`Redis at ${where(options.url)} did not answer within ${timeoutMs} ms`);
    }
    return bus;
  }

  private constructor(options: RedisBusOptions) {
    this.#prefix = options.prefix;
    this.#hooks = options.hooks ?? {};
    const onError = (link: 'publisher' | 'subscriber') => (error: Error) =>
      this.#hooks.onLinkError?.(link, error);
    const timeout = options.commandTimeoutMs ?? 2000;
    this.#publisher = new Link(options.url, timeout, onError('publisher'));
    this.#subscriber = new Link(options.url, timeout, onError('subscriber'));
    this.#publisher.redis.on('ready', () => this.#checkHealthy());
    this.#subscriber.redis.on('ready', () => {
      this.#resubscribe().catch(() => {
        // The link dropped again while resubscribing; its next 'ready' starts over.
      });
    });
    this.#subscriber.redis.on('close', () => {
      this.#subscribed = false;
    });
    this.#subscriber.redis.on('messageBuffer', (channel: Buffer, message: Buffer) =>
      this.#receive(channel, message),
    );
  }

  // async, so that nothing here can throw synchronously: every failure is a rejection.
  async publish(topic: string, event: BusEvent): Promise<void> {
    if (this.#closing) throw new Error('Bus is closed');
    const text = JSON.stringify(event);
    await this.#publisher.run((redis) => redis.publish(this.#prefix + topic, text));
    this.#hooks.onPublish?.();
  }

  async subscribe(topic: string): Promise<void> {
    if (this.#closing) throw new Error('Bus is closed');
    this.#topics.add(topic);
    // Sent even when already in the set: the reply then also confirms an earlier, pending call.
    if (!this.#subscriber.ready()) return;
    try {
      await this.#subscriber.run((redis) => redis.subscribe(this.#prefix + topic));
    } catch (err) {
      // The topic stays in the set and is subscribed when the link is back.
      if (this.#subscriber.ready()) throw err;
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    this.#topics.delete(topic);
    if (this.#closing || !this.#subscriber.ready()) return;
    try {
      await this.#subscriber.run((redis) => redis.unsubscribe(this.#prefix + topic));
    } catch (err) {
      // A new connection starts with no subscription, so a lost link has done the job.
      if (this.#subscriber.ready()) throw err;
    }
  }

  onEvent(handler: BusHandler): void {
    this.#handlers.push(handler);
  }

  onReconnect(handler: () => void): void {
    this.#reconnectHandlers.push(handler);
  }

  healthy(): boolean {
    return (
      this.#closing === undefined &&
      this.#subscribed &&
      this.#publisher.ready() &&
      this.#subscriber.ready()
    );
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all([this.#publisher.close(), this.#subscriber.close()]).then(() => {
      this.#topics.clear();
    });
    return this.#closing;
  }

  async #resubscribe(): Promise<void> {
    const channels = [...this.#topics].map((topic) => this.#prefix + topic);
    if (channels.length > 0) {
      await this.#subscriber.run((redis) => redis.subscribe(...channels));
    }
    if (this.#closing || !this.#subscriber.ready()) return;
    this.#subscribed = true;
    this.#checkHealthy();
    if (!this.#connectedBefore) {
      this.#connectedBefore = true;
      return;
    }
    for (const handler of this.#reconnectHandlers) {
      try {
        handler();
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  #checkHealthy(): void {
    if (this.#whenHealthy && this.healthy()) {
      this.#whenHealthy();
      this.#whenHealthy = undefined;
    }
  }

  #receive(channel: Buffer, message: Buffer): void {
    const name = channel.toString('utf8');
    if (!name.startsWith(this.#prefix)) return;
    const topic = name.slice(this.#prefix.length);
    if (!this.#topics.has(topic)) return;
    const event = this.#decode(message);
    if (!event) {
      this.#hooks.onMalformed?.();
      return;
    }
    this.#hooks.onReceive?.();
    callHandlers(this.#handlers, topic, event);
  }

  #decode(message: Buffer): BusEvent | undefined {
    try {
      return parseBusEvent(JSON.parse(this.#decoder.decode(message)));
    } catch {
      return undefined;
    }
  }
}

/**
 * One ioredis connection, with the promise of every command tied to the life of the socket it
 * was written on: ioredis would otherwise keep a command whose socket dropped pending until it
 * can resend it, which is neither a prompt failure nor at most once.
 */
class Link {
  readonly redis: Redis;
  readonly #inFlight = new Set<(error: Error) => void>();
  #closing: Promise<void> | undefined;

  constructor(url: string, commandTimeout: number, onError: (error: Error) => void) {
    this.redis = new Redis(url, {
      enableOfflineQueue: false,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      commandTimeout,
    });
    this.redis.on('error', onError);
    this.redis.on('close', () => {
      const error = new Error('Redis connection lost');
      for (const reject of this.#inFlight) reject(error);
      this.#inFlight.clear();
    });
  }

  ready(): boolean {
    return this.#closing === undefined && this.redis.status === 'ready';
  }

  run<T>(command: (redis: Redis) => Promise<T>): Promise<T> {
    if (!this.ready()) return Promise.reject(new Error('Redis connection is not ready'));
    return new Promise<T>((resolve, reject) => {
      this.#inFlight.add(reject);
      command(this.redis).then(
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

  close(): Promise<void> {
    this.#closing ??= closeRedis(this.redis);
    return this.#closing;
  }
}

function where(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured URL';
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Checks a decoded value field by field; returns a fresh event holding only the known fields. */
export function parseBusEvent(value: unknown): BusEvent | undefined {
  if (!isObject(value) || !isString(value.project)) return undefined;
  const project = value.project;
  switch (value.kind) {
    case 'message': {
      const m = value.message;
      if (
        !isObject(m) ||
        !isString(m.id) ||
        !isSeq(m.seq) ||
        !isString(m.room) ||
        !isString(m.payload) ||
        !isString(m.from) ||
        !isNumber(m.ts)
      ) {
        return undefined;
      }
      const message = {
        id: m.id,
        seq: m.seq,
        room: m.room,
        payload: m.payload,
        from: m.from,
        ts: m.ts,
      };
      return { kind: 'message', project, message };
    }
    case 'broadcast': {
      const { payload, from, ts } = value;
      if (!isString(payload) || !isString(from) || !isNumber(ts)) return undefined;
      return { kind: 'broadcast', project, payload, from, ts };
    }
    case 'presence': {
      const { room, user, present } = value;
      if (!isString(room) || !isString(user) || typeof present !== 'boolean') return undefined;
      return { kind: 'presence', project, room, user, present };
    }
    case 'project-created':
    case 'project-rotated':
    case 'project-updated':
    case 'project-deleted':
      return { kind: value.kind, project };
    case 'project-disconnected': {
      const { user, notBefore } = value;
      if (user !== null && !isString(user)) return undefined;
      if (notBefore !== null && !isNumber(notBefore)) return undefined;
      return { kind: 'project-disconnected', project, user, notBefore };
    }
    default:
      return undefined;
  }
}
