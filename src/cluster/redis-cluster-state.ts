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
import { epochSecond, judge, StoredRates, TokenBuckets } from './local-counters.js';
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

export interface RedisClusterStateOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Prepended to every key (then `cs:`), so that deployments sharing one Redis stay apart. */
  prefix: string;
  /** How long the lease lasts without a refresh; it is refreshed every ttlMs / 3. */
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

/** Entries and admissions sent in one call at most: a script stays a few milliseconds long. */
const ENTRIES_PER_CALL = 2000;
const ADMISSIONS_PER_CALL = 500;
/** How often what `recordStored` counted is added to Redis. */
const STORED_FLUSH_MS = 1000;
/** Entries of dead instances a refresh takes away, and a call of `close` (which has the time). */
const REAP_PER_CALL = 1000;
const REAP_PER_CLOSING_CALL = 5000;
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

const VERDICTS: readonly Admission[] = ['admitted', 'projectFull', 'userFull'];

interface Ref {
  project: string;
  room: string | null;
  user: string;
}

interface PendingAdmission {
  project: string;
  user: string;
  limits: ConnectionLimits;
  resolve(verdict: Admission): void;
}

interface Batch {
  seq: number;
  mode: 'start' | 'run' | 'release' | 'drain';
  reap: boolean;
  entries: Array<{ key: string; ref: Ref; count: number }>;
  admissions: PendingAdmission[];
  /** The change generation this call brings Redis up to (0: it leaves some behind). */
  covers: number;
}

type Outcome = 'ok' | 'lost' | 'failed';

type SyncReply =
  | 'lost'
  | {
      alive: number;
      more: boolean;
      verdicts: Admission[];
      transitions: Array<Transition & { seq: number }>;
    };

/** Checks and decodes a whole answer of SYNC before any of it is applied. */
function parseSync(value: unknown): SyncReply {
  const reply = asArray(value);
  if (asNumber(reply[0]) === 0) return 'lost';
  const verdicts = asArray(reply[3]).map((code) => {
    const verdict = VERDICTS[asNumber(code)];
    if (!verdict) throw new Error('Redis answered an unknown admission');
    return verdict;
  });
  const reported = asArray(reply[4]);
  const transitions: Array<Transition & { seq: number }> = [];
  for (let i = 0; i + 4 < reported.length; i += 5) {
    transitions.push({
      seq: asNumber(reported[i]),
      present: asNumber(reported[i + 1]) === 1,
      project: decodeName(reported[i + 2]),
      room: decodeName(reported[i + 3]),
      user: decodeName(reported[i + 4]),
    });
  }
  return { alive: asNumber(reply[1]), more: asNumber(reply[2]) === 1, verdicts, transitions };
}

function keyOf(project: string, room: string | null, user: string): string {
  return JSON.stringify([project, room, user]);
}

function limitArg(limit: number | null): string {
  return limit === null ? '' : String(limit);
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
  readonly #P: string;
  readonly #id: string;
  readonly #ttlMs: number;
  readonly #connectTimeoutMs: number;
  readonly #handlers: Array<(transition: Transition) => void> = [];
  /** This instance's own connections: the truth Redis is brought to, and the view while away. */
  readonly #local = new PresenceIndex();
  /** What Redis holds for our entries, as far as an answer said (NaN: unknown). */
  readonly #remote = new Map<string, number>();
  /** Entries changed since they were last sent. */
  readonly #dirty = new Map<string, Ref>();
  #admissions: PendingAdmission[] = [];
  #mode: 'start' | 'run' = 'start';
  #refreshDue = true;
  #reapDue = true;
  #seq = 0;
  /** The last call whose answer arrived: Redis may forget its transitions. */
  #acked = 0;
  #alive = 1;
  #synced = false;
  /** Bumped by every change to send; `#sentGen` is the highest a sent call brought Redis to. */
  #gen = 0;
  #sentGen = 0;
  #lastSent: Promise<boolean> = Promise.resolve(true);
  #sendWaiters: Array<{ gen: number; resolve(sent: { outcome: Promise<boolean> }): void }> = [];
  #writer: Promise<void> | undefined;
  #scheduled = false;
  #state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  #timers: NodeJS.Timeout[] = [];
  #retry: NodeJS.Timeout | undefined;
  #whenSynced: (() => void) | undefined;
  /** Local buckets for outages, emptied whenever Redis answers (see the class comment). */
  readonly #buckets = new TokenBuckets();
  #bucketsFresh = true;
  /** This instance's own stored counts: the view while away. */
  readonly #rates = new StoredRates();
  #unflushed = new Map<string, number>();
  #closing: Promise<void> | undefined;

  constructor(options: RedisClusterStateOptions) {
    this.#P = `${options.prefix}cs:`;
    this.#id = options.instanceId ?? randomUUID();
    this.#ttlMs = options.ttlMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#link = new ScriptLink(
      options.url,
      Object.values(SCRIPTS),
      options.commandTimeoutMs ?? 2000,
      (error) => options.onLinkError?.(error),
      () => {
        // Back after an outage (or a restart): refresh now rather than at the next tick.
        this.#refreshDue = true;
        this.#kick();
      },
    );
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    this.#state = 'running';
    const refreshMs = Math.max(1, Math.floor(this.#ttlMs / 3));
    this.#timers.push(
      setInterval(() => {
        this.#refreshDue = true;
        this.#reapDue = true;
        this.#kick();
      }, refreshMs),
      setInterval(() => void this.#flushStored(), STORED_FLUSH_MS),
    );
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#connectTimeoutMs);
      this.#whenSynced = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#kick();
    });
    this.#whenSynced = undefined;
  }

  enter(project: string, room: string | null, user: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#local.change(project, room, user, 1);
    this.#touch(project, room, user);
  }

  exit(project: string, room: string | null, user: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.#local.count(project, room, user) === 0) return;
    this.#local.change(project, room, user, -1);
    this.#touch(project, room, user);
  }

  admit(project: string, user: string, limits: ConnectionLimits): Promise<Admission> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.resolve('admitted');
    if (!this.healthy()) return Promise.resolve(this.#admitLocally(project, user, limits));
    return new Promise((resolve) => {
      this.#admissions.push({ project, user, limits, resolve });
      this.#gen += 1;
      this.#kick();
    });
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
          await this.#run(SCRIPTS.presence, [...args, after === undefined ? '0' : '1', limit]),
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
        const reply = asArray(await this.#run(SCRIPTS.rooms, [...args, limit]));
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
      () => ({ ...this.#local.totals(), instances: this.#alive, partial: true }),
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
    const alive = Math.max(1, this.#alive);
    const share = Math.max(1, burst / alive);
    return this.#buckets.take(project, perSecond / alive, share, want, performance.now(), 0);
  }

  onTransition(handler: (transition: Transition) => void): void {
    this.#handlers.push(handler);
  }

  healthy(): boolean {
    return this.#state === 'running' && this.#synced && this.#link.ready();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const wasRunning = this.#state === 'running';
    this.#state = 'closing';
    for (const timer of this.#timers) clearInterval(timer);
    clearTimeout(this.#retry);
    // The call in flight finishes; nothing else is sent, since releasing takes every entry away.
    await this.#writer;
    for (const admission of this.#admissions.splice(0)) admission.resolve('admitted');
    this.#answerWaiters(false);
    if (wasRunning && this.#synced && this.#link.ready()) {
      await this.#flushStored();
      let mode: Batch['mode'] = 'release';
      const deadline = performance.now() + RELEASE_DEADLINE_MS;
      while (performance.now() < deadline) {
        const batch: Batch = {
          seq: ++this.#seq,
          mode,
          reap: true,
          entries: [],
          admissions: [],
          covers: 0,
        };
        mode = 'drain';
        this.#reapDue = false;
        if ((await this.#send(batch)) !== 'ok' || !this.#reapDue) break;
      }
    }
    this.#state = 'closed';
    this.#local.clear();
    this.#dirty.clear();
    this.#remote.clear();
    await this.#link.close();
  }

  #touch(project: string, room: string | null, user: string): void {
    this.#dirty.set(keyOf(project, room, user), { project, room, user });
    this.#gen += 1;
    this.#kick();
  }

  #admitLocally(project: string, user: string, limits: ConnectionLimits): Admission {
    // Each instance enforces its share of a limit, against its own connections.
    const alive = Math.max(1, this.#alive);
    const share = (limit: number | null) => (limit === null ? null : Math.ceil(limit / alive));
    const verdict = judge(
      this.#local.counts(project).connections,
      share(limits.maxConnections),
      this.#local.count(project, null, user),
      share(limits.maxConnectionsPerUser),
    );
    if (verdict === 'admitted') {
      this.#local.change(project, null, user, 1);
      this.#touch(project, null, user);
    }
    return verdict;
  }

  async #read<T>(query: () => Promise<T>, local: () => T): Promise<T> {
    if (!this.healthy()) return local();
    const sent =
      this.#gen <= this.#sentGen
        ? { outcome: this.#lastSent }
        : await new Promise<{ outcome: Promise<boolean> }>((resolve) => {
            this.#sendWaiters.push({ gen: this.#gen, resolve });
            this.#kick();
          });
    if (!this.healthy()) return local();
    try {
      const [value, ok] = await Promise.all([query(), sent.outcome]);
      return ok ? value : local();
    } catch {
      return local();
    }
  }

  #run(script: Script, args: readonly Arg[]): Promise<unknown> {
    return this.#link.run(script, [this.#P, ...args]);
  }

  #kick(): void {
    if (this.#state !== 'running' || this.#writer || this.#scheduled) return;
    this.#scheduled = true;
    // On the next turn, so that every call of this tick goes in one script call.
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#state !== 'running' || this.#writer) return;
      this.#writer = this.#write().finally(() => {
        this.#writer = undefined;
      });
    });
  }

  #hasWork(): boolean {
    return this.#dirty.size > 0 || this.#admissions.length > 0 || this.#refreshDue || this.#reapDue;
  }

  async #write(): Promise<void> {
    while (this.#state === 'running' && this.#hasWork()) {
      if (!this.#link.ready()) {
        // Nothing can be sent: whoever waits is answered from here; 'ready' kicks again.
        this.#synced = false;
        for (const admission of this.#admissions.splice(0)) {
          admission.resolve(
            this.#admitLocally(admission.project, admission.user, admission.limits),
          );
        }
        this.#answerWaiters(false);
        return;
      }
      const outcome = await this.#send(this.#compose());
      if (outcome === 'failed') {
        this.#answerWaiters(false);
        // Tried again soon (or when the link is back), not in a tight loop against a failing Redis.
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => this.#kick(), Math.min(1000, this.#ttlMs / 3));
        return;
      }
    }
  }

  #compose(): Batch {
    const entries: Batch['entries'] = [];
    for (const [key, ref] of this.#dirty) {
      this.#dirty.delete(key);
      const count = this.#local.count(ref.project, ref.room, ref.user);
      if (count === (this.#remote.get(key) ?? 0)) continue;
      entries.push({ key, ref, count });
      if (entries.length >= ENTRIES_PER_CALL) break;
    }
    const admissions = this.#admissions.splice(0, ADMISSIONS_PER_CALL);
    const complete = this.#dirty.size === 0 && this.#admissions.length === 0;
    const reap = this.#reapDue;
    this.#refreshDue = false;
    this.#reapDue = false;
    const covers = complete ? this.#gen : 0;
    return { seq: ++this.#seq, mode: this.#mode, reap, entries, admissions, covers };
  }

  /** Sends one call; the command is written before this returns (a read may follow it). */
  #send(batch: Batch): Promise<Outcome> {
    // Projects and rooms repeat from entry to entry: each is encoded once a call.
    const names = new Map<string, Buffer>();
    const name = (value: string) => {
      let encoded = names.get(value);
      if (!encoded) {
        encoded = encodeName(value);
        names.set(value, encoded);
      }
      return encoded;
    };
    const args: Arg[] = [this.#id, this.#ttlMs, batch.seq, this.#acked, batch.mode];
    const closing = batch.mode === 'release' || batch.mode === 'drain';
    const reap = batch.reap ? (closing ? REAP_PER_CLOSING_CALL : REAP_PER_CALL) : 0;
    args.push(reap, batch.entries.length);
    for (const { ref, count } of batch.entries) {
      args.push(ref.room === null ? 'p' : 'r', name(ref.project));
      args.push(name(ref.room ?? ''), encodeName(ref.user), count);
    }
    args.push(batch.admissions.length);
    for (const { project, user, limits } of batch.admissions) {
      args.push(encodeName(project), encodeName(user));
      args.push(limitArg(limits.maxConnections), limitArg(limits.maxConnectionsPerUser));
    }
    const outcome = this.#run(SCRIPTS.sync, args).then(
      (reply) => {
        let parsed: SyncReply;
        try {
          parsed = parseSync(reply);
        } catch {
          return this.#failed(batch);
        }
        return this.#received(batch, parsed);
      },
      () => this.#failed(batch),
    );
    const ok = outcome.then((o) => o === 'ok');
    this.#lastSent = ok;
    if (batch.covers > this.#sentGen) {
      this.#sentGen = batch.covers;
      this.#answerWaiters(true, ok);
    }
    return outcome;
  }

  #answerWaiters(sent: boolean, outcome: Promise<boolean> = Promise.resolve(false)): void {
    const ready = sent
      ? this.#sendWaiters.filter((w) => w.gen <= this.#sentGen)
      : this.#sendWaiters;
    this.#sendWaiters = sent ? this.#sendWaiters.filter((w) => w.gen > this.#sentGen) : [];
    for (const waiter of ready) waiter.resolve({ outcome });
  }

  #received(batch: Batch, reply: SyncReply): Outcome {
    if (reply === 'lost') {
      // The lease is gone: Redis holds none of our entries. Take it again and send them all.
      this.#mode = 'start';
      this.#synced = false;
      this.#refreshDue = true;
      this.#remote.clear();
      for (const e of this.#local.entries()) this.#dirty.set(keyOf(e.project, e.room, e.user), e);
      this.#admissions.unshift(...batch.admissions);
      return 'lost';
    }
    if (batch.mode === 'start') this.#mode = 'run';
    for (const { key, count } of batch.entries) {
      if (count === 0) this.#remote.delete(key);
      else this.#remote.set(key, count);
    }
    batch.admissions.forEach((admission, i) => {
      const verdict = reply.verdicts[i] ?? 'admitted';
      if (verdict === 'admitted') {
        const key = keyOf(admission.project, null, admission.user);
        this.#local.change(admission.project, null, admission.user, 1);
        this.#remote.set(key, (this.#remote.get(key) ?? 0) + 1);
      }
      admission.resolve(verdict);
    });
    this.#alive = reply.alive;
    if (reply.more) this.#reapDue = true;
    // Those of calls up to the last answered one were reported with their own answer.
    const transitions = reply.transitions.filter((t) => t.seq > this.#acked);
    this.#acked = batch.seq;
    this.#synced = true;
    this.#whenSynced?.();
    this.#report(transitions);
    return 'ok';
  }

  #failed(batch: Batch): Outcome {
    // The call may or may not have run: Redis' counts of these entries are unknown until sent again.
    this.#synced = false;
    this.#refreshDue = true;
    if (batch.reap) this.#reapDue = true;
    for (const { key, ref } of batch.entries) {
      this.#remote.set(key, Number.NaN);
      this.#dirty.set(key, ref);
    }
    for (const admission of batch.admissions) {
      const key = keyOf(admission.project, null, admission.user);
      this.#remote.set(key, Number.NaN);
      this.#dirty.set(key, { project: admission.project, room: null, user: admission.user });
      admission.resolve(this.#admitLocally(admission.project, admission.user, admission.limits));
    }
    return 'failed';
  }

  #report(transitions: ReadonlyArray<Transition & { seq: number }>): void {
    for (const { seq: _, ...transition } of transitions) {
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
