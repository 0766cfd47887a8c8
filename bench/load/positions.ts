/**
 * What one connection sees of its room's positions (recovery scenario): the LAST its `joined`
 * gave, the highest `seq` so far, and whether the deliveries after its starting position came each
 * once and in order. Counted in the worker, on the path of every delivery of such a connection.
 */
import type { Position } from './messages.js';

export class SeqFollower {
  readonly #since: number | undefined;
  #joinedSeq: number | undefined;
  #recovered: boolean | undefined;
  /** The `seq` expected next; undefined until the join sets the starting position. */
  #next: number | undefined;
  #highest = 0;
  #replayed = 0;
  #repeated = 0;
  #skipped = 0;
  #lastUs = 0;

  constructor(since: number | undefined) {
    this.#since = since;
  }

  /** A `joined`: without `since` the connection starts at LAST, with it at `since`. */
  joined(seq: number, recovered: boolean | undefined): void {
    this.#joinedSeq = seq;
    this.#recovered = recovered;
    this.#highest = Math.max(this.#highest, seq);
    this.#next ??= (this.#since ?? seq) + 1;
  }

  delivered(seq: number, now: number): void {
    this.#lastUs = now;
    this.#highest = Math.max(this.#highest, seq);
    if (this.#next === undefined) return;
    if (seq < this.#next) {
      this.#repeated++;
      return;
    }
    this.#skipped += seq - this.#next;
    this.#replayed++;
    this.#next = seq + 1;
  }

  position(): Position {
    return {
      since: this.#since ?? null,
      joinedSeq: this.#joinedSeq ?? null,
      recovered: this.#recovered ?? null,
      highest: this.#highest,
      replayed: this.#replayed,
      repeated: this.#repeated,
      skipped: this.#skipped,
      lastUs: this.#lastUs,
    };
  }
}
