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
import { epochSecond, judge, leaseTiming, StoredRates, TokenBuckets } from './local-counters.js';
import { type IndexEntry, PresenceIndex } from './presence-index.js';

export const DEFAULT_TTL_MS = 30_000;

interface Lease {
  expiresAt: number;
  /** What this lease counts, so that it can all be taken away when the lease goes. */
  entries: Map<string, IndexEntry>;
}

function entryKey(project: string, room: string | null, user: string): string {
  // JSON keeps the three apart whatever they contain, and null apart from "null".
  return JSON.stringify([project, room, user]);
}

/**
 * The shared state of a deployment held in one process: what Redis is to RedisClusterState. Every
 * MemoryClusterState given the same deployment sees the same presence, counts and budgets, each
 * under its own lease, so that one process can play several instances (the contract suite does).
 * Its methods are for MemoryClusterState; each is atomic (plain synchronous code).
 */
export class MemoryDeployment {
  readonly #index = new PresenceIndex();
  readonly #leases = new Map<string, Lease>();
  readonly #buckets = new TokenBuckets();
  readonly #stored = new StoredRates();

  /** Takes the lease of `id` for `leaseMs`, first giving up one it held, and counts `entries`. */
  register(id: string, leaseMs: number, entries: Iterable<IndexEntry>): Transition[] {
    const transitions = this.release(id);
    const lease: Lease = { expiresAt: performance.now() + leaseMs, entries: new Map() };
    this.#leases.set(id, lease);
    for (const e of entries)
      this.#apply(lease, e.project, e.room, e.user, e.connections, transitions);
    return transitions;
  }

  /** Extends the lease of `id`; false when it has none (it lapsed and was reaped). */
  renew(id: string, leaseMs: number): boolean {
    const lease = this.#leases.get(id);
    if (!lease) return false;
    lease.expiresAt = performance.now() + leaseMs;
    return true;
  }

  apply(
    id: string,
    project: string,
    room: string | null,
    user: string,
    delta: number,
  ): Transition[] | 'lost' {
    const lease = this.#leases.get(id);
    if (!lease) return 'lost';
    const transitions: Transition[] = [];
    this.#apply(lease, project, room, user, delta, transitions);
    return transitions;
  }

  /** Checks both limits over every lease and, under them, counts the connection under `id`'s. */
  admit(id: string, project: string, user: string, limits: ConnectionLimits): Admission | 'lost' {
    const lease = this.#leases.get(id);
    if (!lease) return 'lost';
    const verdict = judge(
      this.#index.counts(project).connections,
      limits.maxConnections,
      this.#index.count(project, null, user),
      limits.maxConnectionsPerUser,
    );
    if (verdict === 'admitted') this.#apply(lease, project, null, user, 1, []);
    return verdict;
  }

  /** Takes away every lease that lapsed, with what it counted. */
  reap(): Transition[] {
    const now = performance.now();
    const transitions: Transition[] = [];
    for (const [id, lease] of this.#leases) {
      if (lease.expiresAt <= now) transitions.push(...this.release(id));
    }
    return transitions;
  }

  /** Gives up the lease of `id` at once, with what it counted. */
  release(id: string): Transition[] {
    const lease = this.#leases.get(id);
    const transitions: Transition[] = [];
    if (!lease) return transitions;
    this.#leases.delete(id);
    for (const e of lease.entries.values()) {
      const present = this.#index.change(e.project, e.room, e.user, -e.connections);
      if (present !== undefined && e.room !== null) {
        transitions.push({ project: e.project, room: e.room, user: e.user, present });
      }
    }
    return transitions;
  }

  /** Leases not lapsed. */
  alive(): number {
    const now = performance.now();
    let alive = 0;
    for (const lease of this.#leases.values()) if (lease.expiresAt > now) alive += 1;
    return alive;
  }

  /**
   * Changes the count of an instance that shares its deployment with nobody: no lease records it
   * (no survivor will ever take it away), so that an idle connection costs one index entry, not
   * three.
   */
  applyUnleased(project: string, room: string | null, user: string, delta: number): Transition[] {
    const present = this.#index.change(project, room, user, delta);
    return present !== undefined && room !== null ? [{ project, room, user, present }] : [];
  }

  /** `admit` for an instance that shares its deployment with nobody (see applyUnleased). */
  admitUnleased(project: string, user: string, limits: ConnectionLimits): Admission {
    const verdict = judge(
      this.#index.counts(project).connections,
      limits.maxConnections,
      this.#index.count(project, null, user),
      limits.maxConnectionsPerUser,
    );
    if (verdict === 'admitted') this.#index.change(project, null, user, 1);
    return verdict;
  }

  /** Everything counted without a lease goes: the leave of every present user. */
  releaseUnleased(): Transition[] {
    const transitions: Transition[] = [];
    for (const { project, room, user } of this.#index.entries()) {
      if (room !== null) transitions.push({ project, room, user, present: false });
    }
    this.#index.clear();
    return transitions;
  }

  /** Connections of `user` in the scope, over every lease. */
  countOf(project: string, room: string | null, user: string): number {
    return this.#index.count(project, room, user);
  }

  /** Connections of `user` in the project, over every lease. */
  connectionsOf(project: string, user: string): number {
    return this.#index.count(project, null, user);
  }

  presence(project: string, room: string, after: string | undefined, limit: number) {
    return this.#index.presence(project, room, after, limit);
  }

  rooms(project: string, after: string | undefined, limit: number) {
    return this.#index.rooms(project, after, limit);
  }

  counts(project: string) {
    return this.#index.counts(project);
  }

  totals() {
    return this.#index.totals();
  }

  takeBudget(project: string, perSecond: number, burst: number, want: number): number {
    return this.#buckets.take(project, perSecond, burst, want, performance.now());
  }

  recordStored(project: string, count: number): void {
    this.#stored.record(project, count, epochSecond());
  }

  storedPerSecond(project: string | undefined): number {
    return this.#stored.perSecond(project, epochSecond());
  }

  #apply(
    lease: Lease,
    project: string,
    room: string | null,
    user: string,
    delta: number,
    transitions: Transition[],
  ): void {
    const key = entryKey(project, room, user);
    const held = lease.entries.get(key)?.connections ?? 0;
    const connections = Math.max(0, held + delta);
    if (connections === held) return;
    if (connections === 0) lease.entries.delete(key);
    else lease.entries.set(key, { project, room, user, connections });
    const present = this.#index.change(project, room, user, connections - held);
    if (present !== undefined && room !== null) transitions.push({ project, room, user, present });
  }
}

export interface MemoryClusterStateOptions {
  /** The shared state; instances given the same one see each other. Default: a fresh one. */
  deployment?: MemoryDeployment;
  /** Within how long of its death an instance's entries go (see leaseTiming). Default 30000. */
  ttlMs?: number;
  instanceId?: string;
}

/**
 * The ClusterState of one instance on a MemoryDeployment. On top of the contract:
 * - Everything but the delivery of transitions is synchronous; handlers run on a microtask after
 *   the call that caused them (and before `close` resolves, for its own), never inside it.
 * - `crash()` stops the instance as a killed process would: no refresh, no release. Its lease
 *   lapses and a survivor's next refresh reaps it, within `ttlMs`.
 * - Calls before `start` are kept locally and counted by `start`; after `close` (or `crash`),
 *   `enter` and `exit` are ignored, `admit` answers 'admitted' and counts nothing, reads answer
 *   an empty view with `partial: true`.
 */
export class MemoryClusterState implements ClusterState {
  readonly #deployment: MemoryDeployment;
  readonly #leaseMs: number;
  readonly #refreshMs: number;
  readonly #id: string;
  readonly #handlers: Array<(transition: Transition) => void> = [];
  /** This instance's own connections: what it counts again if its lease was lost. */
  readonly #mine = new PresenceIndex();
  /**
   * Nobody else shares the deployment (no `deployment` option: one process is the whole
   * deployment): its index is the truth, and no lease needs to record what it counts.
   */
  readonly #alone: boolean;
  #state: 'new' | 'running' | 'stopped' = 'new';
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: MemoryClusterStateOptions = {}) {
    this.#deployment = options.deployment ?? new MemoryDeployment();
    this.#alone = options.deployment === undefined;
    ({ leaseMs: this.#leaseMs, refreshMs: this.#refreshMs } = leaseTiming(
      options.ttlMs ?? DEFAULT_TTL_MS,
    ));
    this.#id = options.instanceId ?? randomUUID();
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    this.#state = 'running';
    if (this.#alone) {
      const transitions: Transition[] = [];
      for (const e of this.#mine.entries()) {
        transitions.push(
          ...this.#deployment.applyUnleased(e.project, e.room, e.user, e.connections),
        );
      }
      this.#mine.clear();
      this.#report(this.#deployment.register(this.#id, this.#leaseMs, []));
      this.#report(transitions);
    } else {
      this.#report(this.#deployment.register(this.#id, this.#leaseMs, this.#mine.entries()));
    }
    this.#timer = setInterval(() => this.#refresh(), this.#refreshMs);
  }

  enter(project: string, room: string | null, user: string): void {
    this.#change(project, room, user, 1);
  }

  exit(project: string, room: string | null, user: string): void {
    const counted =
      this.#alone && this.#state === 'running'
        ? this.#deployment.countOf(project, room, user)
        : this.#mine.count(project, room, user);
    if (counted === 0) return;
    this.#change(project, room, user, -1);
  }

  async admit(project: string, user: string, limits: ConnectionLimits): Promise<Admission> {
    if (this.#state === 'stopped') return 'admitted';
    if (this.#state === 'new') {
      const verdict = judge(
        this.#deployment.counts(project).connections,
        limits.maxConnections,
        this.#deployment.connectionsOf(project, user),
        limits.maxConnectionsPerUser,
      );
      if (verdict === 'admitted') this.#mine.change(project, null, user, 1);
      return verdict;
    }
    if (this.#alone) return this.#deployment.admitUnleased(project, user, limits);
    let verdict = this.#deployment.admit(this.#id, project, user, limits);
    if (verdict === 'lost') {
      this.#rejoin();
      verdict = this.#deployment.admit(this.#id, project, user, limits);
    }
    if (verdict === 'admitted') this.#mine.change(project, null, user, 1);
    return verdict === 'lost' ? 'admitted' : verdict;
  }

  async presence(
    project: string,
    room: string,
    after: string | undefined,
    limit: number,
  ): Promise<PresencePage> {
    if (this.#state === 'stopped') return { users: [], count: 0, partial: true };
    return { ...this.#deployment.presence(project, room, after, limit), partial: false };
  }

  async rooms(project: string, after: string | undefined, limit: number): Promise<RoomsPage> {
    if (this.#state === 'stopped') return { rooms: [], partial: true };
    return { rooms: this.#deployment.rooms(project, after, limit), partial: false };
  }

  async counts(project: string): Promise<Counts> {
    if (this.#state === 'stopped') return { connections: 0, users: 0, rooms: 0, partial: true };
    return { ...this.#deployment.counts(project), partial: false };
  }

  async totals(): Promise<Totals> {
    if (this.#state === 'stopped') {
      return { connections: 0, users: 0, rooms: 0, instances: 0, partial: true };
    }
    const instances = this.#deployment.alive();
    return { ...this.#deployment.totals(), instances, partial: false };
  }

  recordStored(project: string, count: number): void {
    if (this.#state !== 'stopped') this.#deployment.recordStored(project, count);
  }

  async storedPerSecond(project: string | undefined): Promise<number> {
    return this.#deployment.storedPerSecond(project);
  }

  async takeBudget(project: string, perSecond: number, burst: number, want: number) {
    return this.#deployment.takeBudget(project, perSecond, burst, want);
  }

  onTransition(handler: (transition: Transition) => void): void {
    this.#handlers.push(handler);
  }

  healthy(): boolean {
    return true;
  }

  /** Stops as a killed process would: the lease is neither refreshed nor given up. */
  crash(): void {
    this.#stop();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const running = this.#state === 'running';
      this.#stop();
      if (!running) return;
      const transitions = this.#deployment.release(this.#id);
      if (this.#alone) transitions.push(...this.#deployment.releaseUnleased());
      // Delivered before close resolves: whoever awaits it has heard its users leave.
      await new Promise<void>((resolve) => {
        this.#report(transitions);
        queueMicrotask(resolve);
      });
    })();
    return this.#closing;
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#state = 'stopped';
    this.#mine.clear();
  }

  #change(project: string, room: string | null, user: string, delta: number): void {
    if (this.#state === 'stopped') return;
    if (this.#alone && this.#state === 'running') {
      this.#report(this.#deployment.applyUnleased(project, room, user, delta));
      return;
    }
    this.#mine.change(project, room, user, delta);
    if (this.#state !== 'running') return;
    const transitions = this.#deployment.apply(this.#id, project, room, user, delta);
    // A lost lease is taken again with every connection of this instance, this one included.
    if (transitions === 'lost') this.#rejoin();
    else this.#report(transitions);
  }

  #refresh(): void {
    if (!this.#deployment.renew(this.#id, this.#leaseMs)) this.#rejoin();
    this.#report(this.#deployment.reap());
  }

  #rejoin(): void {
    this.#report(this.#deployment.register(this.#id, this.#leaseMs, this.#mine.entries()));
  }

  #report(transitions: readonly Transition[]): void {
    if (transitions.length === 0) return;
    queueMicrotask(() => {
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
    });
  }
}
