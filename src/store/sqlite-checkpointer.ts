/**
 * Keeps SQLite's WAL checkpoints off the event loop. SQLite's own automatic checkpoint runs inside
 * the commit that crosses its threshold and ends in two fsyncs: the event loop, and every message
 * waiting on it, stalled for milliseconds a few times a second under load. Here a worker thread
 * with its own connection copies the WAL back into the file a little after commits.
 *
 * A checkpoint running beside the writer cannot let the WAL start over while commits keep coming
 * (SQLite rewinds it only when a write begins with every frame copied back), so a WAL that grows
 * past `maxWalFrames` is finished by the writer itself, between two commits: the worker has copied
 * nearly all of it by then, and the log rewinds at the next commit.
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { CheckpointRequest, CheckpointResult } from './sqlite-checkpoint-worker.js';

export interface CheckpointerOptions {
  /** How long after a commit the worker checkpoints (commits in between share it). */
  delayMs: number;
  /** WAL size, in pages, past which the writer finishes the checkpoint itself. */
  maxWalFrames: number;
  onError(error: unknown): void;
}

/** SQLite's default threshold for the writer's own checkpoint, restored if the worker fails. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

export class SqliteCheckpointer {
  readonly #db: Database.Database;
  readonly #options: CheckpointerOptions;
  readonly #worker: Worker;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  /** A commit came while a checkpoint ran: another one follows. */
  #again = false;
  #walFrames = 0;
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
    if (this.#walFrames > this.#options.maxWalFrames) {
      // Nearly everything is copied already: this finishes the rest and lets the WAL rewind.
      this.#walFrames = 0;
      this.#db.pragma('wal_checkpoint(PASSIVE)');
    }
    if (this.#running) {
      this.#again = true;
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
    this.#again = false;
    this.#post({ kind: 'checkpoint' });
  }

  #done(result: CheckpointResult): void {
    this.#running = false;
    this.#walFrames = result.log;
    if (this.#again) this.committed();
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
