/**
 * Puts one room's messages, as this instance receives them from the bus, back in `seq` order, each
 * once. Redis does not order messages from different publishers, and drops what is published while
 * a link is down, so a message that arrives ahead of a missing one is held back for a short while,
 * and a gap that does not fill is read from the store.
 *
 * Nothing the stream is asked to do is dropped: a baseline that cannot be read is read again until
 * it is known, a read from the store that fails is retried, and a request for a read that comes
 * while one runs extends it. Reads from the store go page by page, yielding to the event loop
 * between pages.
 */
import type { RoomMessage } from '../domain.js';

export interface RoomStreamSource {
  /** The highest seq stored in this room, 0 when it has none. */
  lastSeq(): Promise<number>;
  /** Stored messages of this room with seq in [from, to], oldest first. */
  range(fromSeq: number, toSeq: number): Promise<RoomMessage[]>;
}

export interface RoomStreamOptions {
  /** How long a message that arrived early waits for the missing ones before the store is read. */
  gapWaitMs: number;
  /** Messages read from the store at a time. */
  pageSize: number;
  /** First wait before a failed store read is tried again; it doubles up to `maxRetryMs`. */
  retryMs: number;
  maxRetryMs: number;
}

export const STREAM_DEFAULTS: RoomStreamOptions = {
  gapWaitMs: 100,
  pageSize: 500,
  retryMs: 100,
  maxRetryMs: 2000,
};

export const GAP_WAIT_MS = STREAM_DEFAULTS.gapWaitMs;

export interface RoomStreamEvents {
  deliver(message: RoomMessage): void;
  onGapFilled(count: number): void;
}

/** Read from the store up to the newest message, however far that is. */
const TO_THE_END = Number.MAX_SAFE_INTEGER;

export class RoomStream {
  /** The seq to deliver next; undefined until the baseline is known. */
  #next: number | undefined;
  readonly #held = new Map<number, RoomMessage>();
  #gapTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay: number;
  /** The highest seq a store read was asked to reach and has not reached yet; 0: none asked. */
  #fillTarget = 0;
  #filling = false;
  #closed = false;
  /** Joins waiting for the baseline: they answer `joined` with it. */
  #waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  readonly #source: RoomStreamSource;
  readonly #events: RoomStreamEvents;
  readonly #options: RoomStreamOptions;

  constructor(
    source: RoomStreamSource,
    events: RoomStreamEvents,
    options: RoomStreamOptions = STREAM_DEFAULTS,
  ) {
    this.#source = source;
    this.#events = events;
    this.#options = options;
    this.#retryDelay = options.retryMs;
  }

  /**
   * Reads the room's last stored seq, from which this instance delivers. Resolves once it is known
   * or after the first failed attempt; attempts go on until one succeeds, and messages that arrive
   * meanwhile are held, then delivered in order.
   */
  start(): Promise<void> {
    return this.#readBaseline();
  }

  get started(): boolean {
    return this.#next !== undefined;
  }

  /** The last seq this stream delivered (or started after); undefined before the baseline. */
  get position(): number | undefined {
    return this.#next === undefined ? undefined : this.#next - 1;
  }

  /** Resolves once the baseline is known; rejects after `timeoutMs`, or when the stream closes. */
  whenStarted(timeoutMs: number): Promise<void> {
    if (this.#next !== undefined) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error('room stream closed'));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((other) => other !== waiter);
        reject(new Error('the room position could not be read in time'));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  accept(message: RoomMessage): void {
    if (this.#closed) return;
    if (this.#next === undefined) {
      this.#held.set(message.seq, message);
      return;
    }
    if (message.seq < this.#next) return;
    if (message.seq === this.#next) {
      this.#next++;
      this.#events.deliver(message);
      if (this.#held.size > 0) this.#drain();
      return;
    }
    this.#held.set(message.seq, message);
    this.#gapTimer ??= setTimeout(() => this.#fillGap(), this.#options.gapWaitMs);
  }

  /** Reads from the store whatever came after the last delivered message (after a bus outage). */
  catchUp(): void {
    this.#requestFill(TO_THE_END);
  }

  /**
   * Resolves once every message up to `seq` has been delivered (reading the store for those that
   * do not come), or when the stream closes.
   */
  async settle(seq: number): Promise<void> {
    while (!this.#closed && (this.#next === undefined || this.#next <= seq)) {
      if (this.#next !== undefined) this.#requestFill(seq);
      await new Promise((resolve) => setTimeout(resolve, this.#options.gapWaitMs));
    }
  }

  close(): void {
    this.#closed = true;
    this.#held.clear();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error('room stream closed'));
    clearTimeout(this.#gapTimer);
    clearTimeout(this.#retryTimer);
    this.#gapTimer = undefined;
    this.#retryTimer = undefined;
  }

  async #readBaseline(): Promise<void> {
    let last: number;
    try {
      last = await this.#source.lastSeq();
    } catch {
      this.#retry(() => void this.#readBaseline());
      return;
    }
    if (this.#closed || this.#next !== undefined) return;
    this.#retryDelay = this.#options.retryMs;
    // Messages held while the baseline was unknown were published after this instance subscribed,
    // so they belong to this stream even when the read came back later than they did.
    const oldest = this.#oldestHeld();
    this.#next = oldest === undefined ? last + 1 : Math.min(last + 1, oldest);
    this.#drain();
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
  }

  #drain(): void {
    if (this.#next === undefined) return;
    for (const seq of this.#held.keys()) {
      if (seq < this.#next) this.#held.delete(seq);
    }
    let message = this.#held.get(this.#next);
    while (message !== undefined) {
      this.#held.delete(this.#next);
      this.#next++;
      this.#events.deliver(message);
      message = this.#held.get(this.#next);
    }
    if (this.#held.size === 0) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    } else {
      this.#gapTimer ??= setTimeout(() => this.#fillGap(), this.#options.gapWaitMs);
    }
  }

  /** The lowest held seq, found by a loop: spreading 100,000 keys into Math.min would throw. */
  #oldestHeld(): number | undefined {
    let oldest: number | undefined;
    for (const seq of this.#held.keys()) if (oldest === undefined || seq < oldest) oldest = seq;
    return oldest;
  }

  #fillGap(): void {
    this.#gapTimer = undefined;
    const oldest = this.#oldestHeld();
    if (oldest !== undefined) this.#requestFill(oldest - 1);
  }

  #requestFill(toSeq: number): void {
    if (this.#closed || this.#next === undefined) return;
    this.#fillTarget = Math.max(this.#fillTarget, toSeq);
    if (!this.#filling && this.#retryTimer === undefined) void this.#fill();
  }

  /**
   * Reads pages from the store until the target is reached or the room has nothing more. Seqs are
   * gapless when stored and a message is published only after its commit, so a seq the store does
   * not have below one it has (or below one held here) was removed since: it is skipped.
   */
  async #fill(): Promise<void> {
    this.#filling = true;
    try {
      while (!this.#closed && this.#next !== undefined && this.#next <= this.#fillTarget) {
        const from = this.#next;
        const to = Math.min(this.#fillTarget, from + this.#options.pageSize - 1);
        const page = await this.#source.range(from, to);
        if (this.#closed) return;
        let filled = 0;
        for (const message of page) {
          if (message.seq < this.#next) continue;
          this.#next = message.seq + 1;
          this.#events.deliver(message);
          filled++;
        }
        if (filled > 0) this.#events.onGapFilled(filled);
        if (this.#next <= to) {
          // Nothing stored from here to `to`: the room ends here for now, unless a later message
          // is held, in which case these seqs were removed and are skipped.
          const oldest = this.#oldestHeld();
          if (oldest === undefined) break;
          this.#next = Math.min(oldest, to + 1);
        }
        // Messages that arrived meanwhile may continue where the page ended.
        this.#drain();
        // Let sockets and other rooms run between pages.
        await new Promise((resolve) => setImmediate(resolve));
      }
      this.#fillTarget = 0;
      this.#retryDelay = this.#options.retryMs;
    } catch {
      this.#retry(() => {
        this.#filling = false;
        this.#requestFill(this.#fillTarget);
      });
      return;
    } finally {
      if (this.#retryTimer === undefined) this.#filling = false;
    }
  }

  #retry(again: () => void): void {
    if (this.#closed) return;
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(this.#retryDelay * 2, this.#options.maxRetryMs);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      again();
    }, delay);
  }
}
