/**
 * Closes connections whose token expires, for all of them with one timer: members are kept in
 * buckets of one second (by the second their deadline falls in), and one timer, running only while
 * some bucket is not empty, empties each bucket just after its second has passed. A connection
 * without `exp` is never here and costs nothing; one with `exp` costs an entry in one Set, where a
 * `setTimeout` each would cost a timer object and a closure per connection.
 */

export interface Expiring {
  /** Its deadline passed: the member closes itself (and need not cancel). */
  expire(): void;
}

/** The bucket a member was put in: what `cancel` needs back. */
export type ExpiryTicket = number;

export interface ExpiryWheelOptions {
  /** Added to each `exp`: a member expires once exp + tolerance has passed. */
  toleranceMs: number;
  now?: () => number;
}

const SECOND_MS = 1000;
/**
 * How long after a second's end its bucket is emptied: a timer may fire a millisecond before the
 * wall clock says its time has come, and a deadline must have passed when its member expires.
 */
const TICK_SLACK_MS = 5;

export class ExpiryWheel<T extends Expiring> {
  /**
   * Second → members whose deadline is in (second − 1 s, second]. Seconds are counted from the
   * wheel's start, so that keys and tickets are small integers (no heap number per connection).
   */
  readonly #buckets = new Map<number, Set<T>>();
  readonly #toleranceMs: number;
  readonly #now: () => number;
  /** The epoch second the wheel's seconds count from. */
  readonly #origin: number;
  /** The first second whose bucket has not been emptied yet. */
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #size = 0;

  constructor(options: ExpiryWheelOptions) {
    this.#toleranceMs = options.toleranceMs;
    this.#now = options.now ?? Date.now;
    this.#origin = Math.floor(this.#now() / SECOND_MS);
  }

  /** Members waiting for their deadline. */
  get size(): number {
    return this.#size;
  }

  /**
   * Expires `member` once `expiresAtMs` + the tolerance has passed, within a second (plus the
   * event loop's delay) of it; a deadline already past expires at the next tick, never inside
   * this call.
   */
  schedule(member: T, expiresAtMs: number): ExpiryTicket {
    if (this.#timer === undefined) {
      // Idle until now: seconds that went by meanwhile had nothing to expire.
      this.#next = Math.max(this.#next, this.#second(this.#now()) - 1);
    }
    const due = this.#second(expiresAtMs + this.#toleranceMs);
    const second = Math.max(due, this.#next);
    let bucket = this.#buckets.get(second);
    if (bucket === undefined) {
      bucket = new Set();
      this.#buckets.set(second, bucket);
    }
    if (!bucket.has(member)) {
      bucket.add(member);
      this.#size++;
    }
    if (this.#timer === undefined) this.#arm();
    return second;
  }

  /** Takes `member` out of the bucket `ticket` names (nothing when it already expired). */
  cancel(member: T, ticket: ExpiryTicket): void {
    const bucket = this.#buckets.get(ticket);
    if (bucket === undefined || !bucket.delete(member)) return;
    this.#size--;
    if (bucket.size === 0) this.#buckets.delete(ticket);
    if (this.#size === 0) this.#disarm();
  }

  /** Stops the timer; members left are never expired. Safe to call twice. */
  close(): void {
    this.#buckets.clear();
    this.#size = 0;
    this.#disarm();
  }

  /** The wheel's second whose end is the first at or after `ms`. */
  #second(ms: number): number {
    return Math.ceil(ms / SECOND_MS) - this.#origin;
  }

  #arm(): void {
    const delay = (this.#origin + this.#next) * SECOND_MS + TICK_SLACK_MS - this.#now();
    this.#timer = setTimeout(this.#tick, Math.max(0, delay));
    // Expiry alone never keeps the process alive: the sockets do.
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    const now = this.#now();
    // Every second that ends before now is over: its members' deadlines have passed.
    const last = this.#second(now) - 1;
    for (; this.#next <= last && this.#size > 0; this.#next++) {
      const bucket = this.#buckets.get(this.#next);
      if (bucket === undefined) continue;
      this.#buckets.delete(this.#next);
      this.#size -= bucket.size;
      for (const member of bucket) member.expire();
    }
    this.#next = Math.max(this.#next, last + 1);
    if (this.#size > 0 && this.#timer === undefined) this.#arm();
  };
}
