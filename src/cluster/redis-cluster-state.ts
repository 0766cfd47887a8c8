import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type {
  Admission,
  ClusterState,
  ConnectionLimits,
  Counts,
  PresencePage,
  RoomsPage,
  Totals,
  Transition,
} from './cluster-state.js';
import { epochSecond, leaseTiming, StoredRates, TokenBuckets } from './local-counters.js';
import { PresenceIndex } from './presence-index.js';
import {
  type Arg,
  asArray,
  asNumber,
  decodeName,
  encodeName,
  Script,
  ScriptLink,
} from './redis-link.js';
import { COUNTS, PRESENCE, RECORD, ROOMS, STORED, SYNC, TAKE } from './redis-scripts.js';
import { EntryWriter } from './redis-writer.js';

export interface RedisClusterStateOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Prepended to every key (then `cs:`), so that deployments sharing one Redis stay apart. */
  prefix: string;
  /** Within how long of its death an instance's entries go (see leaseTiming in local-counters.ts). */
  ttlMs: number;
  /** How long one call may wait for Redis before it counts as away. Default 2000 ms. */
  commandTimeoutMs?: number;
  /** Default: a random UUID. */
  instanceId?: string;
  /** How long `start` waits for a first answer before going on without Redis. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** A link failed (refused, reset...); it reconnects on its own. Without this they are dropped. */
  onLinkError?(error: Error): void;
}

/** How often what `recordStored` counted is added to Redis. */
const STORED_FLUSH_MS = 1000;
/** How long `close` goes on reaping what it leaves; survivors reap the rest on their refreshes. */
const RELEASE_DEADLINE_MS = 5000;

const SCRIPTS = {
  sync: new Script(SYNC),
  presence: new Script(PRESENCE),
  rooms: new Script(ROOMS),
  counts: new Script(COUNTS),
  take: new Script(TAKE),
  record: new Script(RECORD),
  stored: new Script(STORED),
};

/** A page size Redis takes as asked: a negative LIMIT count would mean "all of them". */
function count(limit: number): number {
  return Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0;
}

/**
 * The ClusterState on Redis, shared by every instance (key and script design in redis-scripts.ts).
 * On top of the contract:
 * - This instance's own connections are kept here (the local view) and sent to Redis as absolute
 *   counts per entry by one writer, one call at a time, holding every change made meanwhile: calls
 *   of one tick make one script call, and an enter undone in the same batch sends nothing. A call
 *   that fails (Redis away, timeout, answer lost) is sent again with the then current counts, so
 *   retrying never counts twice; transitions of a call whose answer was lost come back with the
 *   next one (see SYNC) and are reported once.
 * - A read sends its query right behind the call holding this instance's earlier changes, on the
 *   same connection; if that call fails, or Redis is away, it answers from the local view.
 * - When a call finds the lease gone (this instance stalled past ttlMs and was reaped, or Redis
 *   lost its data), the lease is taken again and every local entry sent again: the transitions
 *   that follow are reported here. Transitions of instances found dead are reported by the
 *   instance whose refresh reaps them.
 * - Transitions are reported in the order Redis made them, after the call, never inside it.
 * - While Redis is away, the local token bucket of a project starts empty (not full), so that an
 *   outage never adds a burst to what the shared bucket granted.
 * - `start` never rejects: it waits up to connectTimeoutMs for the lease, then carries on
 *   (unhealthy) and takes it when Redis answers. Calls before `start` are kept locally.
 * - After `close`: `enter`/`exit` are ignored, `admit` answers 'admitted' and counts nothing,
 *   reads answer an empty view with `partial: true`.
 */
export class RedisClusterState implements ClusterState {
  readonly #link: ScriptLink;
  readonly #keys: string;
  readonly #refreshMs: number;
  readonly #connectTimeoutMs: number;
  readonly #handlers: Array<(transition: Transition) => void> = [];
  /** This instance's own connections: the truth Redis is brought to, and the view while away. */
  readonly #local = new PresenceIndex();
  readonly #writer: EntryWriter;
  #state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  #timers: NodeJS.Timeout[] = [];
  /** Local buckets for outages, emptied whenever Redis answers (see the class comment). */
  readonly #buckets = new TokenBuckets();
  #bucketsFresh = true;
  /** This instance's own stored counts: the view while away. */
  readonly #rates = new StoredRates();
  #unflushed = new Map<string, number>();
  #closing: Promise<void> | undefined;

  constructor(options: RedisClusterStateOptions) {
    this.#keys = `${options.prefix}cs:`;
    const { leaseMs, refreshMs } = leaseTiming(options.ttlMs);
    this.#refreshMs = refreshMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#link = new ScriptLink(
      options.url,
      Object.values(SCRIPTS),
      options.commandTimeoutMs ?? 2000,
      (error) => options.onLinkError?.(error),
      // Back after an outage (or a restart): refresh now rather than at the next tick.
      () => this.#writer.refresh(false),
    );
    this.#writer = new EntryWriter({
      link: this.#link,
      sync: SCRIPTS.sync,
      keys: this.#keys,
      id: options.instanceId ?? randomUUID(),
      leaseMs,
      retryMs: Math.min(1000, refreshMs),
      local: this.#local,
      report: (transitions) => this.#report(transitions),
    });
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    this.#state = 'running';
    this.#timers.push(
      setInterval(() => this.#writer.refresh(true), this.#refreshMs),
      setInterval(() => void this.#flushStored(), STORED_FLUSH_MS),
    );
    await this.#writer.start(this.#connectTimeoutMs);
  }

  enter(project: string, room: string | null, user: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#local.change(project, room, user, 1);
    this.#writer.touch(project, room, user);
  }

  exit(project: string, room: string | null, user: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.#local.count(project, room, user) === 0) return;
    this.#local.change(project, room, user, -1);
    this.#writer.touch(project, room, user);
  }

  async admit(project: string, user: string, limits: ConnectionLimits): Promise<Admission> {
    if (this.#state === 'closing' || this.#state === 'closed') return 'admitted';
    if (!this.healthy()) return this.#writer.admitLocally(project, user, limits);
    return this.#writer.admit(project, user, limits);
  }

  presence(
    project: string,
    room: string,
    after: string | undefined,
    limit: number,
  ): Promise<PresencePage> {
    const args = [encodeName(project), encodeName(room), encodeName(after ?? '')];
    return this.#read<PresencePage>(
      async () => {
        const reply = asArray(
          await this.#run(SCRIPTS.presence, [
            ...args,
            after === undefined ? '0' : '1',
            count(limit),
          ]),
        );
        const users = asArray(reply[1]);
        const conns = asArray(reply[2]);
        return {
          users: users.map((u, i) => ({ user: decodeName(u), connections: asNumber(conns[i]) })),
          count: asNumber(reply[0]),
          partial: false,
        };
      },
      () => ({ ...this.#local.presence(project, room, after, limit), partial: true }),
    );
  }

  rooms(project: string, after: string | undefined, limit: number): Promise<RoomsPage> {
    const args = [encodeName(project), encodeName(after ?? ''), after === undefined ? '0' : '1'];
    return this.#read<RoomsPage>(
      async () => {
        const reply = asArray(await this.#run(SCRIPTS.rooms, [...args, count(limit)]));
        const present = asArray(reply[1]);
        const rooms = asArray(reply[0]).map((r, i) => ({
          room: decodeName(r),
          present: asNumber(present[i]),
        }));
        return { rooms, partial: false };
      },
      () => ({ rooms: this.#local.rooms(project, after, limit), partial: true }),
    );
  }

  counts(project: string): Promise<Counts> {
    return this.#read<Counts>(
      async () => {
        const reply = asArray(await this.#run(SCRIPTS.counts, [encodeName(project), '1']));
        const [connections, users, rooms] = reply.map(asNumber);
        return {
          connections: connections ?? 0,
          users: users ?? 0,
          rooms: rooms ?? 0,
          partial: false,
        };
      },
      () => ({ ...this.#local.counts(project), partial: true }),
    );
  }

  totals(): Promise<Totals> {
    return this.#read<Totals>(
      async () => {
        const reply = asArray(await this.#run(SCRIPTS.counts, ['', '0']));
        const [connections = 0, users = 0, rooms = 0, instances = 0] = reply.map(asNumber);
        return { connections, users, rooms, instances, partial: false };
      },
      () => ({ ...this.#local.totals(), instances: this.#writer.alive, partial: true }),
    );
  }

  recordStored(project: string, count: number): void {
    if (this.#state === 'closed' || count <= 0) return;
    this.#rates.record(project, count, epochSecond());
    this.#unflushed.set(project, (this.#unflushed.get(project) ?? 0) + count);
  }

  async storedPerSecond(project: string | undefined): Promise<number> {
    if (this.healthy()) {
      const args = [encodeName(project ?? ''), project === undefined ? '0' : '1'];
      try {
        return asNumber(await this.#run(SCRIPTS.stored, args)) / 10;
      } catch {
        // Answered from this instance's own counts below.
      }
    }
    return this.#rates.perSecond(project, epochSecond());
  }

  async takeBudget(project: string, perSecond: number, burst: number, want: number) {
    if (want <= 0) return 0;
    if (this.healthy()) {
      try {
        const args = [encodeName(project), perSecond, burst, want];
        const granted = asNumber(await this.#run(SCRIPTS.take, args));
        if (!this.#bucketsFresh) this.#buckets.clear();
        this.#bucketsFresh = true;
        return granted;
      } catch {
        // Drawn from this instance's share below.
      }
    }
    this.#bucketsFresh = false;
    const alive = Math.max(1, this.#writer.alive);
    const share = Math.max(1, burst / alive);
    return this.#buckets.take(project, perSecond / alive, share, want, performance.now(), 0);
  }

  onTransition(handler: (transition: Transition) => void): void {
    this.#handlers.push(handler);
  }

  healthy(): boolean {
    return this.#state === 'running' && this.#writer.synced && this.#link.ready();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const wasRunning = this.#state === 'running';
    this.#state = 'closing';
    for (const timer of this.#timers) clearInterval(timer);
    // The call out finishes; nothing more is sent, since releasing takes every entry away.
    await this.#writer.stop();
    if (wasRunning) {
      await this.#flushStored();
      await this.#writer.release(RELEASE_DEADLINE_MS);
    }
    this.#state = 'closed';
    this.#local.clear();
    await this.#link.close();
  }

  async #read<T>(query: () => Promise<T>, local: () => T): Promise<T> {
    if (!this.healthy()) return local();
    const sent = await this.#writer.sent();
    if (!this.healthy()) return local();
    try {
      const [value, ok] = await Promise.all([query(), sent.outcome]);
      return ok ? value : local();
    } catch {
      return local();
    }
  }

  #run(script: Script, args: readonly Arg[]): Promise<unknown> {
    return this.#link.run(script, [this.#keys, ...args]);
  }

  #report(transitions: readonly Transition[]): void {
    for (const transition of transitions) {
      for (const handler of this.#handlers) {
        try {
          handler(transition);
        } catch (error) {
          // A bug in a handler is the handler's: rethrown outside, it starves no other.
          process.nextTick(() => {
            throw error;
          });
        }
      }
    }
  }

  async #flushStored(): Promise<void> {
    if (this.#unflushed.size === 0 || !this.#link.ready()) return;
    const taken = this.#unflushed;
    this.#unflushed = new Map();
    let total = 0;
    const args: Arg[] = [];
    for (const [project, count] of taken) {
      total += count;
      args.push(encodeName(project), count);
    }
    try {
      await this.#run(SCRIPTS.record, [total, ...args]);
    } catch {
      // Kept for the next flush: counted a little late rather than not at all.
      for (const [project, count] of taken) {
        this.#unflushed.set(project, (this.#unflushed.get(project) ?? 0) + count);
      }
    }
  }
}
