/**
 * A set of strings kept in code unit order (JavaScript's `<`), for paging presence and rooms.
 *
 * Held as a list of chunks of at most CHUNK strings, so that an insert or a removal moves at most one
 * chunk (plus, on a split, the list of chunks): a plain sorted array would move half of a 100,000
 * user room on every join. Finding a position is two binary searches (chunk, then within it); a
 * page is read in place, O(log n + page).
 */
const CHUNK = 512;

export class SortedStrings {
  #chunks: string[][] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Adds `value`; a value already held is left as it is. */
  add(value: string): void {
    if (this.#chunks.length === 0) {
      this.#chunks.push([value]);
      this.#size = 1;
      return;
    }
    const c = this.#chunkFor(value);
    const chunk = this.#chunks[c] as string[];
    const i = lowerBound(chunk, value);
    if (chunk[i] === value) return;
    chunk.splice(i, 0, value);
    this.#size += 1;
    if (chunk.length > CHUNK) {
      this.#chunks.splice(c + 1, 0, chunk.splice(CHUNK / 2));
    }
  }

  /** Removes `value`; a value not held is ignored. */
  delete(value: string): void {
    if (this.#chunks.length === 0) return;
    const c = this.#chunkFor(value);
    const chunk = this.#chunks[c] as string[];
    const i = lowerBound(chunk, value);
    if (chunk[i] !== value) return;
    chunk.splice(i, 1);
    this.#size -= 1;
    // An empty chunk would break the search on first elements; small ones are fine.
    if (chunk.length === 0) this.#chunks.splice(c, 1);
  }

  /** At most `limit` values greater than `after` (from the first when undefined), in order. */
  after(after: string | undefined, limit: number): string[] {
    const page: string[] = [];
    if (this.#chunks.length === 0 || limit <= 0) return page;
    let c = 0;
    let i = 0;
    if (after !== undefined) {
      c = this.#chunkFor(after);
      i = upperBound(this.#chunks[c] as string[], after);
    }
    for (; c < this.#chunks.length; c++, i = 0) {
      const chunk = this.#chunks[c] as string[];
      for (; i < chunk.length; i++) {
        page.push(chunk[i] as string);
        if (page.length >= limit) return page;
      }
    }
    return page;
  }

  /** The last chunk whose first value is at most `value` (0 when none is). */
  #chunkFor(value: string): number {
    let lo = 0;
    let hi = this.#chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (((this.#chunks[mid] as string[])[0] as string) <= value) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** The first index whose value is not less than `value`. */
function lowerBound(values: readonly string[], value: string): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((values[mid] as string) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose value is greater than `value`. */
function upperBound(values: readonly string[], value: string): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((values[mid] as string) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
