/** A token bucket: `rate` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  #tokens: number;
  #updatedAt: number;
  readonly #rate: number;
  readonly #burst: number;

  constructor(rate: number, burst: number, now = Date.now()) {
    this.#rate = rate / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#updatedAt = now;
  }

  /** Takes one token; false when none is left. */
  take(now = Date.now()): boolean {
    const elapsed = now - this.#updatedAt;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#rate);
      this.#updatedAt = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whole seconds until a token is available, at least 1 (for `Retry-After`). */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.#rate / 1000));
  }

  /** True once the bucket has refilled, so that a keeper of many buckets may forget it. */
  full(now = Date.now()): boolean {
    return this.#tokens + (now - this.#updatedAt) * this.#rate >= this.#burst;
  }
}
