/**
 * Keeps SQLite's WAL checkpoints off the event loop. SQLite's own automatic checkpoint runs inside
 * the commit that crosses its threshold and ends in two fsyncs: the event loop, and every message
 * waiting on it, stalled for milliseconds a few times a second under load. Here a worker thread
 * with its own connection copies the WAL back into the file a little after commits.
 *
 * A checkpoint running beside the writer cannot let the WAL start over while commits keep coming
 * (SQLite rewinds it only when a write begins with every frame copied back), so when the worker
 * reports a WAL past `maxWalFrames`, the writer finishes that checkpoint itself at once, between
 * two commits: only the frames of the last few milliseconds are left to sync and copy, and the log
 * rewinds at the next commit.
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { CheckpointRequest, CheckpointResult } from './sqlite-checkpoint-worker.js';

export interface CheckpointerOptions {
  /** How long after a commit the worker checkpoints (commits in between share it). */
  delayMs: number;
  /** WAL size, in pages, past which the writer finishes a checkpoint itself. */
  maxWalFrames: number;
  onError(error: unknown): void;
}

/** At most this many commits left uncopied by the worker for the writer to finish them itself. */
const FINISH_BEHIND_COMMITS = 4;
/** SQLite's default threshold for the writer's own checkpoint, restored if the worker fails. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

export class SqliteCheckpointer {
  readonly #db: Database.Database;
  readonly #options: CheckpointerOptions;
  readonly #worker: Worker;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  /** Commits while a checkpoint ran: their frames are what it left to copy. */
  #commitsWhileRunning = 0;
  #failed = false;
  #closed: Promise<void> | undefined;

  constructor(db: Database.Database, path: string, options: CheckpointerOptions) {
    this.#db = db;
    this.#options = options;
    db.pragma('wal_autocheckpoint = 0');
    this.#worker = new Worker(new URL('./sqlite-checkpoint-worker.js', import.meta.url), {
      workerData: { path },
    });
    this.#worker.unref();
    this.#worker.on('message', (result: CheckpointResult) => this.#done(result));
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', (code) => {
      if (this.#closed === undefined) this.#fail(new Error(`checkpoint worker exited (${code})`));
    });
  }

  /** Called after each commit, on the writer's thread, between transactions. */
  committed(): void {
    if (this.#failed || this.#closed !== undefined) return;
    if (this.#running) {
      this.#commitsWhileRunning++;
      return;
    }
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => this.#request(), this.#options.delayMs);
    this.#timer.unref();
  }

  /** Stops the worker; the store's own close then checkpoints what is left. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      if (this.#failed) {
        resolve();
        return;
      }
      // Held by the worker until it has closed its connection: an unref'd worker would let the
      // process end first.
      this.#worker.ref();
      this.#worker.once('exit', () => resolve());
      this.#post({ kind: 'close' });
    });
    return this.#closed;
  }

  #request(): void {
    this.#timer = undefined;
    if (this.#closed !== undefined || this.#failed) return;
    this.#running = true;
    this.#commitsWhileRunning = 0;
    this.#post({ kind: 'checkpoint' });
  }

  #done(result: CheckpointResult): void {
    this.#running = false;
    const behind = this.#commitsWhileRunning;
    this.#commitsWhileRunning = 0;
    if (this.#closed !== undefined) return;
    if (result.log > this.#options.maxWalFrames) {
      if (behind <= FINISH_BEHIND_COMMITS || result.log > this.#options.maxWalFrames * 4) {
        // All but a few commits are synced and copied: finishing them here is short (a small
        // fsync), and the WAL rewinds at the next commit. Past four times the limit, the writer
        // outruns the worker: it pays for the rest itself, so that the WAL stays bounded.
        try {
          this.#db.pragma('wal_checkpoint(PASSIVE)');
        } catch (error) {
          // Nothing committed is at stake (the WAL keeps it): the next round tries again.
          this.#options.onError(error);
        }
      } else {
        // Much came in meanwhile: the worker goes again at once, with less left each round.
        this.#request();
      }
      return;
    }
    if (behind > 0) this.committed();
  }

  #post(request: CheckpointRequest): void {
    this.#worker.postMessage(request);
  }

  /** Without the worker, SQLite checkpoints in the writer again: slower commits, never a lost one. */
  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#options.onError(error);
    try {
      this.#db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
    } catch {
      // The database is closed already: nothing left to checkpoint.
    }
  }
}
