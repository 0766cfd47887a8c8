/**
 * A project's limits over the whole deployment: its connections (per project and per user),
 * counted in the cluster state, and its message rate, drawn from one shared budget in slices so
 * that no message waits for a round trip while the slice lasts.
 *
 * The rate's bound: the shared bucket holds at most `burst` = rate/5 tokens, and a slice is spent
 * within SLICE_HOLD_MS of being granted or dropped; so the messages stored over any 5 s window are
 * at most burst + rate × (5 s + hold) = 5.4 × rate, within the contract's 110 % (5.5 × rate).
 */
import type { Admission, ClusterState } from '../cluster/cluster-state.js';
import type { LimitSettings } from '../domain.js';

/** A granted slice is used within this long, or dropped (see the bound above). */
export const SLICE_HOLD_MS = 200;

interface Budget {
  tokens: number;
  /** When the tokens still held were granted: past SLICE_HOLD_MS they are dropped. */
  grantedAt: number;
  /** Messages waiting for the next slice, first come first served. */
  waiting: ((allowed: boolean) => void)[];
  fetching: boolean;
  /** The shared budget was spent: refuse without asking again until then. */
  spentUntil: number;
}

export type LimitsOf = (project: string) => LimitSettings;

export class ProjectLimits {
  readonly #cluster: ClusterState;
  readonly #limitsOf: LimitsOf;
  readonly #budgets = new Map<string, Budget>();

  constructor(cluster: ClusterState, limitsOf: LimitsOf) {
    this.#cluster = cluster;
    this.#limitsOf = limitsOf;
  }

  /**
   * Counts a new connection of `user` when the project's limits allow it. Without connection
   * limits it is counted at once (no round trip is awaited).
   */
  admit(project: string, user: string): Admission | Promise<Admission> {
    const { maxConnections, maxConnectionsPerUser } = this.#limitsOf(project);
    if (maxConnections === null && maxConnectionsPerUser === null) {
      this.#cluster.enter(project, null, user);
      return 'admitted';
    }
    return this.#cluster.admit(project, user, { maxConnections, maxConnectionsPerUser });
  }

  /** A counted connection closed. */
  release(project: string, user: string): void {
    this.#cluster.exit(project, null, user);
  }

  /**
   * Takes one message of the project's rate: true or false at once while a slice lasts (or there
   * is no limit), else a promise, settled in arrival order, so that a connection's messages keep
   * their order.
   */
  takeMessage(project: string): boolean | Promise<boolean> {
    const perSecond = this.#limitsOf(project).maxMessagesPerSecond;
    if (perSecond === null) {
      if (this.#budgets.size > 0) this.#budgets.delete(project);
      return true;
    }
    let budget = this.#budgets.get(project);
    if (budget === undefined) {
      budget = { tokens: 0, grantedAt: 0, waiting: [], fetching: false, spentUntil: 0 };
      this.#budgets.set(project, budget);
    }
    const now = Date.now();
    if (budget.tokens > 0 && now - budget.grantedAt > SLICE_HOLD_MS) budget.tokens = 0;
    if (budget.waiting.length === 0) {
      if (budget.tokens > 0) {
        budget.tokens--;
        if (budget.tokens < sliceOf(perSecond) / 2) this.#fetch(project, budget, perSecond);
        return true;
      }
      if (now < budget.spentUntil) return false;
    }
    const answer = new Promise<boolean>((resolve) => budget.waiting.push(resolve));
    this.#fetch(project, budget, perSecond);
    return answer;
  }

  #fetch(project: string, budget: Budget, perSecond: number): void {
    if (budget.fetching) return;
    budget.fetching = true;
    const slice = Math.min(burstOf(perSecond), Math.max(sliceOf(perSecond), budget.waiting.length));
    void this.#cluster
      .takeBudget(project, perSecond, burstOf(perSecond), slice)
      .catch(() => 0)
      .then((granted) => {
        budget.fetching = false;
        const now = Date.now();
        if (now - budget.grantedAt > SLICE_HOLD_MS) budget.tokens = 0;
        budget.tokens += granted;
        budget.grantedAt = now;
        // Less than asked for: the shared bucket is dry until the rest has refilled.
        const drained = granted < slice;
        if (drained) budget.spentUntil = now + Math.ceil(((slice - granted) * 1000) / perSecond);
        while (budget.tokens > 0 && budget.waiting.length > 0) {
          budget.tokens--;
          budget.waiting.shift()?.(true);
        }
        if (budget.waiting.length === 0) return;
        if (drained) {
          for (const resolve of budget.waiting.splice(0)) resolve(false);
          return;
        }
        this.#fetch(project, budget, perSecond);
      });
  }
}

/** The shared bucket's depth: rate/5, so that bursts stay within the 5-second bound. */
export function burstOf(perSecond: number): number {
  return Math.max(1, Math.floor(perSecond / 5));
}

/** Tokens asked for at a time: half the bucket, so that several instances share it. */
function sliceOf(perSecond: number): number {
  return Math.max(1, Math.floor(burstOf(perSecond) / 2));
}
