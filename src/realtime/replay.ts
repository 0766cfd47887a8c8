/**
 * Recovery of one member in one room: the stored messages after the client's position, read in
 * pages and sent as the socket drains, while the room's live messages (all after the replay's
 * end) wait here; then the live ones, each once, and the member joins the room's live stream in
 * the same turn, so that nothing falls between the two.
 */
import type { RoomMessage } from '../domain.js';
import { messageFrame } from '../protocol/frames.js';
import type { PreparedFrame, PrepareFrame } from '../transport/connection.js';

/** What a replay needs of the member it sends to. */
export interface ReplayTarget {
  /** Bytes queued for the client and not yet written. */
  readonly backlog: number;
  /** Sends a frame without the slow-consumer check: the replay paces itself on `backlog`. */
  replay(frame: PreparedFrame): void;
}

export interface ReplayOptions {
  /** Messages read from the store at a time. */
  pageSize: number;
  /** The replay waits while the member's backlog is above this. */
  maxBacklogBytes: number;
  /** How often a waiting replay looks at the backlog again. */
  pollMs: number;
}

export const REPLAY_DEFAULTS: ReplayOptions = {
  pageSize: 200,
  maxBacklogBytes: 1024 * 1024,
  pollMs: 5,
};

export type ReadRange = (fromSeq: number, toSeq: number) => Promise<RoomMessage[]>;

export class Replay {
  readonly #target: ReplayTarget;
  readonly #read: ReadRange;
  readonly #prepare: PrepareFrame;
  readonly #options: ReplayOptions;
  /** The last seq the replay sends; live messages all come after it. */
  readonly last: number;
  /** Live messages that arrived during the replay, in seq order (the room stream orders them). */
  readonly held: RoomMessage[] = [];
  #heldBytes = 0;
  #sent: number;
  #cancelled = false;

  constructor(
    target: ReplayTarget,
    since: number,
    last: number,
    read: ReadRange,
    prepare: PrepareFrame,
    options: ReplayOptions,
  ) {
    this.#target = target;
    this.#sent = since;
    this.last = last;
    this.#read = read;
    this.#prepare = prepare;
    this.#options = options;
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Payload bytes held: the caller closes a member whose live traffic piles up past its limit. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  hold(message: RoomMessage): void {
    this.held.push(message);
    this.#heldBytes += message.payload.length;
  }

  cancel(): void {
    this.#cancelled = true;
  }

  /**
   * Reads the first page: undefined when the oldest message the client misses is no longer stored
   * (retention removed it), and nothing may be replayed.
   */
  async firstPage(): Promise<RoomMessage[] | undefined> {
    const from = this.#sent + 1;
    const page = await this.#read(from, Math.min(this.last, from + this.#options.pageSize - 1));
    return page[0]?.seq === from ? page : undefined;
  }

  /** Sends `first`, then every later page up to `last`; resolves when done or cancelled. */
  async run(first: RoomMessage[]): Promise<void> {
    let page = first;
    for (;;) {
      for (const message of page) {
        if (this.#cancelled) return;
        if (message.seq <= this.#sent || message.seq > this.last) continue;
        while (this.#target.backlog > this.#options.maxBacklogBytes) {
          await new Promise((resolve) => setTimeout(resolve, this.#options.pollMs));
          if (this.#cancelled) return;
        }
        this.#target.replay(this.#prepare(messageFrame(message)));
        this.#sent = message.seq;
      }
      if (this.#sent >= this.last || this.#cancelled) return;
      page = await this.#nextPage(this.#sent + 1);
      if (page.length === 0) return;
    }
  }

  /**
   * The next page from `from` on. What the store no longer has (retention removed it while the
   * replay ran: the oldest first) cannot be sent, but what it still has after it must be: an empty
   * window moves on to the next one instead of ending the replay.
   */
  async #nextPage(from: number): Promise<RoomMessage[]> {
    const size = this.#options.pageSize;
    for (let start = from; start <= this.last && !this.#cancelled; start += size) {
      const page = await this.#read(start, Math.min(this.last, start + size - 1));
      if (page.length > 0) return page;
    }
    return [];
  }
}
