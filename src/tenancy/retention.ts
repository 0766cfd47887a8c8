/**
 * Retention in the background: every interval, removes the messages that their project's retention
 * (or the server-wide default) no longer keeps, and idempotency keys past their window. The work
 * goes in batches of PURGE_BATCH_SIZE rows, one short store call each, with a turn of the event
 * loop between them, so that a purge of any size never stalls the sockets this instance serves.
 * One run at a time; a run that fails is reported once and the next interval tries again.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { RetentionSettings } from '../domain.js';
import type { Store } from '../store/store.js';

/** Rows one store call removes at most: a transaction of a few milliseconds on SQLite. */
export const PURGE_BATCH_SIZE = 500;

export interface RetentionOptions {
  intervalMs: number;
  /** What applies to a project whose own value is null (null: keep forever). */
  defaults: RetentionSettings;
  idempotencyWindowMs: number;
  batchSize?: number;
  /** Once per run that removed anything, with how many rows it removed. */
  onPurged?: (removed: number) => void;
  /** Once per run that failed; what it removed before the failure stays removed. */
  onFailed: (error: unknown) => void;
}

export class Retention {
  readonly #store: Pick<Store, 'purgeExpired'>;
  readonly #options: RetentionOptions;
  readonly #batchSize: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(store: Pick<Store, 'purgeExpired'>, options: RetentionOptions) {
    this.#store = store;
    this.#options = options;
    this.#batchSize = options.batchSize ?? PURGE_BATCH_SIZE;
  }

  /** Runs every interval from now on, until `close`. */
  start(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.run(), this.#options.intervalMs);
    // The purge is housekeeping: it never keeps a process alive by itself.
    this.#timer.unref();
  }

  /**
   * One run: store calls until one removes fewer than a batch. A run asked for while one is going
   * joins it. Never rejects: a failure goes to `onFailed`.
   */
  run(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= this.#purge().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops the timer and waits for the run in progress (it ends after its current batch). */
  async close(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  async #purge(): Promise<void> {
    const { defaults, idempotencyWindowMs } = this.#options;
    let removed = 0;
    try {
      while (!this.#stopped) {
        const count = await this.#store.purgeExpired({
          now: Date.now(),
          defaults,
          idempotencyWindowMs,
          limit: this.#batchSize,
        });
        removed += count;
        if (count < this.#batchSize) break;
        // Sockets, timers and answers from the database go first between two batches.
        await nextTurn();
      }
    } catch (error) {
      this.#options.onFailed(error);
    }
    if (removed > 0) this.#options.onPurged?.(removed);
  }
}
