import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type {
  DuplicateMessage,
  Project,
  ProjectSummary,
  Revocations,
  RoomMessage,
  StoredRoom,
} from '../domain.js';
import {
  anyKeyed,
  earlierCopies,
  IDEMPOTENCY_WINDOW_MS,
  type IdempotencyOptions,
  type PendingAppend,
  settleBatch,
  storablePayload,
  withCopies,
} from './group-commit.js';
import { sqliteMigrations } from './migrations/sqlite.js';
import {
  type ProjectRow,
  projectFromRow,
  revocationsFromRows,
  settingsColumn,
} from './project-row.js';
import {
  type CountRule,
  type OverfullRoom,
  OverfullRoomWalk,
  type WalkStep,
} from './retention-walk.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';
import {
  type KeyRow,
  type MessageRow,
  prepare,
  type RemovedMessage,
  type Statements,
} from './sqlite-statements.js';
import type {
  Appended,
  HistoryQuery,
  NewMessage,
  ProjectChange,
  PurgeOptions,
  Store,
  StoreStats,
} from './store.js';

/** Most messages committed in one transaction; the rest wait for the next flush. */
export const MAX_BATCH = 1000;
/**
 * While messages keep coming, a batch is committed at most this often: under load, a transaction
 * then carries many messages (each commit costs as much as dozens of inserts). A message that comes
 * when nothing was committed for this long is committed on the next turn of the event loop.
 */
export const BATCH_WINDOW_MS = 2;
/** Messages inserted by one multi-row INSERT statement. */
const ROWS_PER_INSERT = 32;
/**
 * How long SQLite itself waits for another connection's lock: a wait that holds up the event loop,
 * so no longer than another process's commit usually takes. Longer waits happen between tries, off
 * the event loop (see `retryWhileLocked`).
 */
const BUSY_TIMEOUT_MS = 2;
/** How long an operation may wait in all for a lock another connection holds, then fails. */
export const BUSY_DEADLINE_MS = 5000;
/** The pause before the second try at a held lock; it doubles with each try, up to the longest. */
const FIRST_LOCK_PAUSE_MS = 2;
const LONGEST_LOCK_PAUSE_MS = 50;
/** Most hashes bound in one `IN (…)` of `getProjects`. */
const HASHES_PER_LOOKUP = 500;
/**
 * Commits within this long share one checkpoint, run by a worker thread: a page written by many
 * commits is copied back once. A checkpoint holds the writer's commits up for about as long as it
 * copies (decision 0004): shorter delays mean shorter stalls but more copying, and in the
 * benchmark neither won.
 */
const CHECKPOINT_DELAY_MS = 500;
/** WAL pages (4 KiB) past which the writer finishes a checkpoint itself, so that the WAL rewinds. */
const MAX_WAL_FRAMES = 4000;
/** Upper bound of SQLite's page cache, per connection: the newest pages of some 4,000 rooms. */
const PAGE_CACHE_KIB = 16 * 1024;
/**
 * Rooms the purge by count looks at in one synchronous read (three index seeks each: well under a
 * millisecond); the next ones wait for a turn of the event loop.
 */
const ROOMS_PER_LOOK = 256;

// Errors that say the database, not the message, is at fault: retrying the messages of a failed
// batch one by one would only fail (or wait for the lock) once per message.
const STORE_FAULT = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CORRUPT|NOTADB|CANTOPEN|NOMEM|PERM)/;
const MESSAGE_ID = /^[1-9][0-9]{0,15}$/;
// Another connection holds the lock, or is rebuilding the WAL's index (SQLITE_BUSY and its extended
// codes), or holds it through a shared cache. Plain SQLITE_LOCKED is a conflict within this
// connection, which no wait resolves.
const LOCKED_BY_ANOTHER = /^SQLITE_(BUSY(_[A-Z]+)?|LOCKED_SHAREDCACHE)$/;

export interface SqliteStoreOptions extends StoreStats, IdempotencyOptions {
  /** How long an operation may wait for another connection's lock (default BUSY_DEADLINE_MS). */
  busyDeadlineMs?: number;
}

interface Pending extends PendingAppend {
  /** The performance.now() time past which the append stops waiting for another's lock. */
  giveUpAt: number;
}

/** A project whose messages older than `before` (epoch ms) go. */
interface AgeRule {
  project: string;
  before: number;
}

export class SqliteStore implements Store {
  private readonly queue: Pending[] = [];
  private scheduled = false;
  /** The batch being committed; while it waits for another connection's lock, appends queue. */
  private flushing: Promise<void> | undefined;
  private lastCommitAt = 0;
  /** Multi-row INSERT statements by row count, compiled on first use. */
  private readonly inserts = new Map<number, Database.Statement<unknown[]>>();
  /** `SELECT … WHERE hash IN (…)` statements by hash count, compiled on first use. */
  private readonly projectLookups = new Map<number, Database.Statement<string[], ProjectRow>>();
  private readonly busyDeadlineMs: number;
  private readonly idempotencyWindowMs: number;
  private readonly overfullRooms = new OverfullRoomWalk();
  private closing: Promise<void> | undefined;

  private readonly sql: Statements;
  private readonly writeBatch: (messages: NewMessage[], ts: number) => Appended[];
  private readonly removeProject: (hash: string) => boolean;
  private readonly revoke: (hash: string, user: string | undefined, notBefore: number) => boolean;
  private readonly readProjects: (hashes: string[]) => Project[];
  private readonly purge: (
    ages: AgeRule[],
    overfull: OverfullRoom[],
    keysBefore: number,
    limit: number,
  ) => { removed: number; overfullPurgedWhole: boolean };

  /** `path` is a file (its directory is created if missing) or ':memory:'. */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    if (path !== ':memory:' && path !== '') mkdirSync(dirname(path), { recursive: true });
    // Opening waits for other processes' locks (the migrations need the write lock) on the event
    // loop, up to the deadline: the store serves no one yet. Past this, waits are asynchronous.
    const db = new Database(path, { timeout: options.busyDeadlineMs ?? BUSY_DEADLINE_MS });
    try {
      // WAL lets readers and the one writer of several processes share the file. NORMAL skips the
      // fsync per commit: a commit survives a crash of the process, not a power cut.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      // SQLite's default page cache (2 MiB) is smaller than the pages a busy server touches again
      // and again (the newest index page of each active room): past it, a commit reads them back
      // from the file. This is a ceiling, filled only as pages are used.
      db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
      migrate(db);
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      const checkpointer =
        path === ':memory:' || path === ''
          ? undefined
          : new SqliteCheckpointer(db, path, {
              delayMs: CHECKPOINT_DELAY_MS,
              maxWalFrames: MAX_WAL_FRAMES,
              onError: (error) => options.onFault?.(error, 'SQLite checkpoint worker failed'),
            });
      return new SqliteStore(db, options, checkpointer);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  private constructor(
    private readonly db: Database.Database,
    private readonly options: SqliteStoreOptions,
    private readonly checkpointer: SqliteCheckpointer | undefined,
  ) {
    this.busyDeadlineMs = options.busyDeadlineMs ?? BUSY_DEADLINE_MS;
    this.idempotencyWindowMs = options.idempotencyWindowMs ?? IDEMPOTENCY_WINDOW_MS;
    this.sql = prepare(db);
    // A batch without keys runs exactly the statements it ran before keys existed.
    this.writeBatch = db.transaction((messages: NewMessage[], ts: number): Appended[] =>
      anyKeyed(messages)
        ? this.insertKeyed(messages, ts)
        : this.insertAll(messages, this.reserveSeqs(messages), ts),
    ).immediate;
    // Explicit deletes, so that removing a project does not hinge on the connection's
    // `foreign_keys` pragma; ON DELETE CASCADE in the schema is the safety net.
    this.removeProject = db.transaction((hash: string) => {
      this.sql.deleteMessages.run(hash);
      this.sql.deleteKeys.run(hash);
      this.sql.deletePositions.run(hash);
      this.sql.deleteRevocations.run(hash);
      return this.sql.deleteProject.run(hash).changes > 0;
    }).immediate;
    this.revoke = db.transaction((hash: string, user: string | undefined, notBefore: number) => {
      const project = this.sql.tokensNotBefore.get(hash);
      if (project === undefined) return false;
      if (user === undefined) {
        this.sql.revokeAll.run({ hash, notBefore });
        this.sql.dropCoveredRevocations.run({ hash });
      } else if (project.tokens_not_before === null || project.tokens_not_before < notBefore) {
        this.sql.revokeUser.run(hash, user, notBefore);
      }
      return true;
    }).immediate;
    this.purge = db.transaction(
      (ages: AgeRule[], overfull: OverfullRoom[], keysBefore: number, limit: number) => {
        let removed = 0;
        for (const { project, before } of ages) {
          if (removed >= limit) break;
          const gone = this.sql.purgeByAge.all(project, before, limit - removed);
          removed += gone.length + this.keepPositions(project, gone);
        }
        const allowed = limit - removed;
        let byCount = 0;
        for (const { project, room, through } of overfull) {
          if (byCount >= allowed) break;
          byCount += this.sql.purgeByCount.run(project, room, through, allowed - byCount).changes;
        }
        removed += byCount;
        if (removed < limit) removed += this.sql.purgeKeys.run(keysBefore, limit - removed).changes;
        return { removed, overfullPurgedWhole: byCount < allowed };
      },
    ).immediate;
    // One read transaction, so that every chunk of hashes is looked up in the same snapshot.
    this.readProjects = db.transaction((hashes: string[]) => {
      const found: Project[] = [];
      for (let start = 0; start < hashes.length; start += HASHES_PER_LOOKUP) {
        const chunk = hashes.slice(start, start + HASHES_PER_LOOKUP);
        for (const row of this.projectLookup(chunk.length).all(...chunk)) {
          found.push(projectFromRow(row));
        }
      }
      return found;
    });
  }

  createProject(project: Project): Promise<void> {
    const settings = settingsColumn(project.settings);
    return this.retryWhileLocked(() => {
      this.sql.insertProject.run(
        project.hash,
        project.name,
        project.jwtSecret,
        project.createdAt,
        settings,
      );
    });
  }

  getProject(hash: string): Promise<Project | undefined> {
    return this.retryWhileLocked(() => {
      const row = this.sql.project.get(hash);
      return row && projectFromRow(row);
    });
  }

  async getProjects(hashes: readonly string[]): Promise<Project[]> {
    const unique = [...new Set(hashes)];
    if (unique.length === 0) return [];
    return this.retryWhileLocked(() => this.readProjects(unique));
  }

  listProjects(): Promise<ProjectSummary[]> {
    return this.retryWhileLocked(() => this.sql.projects.all());
  }

  countProjects(): Promise<number> {
    return this.retryWhileLocked(() => this.sql.countProjects.get()?.n ?? 0);
  }

  deleteProject(hash: string): Promise<boolean> {
    return this.retryWhileLocked(() => this.removeProject(hash));
  }

  setProjectSecret(hash: string, jwtSecret: string): Promise<boolean> {
    return this.retryWhileLocked(() => this.sql.setSecret.run(jwtSecret, hash).changes > 0);
  }

  updateProject(hash: string, change: ProjectChange): Promise<Project | undefined> {
    const settings = change.settings && settingsColumn(change.settings);
    return this.retryWhileLocked(() => {
      const row = this.sql.updateProject.get(change.name ?? null, settings ?? null, hash);
      return row && projectFromRow(row);
    });
  }

  revokeTokens(hash: string, user: string | undefined, notBefore: number): Promise<boolean> {
    return this.retryWhileLocked(() => this.revoke(hash, user, notBefore));
  }

  async revocations(hashes: readonly string[]): Promise<Map<string, Revocations>> {
    if (hashes.length === 0) return new Map();
    const list = JSON.stringify([...new Set(hashes)]);
    return this.retryWhileLocked(() =>
      revocationsFromRows(this.sql.revocations.all({ hashes: list })),
    );
  }

  append(message: NewMessage): Promise<Appended> {
    if (this.closing) return Promise.reject(new Error('Store is closed'));
    const payload = storablePayload(message.payload);
    const giveUpAt = performance.now() + this.busyDeadlineMs;
    return new Promise((resolve, reject) => {
      this.queue.push({ message: { ...message, payload }, giveUpAt, resolve, reject });
      this.schedule();
    });
  }

  history(project: string, room: string, query: HistoryQuery): Promise<RoomMessage[] | undefined> {
    return this.retryWhileLocked(() => this.readHistory(project, room, query));
  }

  range(project: string, room: string, fromSeq: number, toSeq: number): Promise<RoomMessage[]> {
    return this.retryWhileLocked(() =>
      this.sql.range.all(project, room, fromSeq, toSeq).map(toMessage),
    );
  }

  lastSeq(project: string, room: string): Promise<number> {
    return this.retryWhileLocked(() => this.sql.lastSeq.get(project, room, project, room) ?? 0);
  }

  rooms(project: string, after: string | undefined, limit: number): Promise<StoredRoom[]> {
    const wanted = Math.min(Math.floor(limit), Number.MAX_SAFE_INTEGER);
    if (!(wanted > 0)) return Promise.resolve([]);
    return this.retryWhileLocked(() => {
      const rows =
        after === undefined
          ? this.sql.pageFromFirst.all({ project, after: '', limit: wanted })
          : this.sql.pageAfter.all({ project, after, limit: wanted });
      return rows.map(({ room, last_seq, last_ts }) => ({
        room,
        lastSeq: last_seq,
        lastTs: last_ts,
      }));
    });
  }

  storedMessages(project: string | undefined): Promise<number> {
    return this.retryWhileLocked(() =>
      project === undefined
        ? this.sql.countMessages.get()
        : this.sql.countProjectMessages.get(project),
    ).then((count) => count ?? 0);
  }

  async purgeExpired(options: PurgeOptions): Promise<number> {
    const limit = Math.floor(options.limit);
    if (!(limit > 0)) return 0;
    const { maxAgeSeconds, maxMessagesPerRoom } = options.defaults;
    const rules = await this.retryWhileLocked(() =>
      this.sql.retentionRules.all(maxAgeSeconds, maxMessagesPerRoom),
    );
    const ages: AgeRule[] = [];
    const counts: CountRule[] = [];
    for (const { project, max_age_s, keep } of rules) {
      if (max_age_s !== null) ages.push({ project, before: options.now - max_age_s * 1000 });
      if (keep !== null) counts.push({ project, keep });
    }
    // The rooms over their count are found before the transaction, in reads with a turn of the
    // event loop between them, so that the transaction only deletes.
    const overfull = await this.overfullRooms.collect(counts, limit, (rule, afterRoom) =>
      this.lookAtRooms(rule, afterRoom),
    );
    const keysBefore = options.now - options.idempotencyWindowMs;
    const { removed, overfullPurgedWhole } = await this.retryWhileLocked(() =>
      this.purge(ages, overfull.rooms, keysBefore, limit),
    );
    if (overfullPurgedWhole) overfull.advance();
    return removed;
  }

  async ping(): Promise<void> {
    // Reads no table, so takes no lock: nothing to wait for.
    this.sql.ping.get();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Each batch stops waiting for a held lock at its deadline, so this loop ends.
      while (this.queue.length > 0 || this.flushing) await this.flush();
      await this.checkpointer?.close();
      this.db.close();
    })();
    return this.closing;
  }

  private readHistory(
    project: string,
    room: string,
    query: HistoryQuery,
  ): RoomMessage[] | undefined {
    let lower = query.since ?? 0;
    let upper = Number.MAX_SAFE_INTEGER;
    if (query.after !== undefined) {
      const seq = this.seqOf(project, room, query.after);
      if (seq === undefined) return undefined;
      lower = Math.max(lower, seq);
    }
    if (query.before !== undefined) {
      const seq = this.seqOf(project, room, query.before);
      if (seq === undefined) return undefined;
      upper = seq;
    }
    const limit = Math.min(Math.floor(query.limit), Number.MAX_SAFE_INTEGER);
    if (!(limit > 0)) return [];
    if (query.after !== undefined || query.since !== undefined) {
      return this.sql.oldestBetween.all(project, room, lower, upper, limit).map(toMessage);
    }
    return this.sql.newestBetween.all(project, room, lower, upper, limit).map(toMessage).reverse();
  }

  /**
   * Runs `work` (one statement or transaction) and, while another connection holds the lock it
   * needs, runs it again after growing pauses: SQLite's own wait would hold up the event loop.
   * A failed try left nothing behind (its transaction rolled back), so nothing is written twice.
   * Past `giveUpAt` (a performance.now() time) the lock's error is thrown.
   */
  private retryWhileLocked<T>(work: () => T, giveUpAt?: number): Promise<T> {
    // The first try runs now, without the async machinery: almost every call takes this path.
    try {
      return Promise.resolve(work());
    } catch (error) {
      if (!isLockedByAnother(error)) return Promise.reject(error);
      return this.retryLater(work, giveUpAt ?? performance.now() + this.busyDeadlineMs, error);
    }
  }

  private async retryLater<T>(work: () => T, giveUpAt: number, first: unknown): Promise<T> {
    let error = first;
    for (let pause = FIRST_LOCK_PAUSE_MS; ; pause = Math.min(2 * pause, LONGEST_LOCK_PAUSE_MS)) {
      const left = giveUpAt - performance.now();
      if (left <= 0) throw error;
      await sleep(Math.min(pause, left));
      try {
        return work();
      } catch (again) {
        if (!isLockedByAnother(again)) throw again;
        error = again;
      }
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    const run = (): void => {
      this.scheduled = false;
      void this.flush();
    };
    const wait = BATCH_WINDOW_MS - (performance.now() - this.lastCommitAt);
    // A lone message waits one event-loop turn (everything appended during that turn shares its
    // transaction); under load, the next commit waits for the window to pass.
    if (wait <= 0) setImmediate(run);
    else setTimeout(run, wait);
  }

  /** Commits the next batch; once it is settled, the one after it is scheduled. */
  private flush(): Promise<void> {
    this.flushing ??= this.flushBatch().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.schedule();
    });
    return this.flushing;
  }

  private async flushBatch(): Promise<void> {
    this.lastCommitAt = performance.now();
    const batch = this.queue.splice(0, MAX_BATCH);
    if (batch.length === 0) return;
    const failed = await this.commit(batch);
    if (!failed) return;
    if (batch.length === 1 || isStoreFault(failed.error)) {
      for (const pending of batch) pending.reject(failed.error);
      return;
    }
    // The batch rolled back as a whole: retry each message in its own transaction, so that only
    // the faulty ones fail and the others still take gapless seqs in their original order.
    for (const [i, pending] of batch.entries()) {
      const alone = await this.commit([pending]);
      if (!alone) continue;
      pending.reject(alone.error);
      if (isStoreFault(alone.error)) {
        for (const rest of batch.slice(i + 1)) rest.reject(alone.error);
        return;
      }
    }
  }

  /**
   * Commits `batch` in one transaction and resolves its promises, or rolls back and says why. It
   * waits for another connection's lock as long as its oldest message may.
   */
  private async commit(batch: Pending[]): Promise<{ error: unknown } | undefined> {
    const started = performance.now();
    const messages = batch.map((pending) => pending.message);
    let stored: Appended[];
    try {
      stored = await this.retryWhileLocked(
        () => this.writeBatch(messages, Date.now()),
        batch[0]?.giveUpAt,
      );
    } catch (error) {
      return { error };
    }
    const seconds = (performance.now() - started) / 1000;
    this.checkpointer?.committed();
    settleBatch(batch, stored, seconds, this.options.onBatch);
    return undefined;
  }

  /**
   * Takes the next seqs of every room in the batch: one look at the end of each room's index. Runs
   * inside the writing transaction, which holds the file's write lock, so no other process can
   * take the same seqs. Returns, for each message, its seq.
   */
  private reserveSeqs(messages: NewMessage[]): number[] {
    const next = new Map<string, number>();
    return messages.map(({ project, room }) => {
      const key = `${project}\u0000${room}`;
      const seq = next.get(key) ?? (this.sql.lastSeq.get(project, room, project, room) ?? 0) + 1;
      next.set(key, seq + 1);
      return seq;
    });
  }

  /**
   * Inserts a batch some of whose messages carry idempotency keys. Runs inside the writing
   * transaction: under the file's write lock no other process can use a key between the look at
   * it and the insert, and the primary key of idempotency_keys holds one use per project and key.
   * A message whose key was used within the window, or earlier in the batch, takes no seq and
   * answers the first message's place.
   */
  private insertKeyed(messages: NewMessage[], ts: number): Appended[] {
    const unusedBefore = ts - this.idempotencyWindowMs;
    const copies = earlierCopies(messages);
    const answers = messages.map(({ project, idempotencyKey }, i): Appended | undefined => {
      if (idempotencyKey === undefined || copies[i] !== -1) return undefined;
      const used = this.sql.keyUse.get(project, idempotencyKey);
      return used && used.first_used >= unusedBefore ? firstUse(used) : undefined;
    });
    const fresh = messages.flatMap((message, i) =>
      answers[i] === undefined && copies[i] === -1 ? [{ message, i }] : [],
    );
    const toStore = fresh.map(({ message }) => message);
    const stored = this.insertAll(toStore, this.reserveSeqs(toStore), ts);
    stored.forEach((message, j) => {
      const { message: sent, i } = fresh[j] as { message: NewMessage; i: number };
      answers[i] = message;
      if (sent.idempotencyKey === undefined) return;
      // A row already there is a key used before the window: this use replaces it.
      this.sql.useKey.run(
        sent.project,
        sent.idempotencyKey,
        message.room,
        Number(message.id),
        message.seq,
        ts,
      );
    });
    return withCopies(answers, copies);
  }

  /** Inserts the batch with multi-row statements; ids are consecutive within one statement. */
  private insertAll(messages: NewMessage[], seqs: number[], ts: number): RoomMessage[] {
    const stored: RoomMessage[] = [];
    for (let start = 0; start < messages.length; start += ROWS_PER_INSERT) {
      const rows = messages.slice(start, start + ROWS_PER_INSERT);
      const values: unknown[] = [];
      rows.forEach((message, i) => {
        values.push(
          message.project,
          message.room,
          seqs[start + i],
          message.payload,
          message.from,
          ts,
        );
      });
      // Under the transaction's write lock AUTOINCREMENT hands one statement's rows consecutive
      // ids, in the order of its VALUES.
      const last = Number(this.insertStatement(rows.length).run(...values).lastInsertRowid);
      rows.forEach((message, i) => {
        stored.push({
          id: String(last - rows.length + 1 + i),
          seq: seqs[start + i] as number,
          room: message.room,
          payload: message.payload,
          from: message.from,
          ts,
        });
      });
    }
    return stored;
  }

  private insertStatement(rows: number): Database.Statement<unknown[]> {
    return cached(this.inserts, rows, () => {
      const values = Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?)').join(', ');
      return this.db.prepare<unknown[]>(
        `INSERT INTO messages (project, room, seq, payload, sender, ts) VALUES ${values}`,
      );
    });
  }

  private projectLookup(hashes: number): Database.Statement<string[], ProjectRow> {
    return cached(this.projectLookups, hashes, () =>
      this.db.prepare<string[], ProjectRow>(
        `SELECT * FROM projects WHERE hash IN (${Array(hashes).fill('?').join(', ')})`,
      ),
    );
  }

  /**
   * After the purge by age removed `gone` from the project's rooms: keeps the last seq of each
   * room whose newest message went (with that message's ts), so that it is never handed out again. A room whose newest
   * message went while an older one stays (only a clock set back dates a later seq earlier) is
   * emptied, so that max(seq) of the messages is a room's last seq whenever it has any. Returns
   * how many messages that emptying removed.
   */
  private keepPositions(project: string, gone: readonly RemovedMessage[]): number {
    const newestGone = new Map<string, RemovedMessage>();
    for (const message of gone) {
      const newest = newestGone.get(message.room);
      if (newest === undefined || message.seq > newest.seq) newestGone.set(message.room, message);
    }
    let emptied = 0;
    for (const [room, last] of newestGone) {
      const newest = this.sql.newestSeq.get(project, room) ?? null;
      if (newest !== null && newest > last.seq) continue;
      if (newest !== null) emptied += this.sql.emptyRoom.run(project, room).changes;
      this.sql.keepPosition.run(project, room, last.seq, last.ts);
    }
    return emptied;
  }

  /** One look at a project's rooms for the purge by count, after a turn of the event loop. */
  private async lookAtRooms(rule: CountRule, afterRoom: string | undefined): Promise<WalkStep> {
    await nextTurn();
    const rows = await this.retryWhileLocked(() =>
      afterRoom === undefined
        ? this.sql.roomsFromFirst.all({ project: rule.project, after: '', rooms: ROOMS_PER_LOOK })
        : this.sql.roomsAfter.all({
            project: rule.project,
            after: afterRoom,
            rooms: ROOMS_PER_LOOK,
          }),
    );
    const overfull: OverfullRoom[] = [];
    for (const { room, first, last } of rows) {
      if (first !== null && last !== null && first <= last - rule.keep) {
        overfull.push({ project: rule.project, room, through: last - rule.keep });
      }
    }
    return { overfull, lastRoom: rows.at(-1)?.room, done: rows.length < ROOMS_PER_LOOK };
  }

  private seqOf(project: string, room: string, id: string): number | undefined {
    if (!MESSAGE_ID.test(id)) return undefined;
    const numeric = Number(id);
    if (!Number.isSafeInteger(numeric)) return undefined;
    return this.sql.cursorSeq.get(numeric, project, room)?.seq;
  }
}

/**
 * Applies missing migrations in one BEGIN IMMEDIATE transaction: a second process opening the
 * same file at the same moment waits for the lock, then finds them applied.
 */
function migrate(db: Database.Database): void {
  const apply = db.transaction(() => {
    db.exec(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TEXT NOT NULL
      ) STRICT`,
    );
    const applied = new Set(
      db
        .prepare<[], { version: number }>('SELECT version FROM schema_migrations')
        .all()
        .map((row) => row.version),
    );
    const record = db.prepare<[number, string, string]>(
      'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
    );
    for (const migration of sqliteMigrations) {
      if (applied.has(migration.version)) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, new Date().toISOString());
    }
  });
  apply.immediate();
}

function isStoreFault(error: unknown): boolean {
  return STORE_FAULT.test(errorCode(error));
}

function isLockedByAnother(error: unknown): boolean {
  return LOCKED_BY_ANOTHER.test(errorCode(error));
}

/** better-sqlite3's error code (`SQLITE_…`), or '' for any other error. */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** The value cached under `key`, made and kept on first use. */
function cached<K, V>(cache: Map<K, V>, key: K, make: () => V): V {
  let value = cache.get(key);
  if (value === undefined) {
    value = make();
    cache.set(key, value);
  }
  return value;
}

function firstUse(row: KeyRow): DuplicateMessage {
  return { duplicate: true, room: row.room, id: String(row.message_id), seq: row.seq };
}

function toMessage(row: MessageRow): RoomMessage {
  return {
    id: String(row.id),
    seq: row.seq,
    room: row.room,
    payload: row.payload,
    from: row.sender,
    ts: row.ts,
  };
}
