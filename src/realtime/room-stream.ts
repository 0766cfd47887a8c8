/**
 * Puts one room's messages, as this instance receives them from the bus, back in `seq` order, each
 * once. Redis does not order messages from different publishers, and drops what is published while
 * a link is down, so a message that arrives ahead of a missing one is held back for a short while,
 * and a gap that does not fill is read from the store.
 */
import type { RoomMessage } from '../protocol/frames.js';

export interface RoomStreamSource {
  /** Stored messages of this room with seq in [from, to], oldest first. */
  range(fromSeq: number, toSeq: number): Promise<RoomMessage[]>;
}

export const GAP_WAIT_MS = 100;
const CATCH_UP_LIMIT = Number.MAX_SAFE_INTEGER;

export class RoomStream {
  /** The seq to deliver next; undefined until the baseline is known. */
  #next: number | undefined;
  readonly #held = new Map<number, RoomMessage>();
  #gapTimer: NodeJS.Timeout | undefined;
  #filling = false;
  #closed = false;
  readonly #source: RoomStreamSource;
  readonly #deliver: (message: RoomMessage) => void;
  readonly #onGapFilled: (count: number) => void;

  constructor(
    source: RoomStreamSource,
    deliver: (message: RoomMessage) => void,
    onGapFilled: (count: number) => void,
  ) {
    this.#source = source;
    this.#deliver = deliver;
    this.#onGapFilled = onGapFilled;
  }

  /** Sets the last seq already in the store when this instance started listening. */
  start(lastSeq: number | undefined): void {
    if (this.#next !== undefined || this.#closed) return;
    if (lastSeq === undefined) {
      // Without a baseline, the oldest message held so far starts the stream.
      const oldest = Math.min(...this.#held.keys());
      if (!Number.isFinite(oldest)) return;
      this.#next = oldest;
    } else {
      this.#next = lastSeq + 1;
    }
    this.#drain();
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
      this.#deliver(message);
      if (this.#held.size > 0) this.#drain();
      return;
    }
    this.#held.set(message.seq, message);
    this.#gapTimer ??= setTimeout(() => this.#fillGap(), GAP_WAIT_MS);
  }

  /** Reads from the store whatever came after the last delivered message (after a bus outage). */
  catchUp(): void {
    if (this.#next === undefined) return;
    void this.#fillFromStore(CATCH_UP_LIMIT);
  }

  close(): void {
    this.#closed = true;
    this.#held.clear();
    if (this.#gapTimer !== undefined) clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
  }

  #drain(): void {
    if (this.#next === undefined) return;
    for (const seq of [...this.#held.keys()]) {
      if (seq < this.#next) this.#held.delete(seq);
    }
    let message = this.#held.get(this.#next);
    while (message !== undefined) {
      this.#held.delete(this.#next);
      this.#next++;
      this.#deliver(message);
      message = this.#held.get(this.#next);
    }
    if (this.#held.size === 0 && this.#gapTimer !== undefined) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    } else if (this.#held.size > 0) {
      this.#gapTimer ??= setTimeout(() => this.#fillGap(), GAP_WAIT_MS);
    }
  }

  #fillGap(): void {
    this.#gapTimer = undefined;
    if (this.#held.size === 0) return;
    void this.#fillFromStore(Math.min(...this.#held.keys()) - 1);
  }

  async #fillFromStore(toSeq: number): Promise<void> {
    if (this.#filling || this.#next === undefined) return;
    this.#filling = true;
    try {
      const missing = await this.#source.range(this.#next, toSeq);
      let filled = 0;
      for (const message of missing) {
        if (this.#closed) return;
        if (this.#next !== undefined && message.seq === this.#next) {
          this.#next++;
          this.#deliver(message);
          filled++;
        }
      }
      if (filled > 0) this.#onGapFilled(filled);
    } catch {
      // The store is away: keep holding; the next arrival or reconnect tries again.
    } finally {
      this.#filling = false;
    }
    if (!this.#closed) this.#drain();
  }
}
