/**
 * The SQLite store with its work on a thread of its own (sqlite-worker.ts, which runs a
 * SqliteStore on its own connection). better-sqlite3 is synchronous: in the event loop's thread
 * every commit, history read and purge held up every socket. Here the event loop only packs a
 * turn's appends into one message and settles them from the one message that answers them.
 *
 * The contract is SqliteStore's, kept by SqliteStore itself on the thread: group commit (an append
 * resolves once its batch committed), seqs in call order, idempotency keys, retention, the waits
 * for another process's lock (now off the event loop entirely). What this side adds:
 * - Appends and calls reach the thread in the order they were made: a turn's appends are sent
 *   before any call made after them, so a read sees every append that resolved before it was made.
 * - Appends settle in the order the thread committed them (seq order within a room).
 * - `close` sends what is queued, waits for the thread to close its store (every append settled),
 *   then for the thread to end; calling it twice is safe. A call after close rejects.
 * - A thread that dies rejects everything waiting on it and every later call, and is reported
 *   through onFault: the server answers `Message could not be stored` rather than hanging.
 */
import { Worker } from 'node:worker_threads';
import type { Project, ProjectSummary, Revocations, RoomMessage, StoredRoom } from '../domain.js';
import { storablePayload } from './group-commit.js';
import type { SqliteStoreOptions } from './sqlite-store.js';
import type { SqliteWorkerData } from './sqlite-worker.js';
import {
  type CallMethod,
  type FromWorker,
  fromWire,
  packAppends,
  settleAppends,
  type ToWorker,
} from './sqlite-worker-wire.js';
import type {
  Appended,
  HistoryQuery,
  NewMessage,
  ProjectChange,
  PurgeOptions,
  Store,
} from './store.js';

interface Waiter {
  resolve: (value: never) => void;
  reject: (error: unknown) => void;
}

/** A turn's appends, sent as one message, and their promises. */
interface SentBatch {
  messages: NewMessage[];
  waiters: Waiter[];
}

export class SqliteWorkerStore implements Store {
  readonly #worker: Worker;
  readonly #options: SqliteStoreOptions;
  /** Appends made this turn, sent together on the next. */
  #queued: SentBatch = { messages: [], waiters: [] };
  /** The send of the queued appends on the next turn, when one is scheduled. */
  #sendScheduled: NodeJS.Immediate | undefined;
  #nextBatch = 0;
  readonly #sentBatches = new Map<number, SentBatch>();
  #nextCall = 0;
  readonly #calls = new Map<number, Waiter>();
  /** Why the thread can no longer answer; set once. */
  #dead: Error | undefined;
  #closing: Promise<void> | undefined;
  #closed: (() => void) | undefined;
  /** Appends and calls sent and not yet answered. */
  #inFlight = 0;

  /**
   * `path` is a file (its directory is created if missing) or ':memory:' (a database only the
   * thread sees). Resolves once the thread opened and migrated the database; rejects with its
   * error otherwise.
   */
  static open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteWorkerStore> {
    const data: SqliteWorkerData = {
      path,
      busyDeadlineMs: options.busyDeadlineMs,
      idempotencyWindowMs: options.idempotencyWindowMs,
      reportBatches: options.onBatch !== undefined,
    };
    const worker = new Worker(new URL('./sqlite-worker.js', import.meta.url), { workerData: data });
    return new Promise((resolve, reject) => {
      const failed = (error: unknown): void => {
        worker.off('message', opened);
        reject(error);
      };
      const opened = (message: FromWorker): void => {
        worker.off('error', failed);
        if (message.kind === 'opening-failed') reject(fromWire(message.error));
        else resolve(new SqliteWorkerStore(worker, options));
      };
      worker.once('message', opened);
      worker.once('error', failed);
    });
  }

  private constructor(worker: Worker, options: SqliteStoreOptions) {
    this.#worker = worker;
    this.#options = options;
    // Like a socket waiting for data, an idle thread does not keep the process alive; while an
    // append or a call waits on it, it does (see #track).
    worker.unref();
    worker.on('message', (message: FromWorker) => this.#receive(message));
    worker.on('error', (error) => this.#die(error));
    worker.on('exit', (code) => {
      this.#closed?.();
      this.#die(new Error(`SQLite worker exited (${code})`));
    });
  }

  createProject(project: Project): Promise<void> {
    return this.#call('createProject', project);
  }

  getProject(hash: string): Promise<Project | undefined> {
    return this.#call('getProject', hash);
  }

  async getProjects(hashes: readonly string[]): Promise<Project[]> {
    if (hashes.length === 0) return [];
    return this.#call('getProjects', hashes);
  }

  listProjects(): Promise<ProjectSummary[]> {
    return this.#call('listProjects');
  }

  countProjects(): Promise<number> {
    return this.#call('countProjects');
  }

  deleteProject(hash: string): Promise<boolean> {
    return this.#call('deleteProject', hash);
  }

  setProjectSecret(hash: string, jwtSecret: string): Promise<boolean> {
    return this.#call('setProjectSecret', hash, jwtSecret);
  }

  updateProject(hash: string, change: ProjectChange): Promise<Project | undefined> {
    return this.#call('updateProject', hash, change);
  }

  revokeTokens(hash: string, user: string | undefined, notBefore: number): Promise<boolean> {
    return this.#call('revokeTokens', hash, user, notBefore);
  }

  async revocations(hashes: readonly string[]): Promise<Map<string, Revocations>> {
    if (hashes.length === 0) return new Map();
    return this.#call('revocations', hashes);
  }

  append(message: NewMessage): Promise<Appended> {
    if (this.#closing) return Promise.reject(new Error('Store is closed'));
    if (this.#dead) return Promise.reject(this.#dead);
    // Made storable here, so that the message this side rebuilds from its own copy is exactly
    // the one the thread stored.
    const stored: NewMessage = {
      project: message.project,
      room: message.room,
      payload: storablePayload(message.payload),
      from: message.from,
    };
    if (message.idempotencyKey !== undefined) stored.idempotencyKey = message.idempotencyKey;
    return new Promise<Appended>((resolve, reject) => {
      this.#queued.messages.push(stored);
      this.#queued.waiters.push({ resolve: resolve as (value: never) => void, reject });
      if (this.#sendScheduled === undefined) this.#scheduleSend();
    });
  }

  history(project: string, room: string, query: HistoryQuery): Promise<RoomMessage[] | undefined> {
    return this.#call('history', project, room, query);
  }

  range(project: string, room: string, fromSeq: number, toSeq: number): Promise<RoomMessage[]> {
    return this.#call('range', project, room, fromSeq, toSeq);
  }

  lastSeq(project: string, room: string): Promise<number> {
    return this.#call('lastSeq', project, room);
  }

  purgeExpired(options: PurgeOptions): Promise<number> {
    return this.#call('purgeExpired', options);
  }

  rooms(project: string, after: string | undefined, limit: number): Promise<StoredRoom[]> {
    return this.#call('rooms', project, after, limit);
  }

  storedMessages(project: string | undefined): Promise<number> {
    return this.#call('storedMessages', project);
  }

  ping(): Promise<void> {
    return this.#call('ping');
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#sendQueued();
      if (this.#dead) {
        resolve();
        return;
      }
      // Held until the thread has ended: an unref'd thread would let the process end first.
      this.#worker.ref();
      this.#closed = resolve;
      this.#post({ kind: 'close' });
    });
    return this.#closing;
  }

  #call<T>(method: CallMethod, ...args: unknown[]): Promise<T> {
    if (this.#closing) return Promise.reject(new Error('Store is closed'));
    if (this.#dead) return Promise.reject(this.#dead);
    // Appends made before this call reach the thread first.
    this.#sendQueued();
    const call = this.#nextCall++;
    return new Promise<T>((resolve, reject) => {
      this.#calls.set(call, { resolve: resolve as (value: never) => void, reject });
      this.#track(1);
      this.#post({ kind: 'call', call, method, args });
    });
  }

  #scheduleSend(): void {
    // Everything appended during this turn (every socket read in one poll) travels together. A
    // longer wait (a window, as the commits have) would save wake-ups of the thread but adds to
    // the commit window it stacks on: see docs/decisions/0006-sqlite-store-worker.md.
    this.#sendScheduled = setImmediate(() => this.#sendQueued());
  }

  #sendQueued(): void {
    if (this.#sendScheduled !== undefined) clearImmediate(this.#sendScheduled);
    this.#sendScheduled = undefined;
    const batch = this.#queued;
    if (batch.messages.length === 0) return;
    this.#queued = { messages: [], waiters: [] };
    if (this.#dead) {
      for (const waiter of batch.waiters) waiter.reject(this.#dead);
      return;
    }
    const id = this.#nextBatch++;
    this.#sentBatches.set(id, batch);
    this.#track(1);
    const appends = packAppends(batch.messages);
    this.#post({ kind: 'append', batch: id, appends }, [appends.lengths.buffer as ArrayBuffer]);
  }

  /** Holds the process open while anything waits on the thread, and only then. */
  #track(change: 1 | -1): void {
    this.#inFlight += change;
    if (this.#closing) return;
    if (change === 1 && this.#inFlight === 1) this.#worker.ref();
    else if (this.#inFlight === 0) this.#worker.unref();
  }

  #post(message: ToWorker, transfer?: ArrayBuffer[]): void {
    this.#worker.postMessage(message, transfer);
  }

  #receive(message: FromWorker): void {
    switch (message.kind) {
      case 'appended': {
        const batch = this.#sentBatches.get(message.batch);
        if (!batch) return;
        this.#sentBatches.delete(message.batch);
        this.#track(-1);
        settleAppends(batch.messages, message.answers, (i, answer) => {
          const waiter = batch.waiters[i];
          if (answer instanceof Error) waiter?.reject(answer);
          else waiter?.resolve(answer as never);
        });
        this.#reportCommits(message.commits);
        return;
      }
      case 'answered':
      case 'call-failed': {
        const waiter = this.#calls.get(message.call);
        if (!waiter) return;
        this.#calls.delete(message.call);
        this.#track(-1);
        if (message.kind === 'answered') waiter.resolve(message.value as never);
        else waiter.reject(fromWire(message.error));
        return;
      }
      case 'fault':
        this.#options.onFault?.(fromWire(message.error), message.what);
        return;
      case 'ready':
      case 'opening-failed':
      case 'closed':
        return;
    }
  }

  #reportCommits(commits: readonly number[]): void {
    const onBatch = this.#options.onBatch;
    if (onBatch === undefined) return;
    for (let i = 0; i + 1 < commits.length; i += 2) {
      try {
        onBatch(commits[i] as number, commits[i + 1] as number);
      } catch {
        // Metrics must never fail messages that are already committed.
      }
    }
  }

  /** The thread is gone: nothing waiting on it will be answered. */
  #die(cause: unknown): void {
    if (this.#dead) return;
    const expected = this.#closing !== undefined && this.#sentBatches.size === 0;
    this.#dead = cause instanceof Error ? cause : new Error(String(cause));
    if (!expected) this.#options.onFault?.(cause, 'SQLite worker failed');
    for (const batch of this.#sentBatches.values()) {
      for (const waiter of batch.waiters) waiter.reject(this.#dead);
    }
    this.#sentBatches.clear();
    for (const waiter of this.#calls.values()) waiter.reject(this.#dead);
    this.#calls.clear();
  }
}
