/**
 * The ClusterState seam: what the whole deployment knows about who is connected and present, held
 * under an instance lease. Implementations: memory-cluster-state.ts (one process),
 * redis-cluster-state.ts (Redis, shared by every instance). Both pass the same suite,
 * test/contract/cluster-state.contract.ts.
 *
 * Contract:
 * - Entries are counted per connection: `enter` adds one connection of `user` to a scope (a room
 *   of a project, or, with `room` null, the project itself), `exit` removes one. A user is present
 *   in a scope while at least one of their connections, on any instance, is in it.
 * - Calls take effect in the order they are made; a read issued after an `enter` or `exit` of this
 *   instance sees it. `enter` and `exit` never throw and never reject: while the shared state is
 *   away they are kept locally and applied when it returns (the local view is the truth for this
 *   instance's own connections).
 * - A transition is reported once for the whole deployment, through the `onTransition` handlers
 *   of exactly one instance: `present: true` when a user's first connection enters a room
 *   (anywhere), `present: false` when their last one leaves it — also when it goes because its
 *   instance died (its lease expired: within `ttlMs` of its last refresh) or because the state was
 *   restored after an outage. Project scopes (room null) report no transitions. An `enter` and
 *   the `exit` that undoes it may reach the shared state together (made in the same tick, or while
 *   it was away): then neither is reported.
 * - A count never costs a scan: `presence().count`, `counts()` and `totals()` are O(1) in the
 *   number of users; a page of `presence()` or `rooms()` is O(page) (plus O(log n) to find it).
 * - Reads never reject: while the shared state is away they answer from what this instance knows,
 *   with `partial: true`.
 * - `admit` counts the connection in its project (as `enter(project, null, user)`) only when it is
 *   under both limits (null: no limit), counted over every live instance; it never rejects. While
 *   the shared state is away, each instance enforces its share: the limit divided by the instances
 *   it last knew to be alive, rounded up, against its own connections.
 * - `takeBudget` grants at most `want` messages of a project's `perSecond` rate, from one budget
 *   shared by every instance: a token bucket holding at most `burst` tokens, refilled at
 *   `perSecond`. It may grant fewer (0 when spent). While the shared state is away, each instance
 *   draws from a bucket of its share (the rate divided by the instances it last knew alive).
 * - `recordStored` counts messages stored, for `storedPerSecond` (over the last 10 seconds, every
 *   instance together); it is cheap enough for the hot path (no I/O per call).
 * - `close` is ordered and safe to call twice; it gives up this instance's lease at once, so that its
 *   connections stop counting and its users leave (with their transitions) without waiting for
 *   `ttlMs`.
 */

/** One user present in a room, with how many of their connections are in it. */
export interface PresentUser {
  user: string;
  connections: number;
}

export interface PresencePage {
  /** Sorted by user (code unit order), after `after`, at most `limit`. */
  users: PresentUser[];
  /** Distinct users present in the room. */
  count: number;
  partial: boolean;
}

export interface PresentRoom {
  room: string;
  /** Distinct users present. */
  present: number;
}

export interface RoomsPage {
  /** Rooms with at least one user present, sorted by name, after `after`, at most `limit`. */
  rooms: PresentRoom[];
  partial: boolean;
}

export interface Counts {
  /** Open connections. */
  connections: number;
  /** Distinct users connected (summed over projects in `totals`). */
  users: number;
  /** Rooms with at least one user present. */
  rooms: number;
  partial: boolean;
}

export interface Totals extends Counts {
  /** Live instances (this one included). */
  instances: number;
}

export interface Transition {
  project: string;
  room: string;
  user: string;
  present: boolean;
}

export interface ConnectionLimits {
  maxConnections: number | null;
  maxConnectionsPerUser: number | null;
}

export type Admission = 'admitted' | 'projectFull' | 'userFull';

export interface ClusterState {
  /** Takes this instance's lease and starts refreshing it (and reaping dead instances). */
  start(): Promise<void>;
  enter(project: string, room: string | null, user: string): void;
  exit(project: string, room: string | null, user: string): void;
  admit(project: string, user: string, limits: ConnectionLimits): Promise<Admission>;
  presence(
    project: string,
    room: string,
    after: string | undefined,
    limit: number,
  ): Promise<PresencePage>;
  rooms(project: string, after: string | undefined, limit: number): Promise<RoomsPage>;
  counts(project: string): Promise<Counts>;
  totals(): Promise<Totals>;
  recordStored(project: string, count: number): void;
  /** Messages stored per second over the last 10 seconds: of one project, or of all of them. */
  storedPerSecond(project: string | undefined): Promise<number>;
  takeBudget(project: string, perSecond: number, burst: number, want: number): Promise<number>;
  onTransition(handler: (transition: Transition) => void): void;
  /** Whether the shared state answers now (always true in memory). */
  healthy(): boolean;
  close(): Promise<void>;
}
