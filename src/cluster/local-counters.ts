/**
 * The admission rule, token buckets and stored-message rates kept in this process: the whole of
 * them in memory, and the fallback of RedisClusterState while Redis is away. Buckets and rates are
 * keyed by project; projects are few (created by an admin), so nothing here is pruned.
 */
import type { Admission } from './cluster-state.js';

export const STORED_WINDOW_S = 10;

/**
 * How an instance spends its `ttlMs`: its lease lasts 3/4 of it and is refreshed (and lapsed
 * leases of others looked for) every quarter. A dead instance's entries are thus taken away within
 * ttlMs of its death (its lease lapses within 3/4, a survivor looks within the next quarter), and
 * a live one misses two refreshes before its lease lapses.
 */
export function leaseTiming(ttlMs: number): { leaseMs: number; refreshMs: number } {
  return {
    leaseMs: Math.max(1, Math.floor((ttlMs * 3) / 4)),
    refreshMs: Math.max(1, Math.floor(ttlMs / 4)),
  };
}

/** Under both limits (null: none), given the connections counted so far; the project's first. */
export function judge(
  projectConnections: number,
  maxConnections: number | null,
  userConnections: number,
  maxConnectionsPerUser: number | null,
): Admission {
  if (maxConnections !== null && projectConnections >= maxConnections) return 'projectFull';
  if (maxConnectionsPerUser !== null && userConnections >= maxConnectionsPerUser) return 'userFull';
  return 'admitted';
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();

  /**
   * Grants min(want, whole tokens held) from the project's bucket, which holds at most `burst`
   * tokens and gains `perSecond` a second. A bucket not seen before starts with `initial` tokens
   * (full by default). The rate and burst of the call apply, so a changed setting takes effect at
   * once.
   */
  take(
    project: string,
    perSecond: number,
    burst: number,
    want: number,
    now: number,
    initial = burst,
  ): number {
    const bucket = this.#buckets.get(project) ?? { tokens: initial, at: now };
    const elapsed = Math.max(0, now - bucket.at);
    const tokens = Math.min(burst, bucket.tokens + (elapsed * Math.max(0, perSecond)) / 1000);
    const granted = Math.max(0, Math.min(Math.floor(want), Math.floor(tokens)));
    bucket.tokens = tokens - granted;
    bucket.at = now;
    this.#buckets.set(project, bucket);
    return granted;
  }

  clear(): void {
    this.#buckets.clear();
  }
}

/** Counts per second over the last STORED_WINDOW_S seconds, in a ring of one slot a second. */
class SecondRing {
  readonly #seconds = new Float64Array(STORED_WINDOW_S).fill(-1);
  readonly #counts = new Float64Array(STORED_WINDOW_S);

  add(second: number, count: number): void {
    const slot = second % STORED_WINDOW_S;
    if (this.#seconds[slot] !== second) {
      this.#seconds[slot] = second;
      this.#counts[slot] = 0;
    }
    this.#counts[slot] = (this.#counts[slot] ?? 0) + count;
  }

  /** The newest second counted (-1: none). */
  get newest(): number {
    let newest = -1;
    for (const at of this.#seconds) if (at > newest) newest = at;
    return newest;
  }

  /** The sum over the window ending with `second` (that second included). */
  sum(second: number): number {
    let total = 0;
    for (let slot = 0; slot < STORED_WINDOW_S; slot++) {
      const at = this.#seconds[slot] ?? -1;
      if (at > second - STORED_WINDOW_S && at <= second) total += this.#counts[slot] ?? 0;
    }
    return total;
  }
}

export class StoredRates {
  readonly #projects = new Map<string, SecondRing>();
  readonly #all = new SecondRing();
  #sweptAt = -1;

  /** Projects with a ring (those that stored in the last window, and some just before). */
  get tracked(): number {
    return this.#projects.size;
  }

  record(project: string, count: number, second: number): void {
    // Once a window, the rings of projects quiet for a whole window go (a deleted project's too):
    // they would only ever answer 0, and tenants come and go.
    if (second - this.#sweptAt >= STORED_WINDOW_S) {
      this.#sweptAt = second;
      for (const [hash, ring] of this.#projects) {
        if (ring.newest <= second - STORED_WINDOW_S) this.#projects.delete(hash);
      }
    }
    let ring = this.#projects.get(project);
    if (!ring) {
      ring = new SecondRing();
      this.#projects.set(project, ring);
    }
    ring.add(second, count);
    this.#all.add(second, count);
  }

  /** Messages a second over the window ending with `second`: of `project`, or of all. */
  perSecond(project: string | undefined, second: number): number {
    const ring = project === undefined ? this.#all : this.#projects.get(project);
    return (ring?.sum(second) ?? 0) / STORED_WINDOW_S;
  }
}

export function epochSecond(): number {
  return Math.floor(Date.now() / 1000);
}
