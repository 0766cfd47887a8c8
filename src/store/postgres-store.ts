import { performance } from 'node:perf_hooks';
import pg from 'pg';
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
import { postgresMigrations } from './migrations/postgres.js';
import {
  APPEND_BATCH,
  APPEND_BATCH_FILLING_KEYS,
  CLAIM_KEYS,
  COUNT_MESSAGES,
  COUNT_PROJECT_MESSAGES,
  KEY_USES,
  MESSAGES,
  OVERFULL_AFTER,
  OVERFULL_FROM_FIRST,
  PROJECTS,
  PURGE_BY_AGE,
  PURGE_BY_COUNT,
  PURGE_KEYS,
  RETENTION_RULES,
  REVOCATIONS,
  REVOKE_ALL,
  REVOKE_USER,
  ROOMS_AFTER,
  ROOMS_FROM_FIRST,
  TRY_PURGE_LOCK,
} from './postgres-statements.js';
import {
  type ProjectRow,
  projectFromRow,
  type RevocationRow,
  revocationsFromRows,
  settingsColumn,
} from './project-row.js';
import {
  type Collected,
  type CountRule,
  OverfullRoomWalk,
  type WalkStep,
} from './retention-walk.js';
import type {
  Appended,
  HistoryQuery,
  NewMessage,
  ProjectChange,
  PurgeOptions,
  Store,
  StoreStats,
} from './store.js';

/** Most messages committed in one statement; the rest wait for the next flush. */
export const MAX_BATCH = 500;
/**
 * Most payload bytes in one batch (a lone larger message still goes alone). bytea arrays travel
 * as hex text, twice their size, so this bounds the memory and the statement a flush builds.
 */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECTION_TIMEOUT_MS = 2000;
const DEFAULT_QUERY_TIMEOUT_MS = 5000;
// The server cancels a statement at the query timeout; the client gives up a little later, for a
// server that no longer answers at all. Cancelled by the server, the connection can be reused.
const CLIENT_GRACE_MS = 1000;
// A second instance waits for the first one's migrations for up to this long.
const MIGRATION_TIMEOUT_MS = 5 * 60 * 1000;
// First key of the advisory lock that serializes migrations; the second is the target schema,
// so that instances migrating different schemas of one database do not wait for each other.
const MIGRATION_LOCK = 0x736b62;
// First key of the advisory lock that lets one purge run at a time; the second is the schema, as
// for migrations.
export const PURGE_LOCK = 0x736b70;
// How many times a batch claims the keys it found neither free nor readable: a key purged between
// the claim and the read is free on the next claim.
const CLAIM_ROUNDS = 3;

// SQLSTATE classes that blame the data of a batch or this one transaction, not the database: data
// exception (22), integrity constraint (23: a deleted project), transaction rollback (40: a
// deadlock). Retrying such a batch message by message isolates the faulty ones.
const MESSAGE_FAULT = /^(22|23|40)/;
const MESSAGE_ID = /^[1-9][0-9]{0,18}$/;
const MAX_BIGINT = 9223372036854775807n;

export interface PostgresStoreOptions extends StoreStats, IdempotencyOptions {
  /** Most connections the store opens (default 10). */
  poolSize?: number;
  /** How long opening a connection, or waiting for a free one, may take (default 2000 ms). */
  connectionTimeoutMs?: number;
  /** How long one statement may run before it fails (default 5000 ms). */
  queryTimeoutMs?: number;
}

interface Pending extends PendingAppend {
  /** The payload as UTF-8, as stored. */
  bytes: Buffer;
}

interface MessageRow {
  id: string;
  seq: string;
  room: string;
  payload: Buffer;
  sender: string;
  ts: string;
}

type Run = <R extends pg.QueryResultRow>(
  text: string,
  values: unknown[],
  name?: string,
) => Promise<pg.QueryResult<R>>;

/** A project's effective retention (bigints as text): its own value, else the default. */
interface RetentionRow {
  project: string;
  max_age_s: string | null;
  keep: string | null;
}

interface KeyUseRow {
  project: string;
  key: string;
  room: string;
  id: string;
  seq: string;
}

/**
 * The Store on PostgreSQL, for several server instances sharing one database.
 *
 * Guarantees, beyond the Store contract (src/store/store.ts):
 * - seq is gapless per room also when many processes and connections append to one room at once:
 *   a batch takes its seqs from the room's counter row in the statement that inserts its
 *   messages, so the row lock orders every writer and a rolled-back batch takes no seq.
 * - Group commit: appends queue; one batch (at most MAX_BATCH messages and MAX_BATCH_BYTES of
 *   payload) is in flight at a time, as one statement, while the next one accumulates. A lone
 *   append is sent on the next event-loop turn. One flight at a time is what keeps a room's
 *   appends from one process in call order.
 * - A batch refused for its data (a deleted project, …) is retried message by message, so only the
 *   faulty ones reject. A batch that fails because the database is unreachable, slow or broken
 *   rejects whole, within the connection or query timeout; nothing is retried behind the
 *   caller's back. When the connection dies after the commit was sent, the outcome is unknown:
 *   the append rejects although its message may be stored (seqs stay gapless either way). A
 *   message with an idempotency key is then safe to send again: the retry finds the key used and
 *   answers the stored message's place, or stores it if the first try did not commit.
 * - Idempotency keys: a batch with keys is one transaction that first claims its keys (see
 *   CLAIM_KEYS), takes seqs only for the messages whose key it claimed (or that have none), then
 *   inserts them and fills in the keys' rows. A batch without keys is the one statement above.
 * - Retention: `purgeExpired` runs in one transaction under an advisory lock taken with
 *   pg_try_advisory_xact_lock, so one instance purges at a time; room_seq keeps every room's last
 *   seq, and the ts of that message, whatever the purge removes.
 * - Losing the database never crashes the process: dead connections are dropped and new ones
 *   opened on demand, so the store recovers by itself once PostgreSQL answers again.
 * - Migrations (src/store/migrations/postgres.ts) run at open in one transaction under an
 *   advisory lock: instances starting together apply each one once.
 * - Tables live in the first schema of the connection's search_path; choose one with
 *   `?options=-c%20search_path%3Dname` in the URL (the schema must exist).
 * - Payloads are stored as UTF-8 bytes, so NUL round-trips; a lone UTF-16 surrogate becomes
 *   U+FFFD, the same in what append answers and what history gives back. PostgreSQL text cannot
 *   hold NUL, so a room, sender or project hash containing it is refused (no such room can have
 *   messages: reads of it answer empty), and so is the revocation of a user containing it.
 */
export class PostgresStore implements Store {
  private readonly queue: Pending[] = [];
  private scheduled = false;
  private draining: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly overfullRooms = new OverfullRoomWalk();

  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const queryTimeout = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    const connectionTimeout = options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS;
    await migrate(url, connectionTimeout);
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      connectionTimeoutMillis: connectionTimeout,
      statement_timeout: queryTimeout,
      query_timeout: queryTimeout + CLIENT_GRACE_MS,
      keepAlive: true,
      application_name: 'socket-base',
    });
    // An idle connection that dies (server restart, network cut) is reported here; the pool has
    // already dropped it and the next query opens a new one. Unhandled, it would crash the process.
    pool.on('error', () => {});
    return new PostgresStore(pool, options);
  }

  private readonly idempotencyWindowMs: number;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresStoreOptions,
  ) {
    this.idempotencyWindowMs = options.idempotencyWindowMs ?? IDEMPOTENCY_WINDOW_MS;
  }

  async createProject(project: Project): Promise<void> {
    await this.rows(
      `INSERT INTO projects (hash, name, jwt_secret, created_at, settings)
       VALUES ($1, $2, $3, $4, $5::jsonb)`,
      [
        project.hash,
        project.name,
        project.jwtSecret,
        project.createdAt,
        settingsColumn(project.settings),
      ],
    );
  }

  async getProject(hash: string): Promise<Project | undefined> {
    if (hasNul(hash)) return undefined;
    const [row] = await this.rows<ProjectRow>(`${PROJECTS} WHERE hash = $1`, [hash], 'sb_project');
    return row && projectFromRow(row);
  }

  async getProjects(hashes: readonly string[]): Promise<Project[]> {
    // No project's hash holds NUL, which a text[] parameter cannot carry.
    const wanted = hashes.filter((hash) => !hasNul(hash));
    if (wanted.length === 0) return [];
    const rows = await this.rows<ProjectRow>(
      `${PROJECTS} WHERE hash = ANY ($1::text[])`,
      [wanted],
      'sb_projects',
    );
    return rows.map(projectFromRow);
  }

  async listProjects(): Promise<ProjectSummary[]> {
    return this.rows<ProjectSummary>(
      'SELECT hash, name, created_at AS "createdAt" FROM projects ORDER BY created_at, hash',
    );
  }

  async countProjects(): Promise<number> {
    const [row] = await this.rows<{ n: number }>('SELECT count(*)::int AS n FROM projects');
    return row?.n ?? 0;
  }

  async deleteProject(hash: string): Promise<boolean> {
    if (hasNul(hash)) return false;
    // Messages, then counters, then the project: appends lock counter rows before the project
    // row (their foreign-key check), so taking them in the same order cannot deadlock with them.
    // ON DELETE CASCADE then catches what an append committed in between. Keys come last: an
    // append that claimed a key either commits before the project row goes (and this statement
    // sees its key) or fails its foreign-key check after, taking its key with it.
    return this.transaction(async (client) => {
      await client.query('DELETE FROM messages WHERE project = $1', [hash]);
      await client.query('DELETE FROM room_seq WHERE project = $1', [hash]);
      const result = await client.query('DELETE FROM projects WHERE hash = $1', [hash]);
      await client.query('DELETE FROM idempotency_keys WHERE project = $1', [hash]);
      // The project's revocations went with its row (ON DELETE CASCADE): deleting them before
      // it would take their locks before the project row's, the reverse of revokeTokens.
      return (result.rowCount ?? 0) > 0;
    });
  }

  async updateProject(hash: string, change: ProjectChange): Promise<Project | undefined> {
    if (hasNul(hash)) return undefined;
    const settings = change.settings && settingsColumn(change.settings);
    const [row] = await this.rows<ProjectRow>(
      `UPDATE projects SET name = coalesce($1, name), settings = coalesce($2::jsonb, settings)
       WHERE hash = $3 RETURNING hash, name, jwt_secret, created_at, settings`,
      [change.name ?? null, settings ?? null, hash],
    );
    return row && projectFromRow(row);
  }

  async setProjectSecret(hash: string, jwtSecret: string): Promise<boolean> {
    if (hasNul(hash)) return false;
    return this.withClient(async (client) => {
      const result = await client.query('UPDATE projects SET jwt_secret = $1 WHERE hash = $2', [
        jwtSecret,
        hash,
      ]);
      return (result.rowCount ?? 0) > 0;
    });
  }

  async revokeTokens(hash: string, user: string | undefined, notBefore: number): Promise<boolean> {
    if (hasNul(hash)) return false;
    if (user !== undefined && hasNul(user)) {
      throw new Error('PostgreSQL cannot store a user containing NUL');
    }
    const found =
      user === undefined
        ? await this.rows(REVOKE_ALL, [hash, notBefore], 'sb_revoke_all')
        : await this.rows(REVOKE_USER, [hash, user, notBefore], 'sb_revoke_user');
    return found.length > 0;
  }

  async revocations(hashes: readonly string[]): Promise<Map<string, Revocations>> {
    // No project's hash holds NUL, which a text[] parameter cannot carry.
    const wanted = hashes.filter((hash) => !hasNul(hash));
    if (wanted.length === 0) return new Map();
    return revocationsFromRows(
      await this.rows<RevocationRow>(REVOCATIONS, [wanted], 'sb_revocations'),
    );
  }

  append(message: NewMessage): Promise<Appended> {
    if (this.closing) return Promise.reject(new Error('Store is closed'));
    const { project, room, from, idempotencyKey = '' } = message;
    if (hasNul(project) || hasNul(room) || hasNul(from) || hasNul(idempotencyKey)) {
      return Promise.reject(
        new Error('PostgreSQL cannot store a room, sender or idempotency key containing NUL'),
      );
    }
    const payload = storablePayload(message.payload);
    return new Promise((resolve, reject) => {
      this.queue.push({
        message: { ...message, payload },
        bytes: Buffer.from(payload, 'utf8'),
        resolve,
        reject,
      });
      this.schedule();
    });
  }

  async history(
    project: string,
    room: string,
    query: HistoryQuery,
  ): Promise<RoomMessage[] | undefined> {
    const cursors: string[] = [];
    for (const id of [query.after, query.before]) {
      if (id === undefined) continue;
      if (!isMessageId(id)) return undefined;
      cursors.push(id);
    }
    if (hasNul(project) || hasNul(room)) return cursors.length > 0 ? undefined : [];
    let lower = clampSeq(Math.floor(query.since ?? 0));
    let upper = Number.MAX_SAFE_INTEGER;
    if (cursors.length > 0) {
      const found = await this.rows<{ id: string; seq: string }>(
        'SELECT id::text AS id, seq FROM messages WHERE project = $1 AND room = $2 AND id = ANY ($3::bigint[])',
        [project, room, cursors],
        'sb_cursor',
      );
      const seqOf = new Map(found.map((row) => [row.id, Number(row.seq)]));
      if (query.after !== undefined) {
        const seq = seqOf.get(query.after);
        if (seq === undefined) return undefined;
        lower = Math.max(lower, seq);
      }
      if (query.before !== undefined) {
        const seq = seqOf.get(query.before);
        if (seq === undefined) return undefined;
        upper = seq;
      }
    }
    const limit = Math.min(Math.floor(query.limit), Number.MAX_SAFE_INTEGER);
    if (!(limit > 0)) return [];
    if (query.after !== undefined || query.since !== undefined) {
      const rows = await this.rows<MessageRow>(
        `${MESSAGES} AND seq > $3 AND seq < $4 ORDER BY seq ASC LIMIT $5`,
        [project, room, lower, upper, limit],
        'sb_oldest',
      );
      return rows.map(toMessage);
    }
    const rows = await this.rows<MessageRow>(
      `${MESSAGES} AND seq > $3 AND seq < $4 ORDER BY seq DESC LIMIT $5`,
      [project, room, lower, upper, limit],
      'sb_newest',
    );
    return rows.map(toMessage).reverse();
  }

  async range(
    project: string,
    room: string,
    fromSeq: number,
    toSeq: number,
  ): Promise<RoomMessage[]> {
    // Whole numbers within bigint's range, so that the index on seq serves the comparison.
    const from = clampSeq(Math.ceil(fromSeq));
    const to = clampSeq(Math.floor(toSeq));
    if (Number.isNaN(from) || Number.isNaN(to) || from > to) return [];
    if (hasNul(project) || hasNul(room)) return [];
    const rows = await this.rows<MessageRow>(
      `${MESSAGES} AND seq BETWEEN $3 AND $4 ORDER BY seq ASC`,
      [project, room, from, to],
      'sb_range',
    );
    return rows.map(toMessage);
  }

  async lastSeq(project: string, room: string): Promise<number> {
    if (hasNul(project) || hasNul(room)) return 0;
    const [row] = await this.rows<{ last_seq: string }>(
      'SELECT last_seq FROM room_seq WHERE project = $1 AND room = $2',
      [project, room],
      'sb_last_seq',
    );
    return row ? Number(row.last_seq) : 0;
  }

  async rooms(project: string, after: string | undefined, limit: number): Promise<StoredRoom[]> {
    const wanted = Math.min(Math.floor(limit), Number.MAX_SAFE_INTEGER);
    if (!(wanted > 0) || hasNul(project)) return [];
    // No stored room holds NUL (append refuses it), and text cannot carry one: the rooms after
    // `after` are those after its part before the first NUL.
    const start = after?.split('\u0000', 1)[0] ?? '';
    const rows = await this.rows<{ room: string; last_seq: string; last_ts: string | null }>(
      after === undefined ? ROOMS_FROM_FIRST : ROOMS_AFTER,
      after === undefined ? [project, wanted] : [project, wanted, start],
      after === undefined ? 'sb_rooms' : 'sb_rooms_after',
    );
    return rows.map(({ room, last_seq, last_ts }) => ({
      room,
      lastSeq: Number(last_seq),
      lastTs: last_ts === null ? null : Number(last_ts),
    }));
  }

  async storedMessages(project: string | undefined): Promise<number> {
    if (project !== undefined && hasNul(project)) return 0;
    const [row] = await this.rows<{ n: string }>(
      project === undefined ? COUNT_MESSAGES : COUNT_PROJECT_MESSAGES,
      project === undefined ? [] : [project],
    );
    return Number(row?.n ?? 0);
  }

  async purgeExpired(options: PurgeOptions): Promise<number> {
    const limit = Math.floor(options.limit);
    if (!(limit > 0)) return 0;
    const { removed, overfull } = await this.transaction(async (client) => {
      const run = runOn(client);
      const { rows: lock } = await run<{ locked: boolean }>(TRY_PURGE_LOCK, [PURGE_LOCK]);
      if (!lock[0]?.locked) return { removed: 0, overfull: undefined };
      return this.purgeLocked(run, options, limit);
    });
    overfull?.advance();
    return removed;
  }

  /**
   * One purge, under the purge lock: by age, then by count, then keys, at most `limit` rows in
   * all. Answers `overfull` when every room it collected was purged whole, so that the walk may
   * move past them once the transaction commits.
   */
  private async purgeLocked(
    run: Run,
    options: PurgeOptions,
    limit: number,
  ): Promise<{ removed: number; overfull: Collected | undefined }> {
    const { maxAgeSeconds, maxMessagesPerRoom } = options.defaults;
    const { rows: rules } = await run<RetentionRow>(RETENTION_RULES, [
      maxAgeSeconds,
      maxMessagesPerRoom,
    ]);
    const ages = rules.filter((rule) => rule.max_age_s !== null);
    const counts = rules.flatMap(({ project, keep }) =>
      keep === null ? [] : [{ project, keep: Number(keep) }],
    );
    let removed = 0;
    if (ages.length > 0) {
      const purged = await run(PURGE_BY_AGE, [
        ages.map((rule) => rule.project),
        ages.map((rule) => options.now - Number(rule.max_age_s) * 1000),
        limit,
      ]);
      removed += purged.rowCount ?? 0;
    }
    let overfull: Collected | undefined;
    const allowed = limit - removed;
    if (allowed > 0 && counts.length > 0) {
      const collected = await this.overfullRooms.collect(counts, allowed, (rule, after, wanted) =>
        lookAtRooms(run, rule, after, wanted),
      );
      const { rooms } = collected;
      let byCount = 0;
      if (rooms.length > 0) {
        const purged = await run(PURGE_BY_COUNT, [
          rooms.map((room) => room.project),
          rooms.map((room) => room.room),
          rooms.map((room) => room.through),
          allowed,
        ]);
        byCount = purged.rowCount ?? 0;
      }
      if (byCount < allowed) overfull = collected;
      removed += byCount;
    }
    if (removed < limit) {
      const keysBefore = options.now - options.idempotencyWindowMs;
      removed += (await run(PURGE_KEYS, [keysBefore, limit - removed])).rowCount ?? 0;
    }
    return { removed, overfull };
  }

  async ping(): Promise<void> {
    await this.rows('SELECT 1');
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.queue.length > 0 || this.draining) await this.drain();
      await this.pool.end();
    })();
    return this.closing;
  }

  private schedule(): void {
    if (this.scheduled || this.draining) return;
    this.scheduled = true;
    // setImmediate, not a timer: a lone message waits one event-loop turn, and everything
    // appended during that turn shares its batch. While a batch is in flight, the drain loop
    // picks up what accumulated as soon as it completes.
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private drain(): Promise<void> {
    this.draining ??= this.flushAll().finally(() => {
      this.draining = undefined;
      // An append made between the loop's last look at the queue and now found a drain running
      // and did not schedule one.
      if (this.queue.length > 0) this.schedule();
    });
    return this.draining;
  }

  private async flushAll(): Promise<void> {
    while (this.queue.length > 0) await this.flush(this.take());
  }

  private take(): Pending[] {
    let count = 0;
    let bytes = 0;
    for (const pending of this.queue) {
      if (count >= MAX_BATCH) break;
      if (count > 0 && bytes + pending.bytes.length > MAX_BATCH_BYTES) break;
      count++;
      bytes += pending.bytes.length;
    }
    return this.queue.splice(0, count);
  }

  private async flush(batch: Pending[]): Promise<void> {
    const failed = await this.commit(batch);
    if (!failed) return;
    if (batch.length === 1 || !blamesMessage(failed.error)) {
      for (const pending of batch) pending.reject(failed.error);
      return;
    }
    // The batch rolled back as a whole: retry each message alone, so that only the faulty ones
    // fail and the others still take gapless seqs in their original order.
    for (const [i, pending] of batch.entries()) {
      const alone = await this.commit([pending]);
      if (!alone) continue;
      pending.reject(alone.error);
      if (!blamesMessage(alone.error)) {
        for (const rest of batch.slice(i + 1)) rest.reject(alone.error);
        return;
      }
    }
  }

  /** Commits `batch` as one statement and resolves its promises, or says why it could not. */
  private async commit(batch: Pending[]): Promise<{ error: unknown } | undefined> {
    const started = performance.now();
    let stored: Appended[];
    try {
      stored = await this.write(batch, Date.now());
    } catch (error) {
      return { error };
    }
    const seconds = (performance.now() - started) / 1000;
    settleBatch(batch, stored, seconds, this.options.onBatch);
    return undefined;
  }

  private async write(batch: Pending[], ts: number): Promise<Appended[]> {
    // A batch without keys is one statement, in a transaction of its own.
    if (!anyKeyed(batch.map((pending) => pending.message))) return this.insert(this.run, batch, ts);
    return this.transaction((client) => this.writeKeyed(runOn(client), batch, ts));
  }

  /**
   * Writes a batch some of whose messages carry idempotency keys, in the transaction `run` is on:
   * claims the keys, reads where the keys it could not claim went, then inserts the messages whose
   * key it claimed (or that have none). A message whose key was taken, or came earlier in the
   * batch, takes no seq and answers the first message's place.
   */
  private async writeKeyed(run: Run, batch: Pending[], ts: number): Promise<Appended[]> {
    const messages = batch.map((pending) => pending.message);
    const copies = earlierCopies(messages);
    const answers = messages.map((): Appended | undefined => undefined);
    const claimed = new Set<number>();
    let open = messages.flatMap((message, i) =>
      message.idempotencyKey !== undefined && copies[i] === -1 ? [i] : [],
    );
    for (let round = 0; round < CLAIM_ROUNDS && open.length > 0; round++) {
      const wanted = open.map((i) => messages[i] as NewMessage);
      const { rows: won } = await run<{ project: string; key: string }>(
        CLAIM_KEYS,
        [
          wanted.map((message) => message.project),
          wanted.map((message) => message.idempotencyKey),
          wanted.map((message) => message.room),
          ts,
          ts - this.idempotencyWindowMs,
        ],
        'sb_claim_keys',
      );
      const claims = new Set(won.map((row) => scoped(row.project, row.key)));
      const taken: number[] = [];
      for (const i of open) {
        if (claims.has(keyOf(messages[i]))) claimed.add(i);
        else taken.push(i);
      }
      open = taken;
      if (taken.length === 0) break;
      const { rows: uses } = await run<KeyUseRow>(
        KEY_USES,
        [taken.map((i) => messages[i]?.project), taken.map((i) => messages[i]?.idempotencyKey)],
        'sb_key_uses',
      );
      const firstUses = new Map(uses.map((row) => [scoped(row.project, row.key), row]));
      // A key neither claimed nor found was purged in between: free for the next claim.
      open = taken.filter((i) => {
        const use = firstUses.get(keyOf(messages[i]));
        if (use) answers[i] = firstUse(use);
        return !use;
      });
    }
    if (open.length > 0) throw new Error('An idempotency key in use could not be read');
    const fresh = batch.flatMap((pending, i) =>
      pending.message.idempotencyKey === undefined || claimed.has(i) ? [{ pending, i }] : [],
    );
    const stored = await this.insert(
      run,
      fresh.map(({ pending }) => pending),
      ts,
    );
    stored.forEach((message, j) => {
      const slot = fresh[j];
      if (slot) answers[slot.i] = message;
    });
    return withCopies(answers, copies);
  }

  /**
   * Inserts `batch` with its seqs; the keys its messages carry must be claimed by the transaction
   * `run` is on, and get their message's id and seq.
   */
  private async insert(run: Run, batch: Pending[], ts: number): Promise<RoomMessage[]> {
    if (batch.length === 0) return [];
    interface Slot {
      project: string;
      room: string;
      count: number;
    }
    const slots = new Map<string, Slot>();
    const ranks: Array<{ slot: Slot; rank: number }> = [];
    for (const { message } of batch) {
      const key = scoped(message.project, message.room);
      let slot = slots.get(key);
      if (!slot) {
        slot = { project: message.project, room: message.room, count: 0 };
        slots.set(key, slot);
      }
      slot.count++;
      ranks.push({ slot, rank: slot.count });
    }
    const counters = [...slots.values()];
    const backs = ranks.map(({ slot, rank }) => slot.count - rank);
    const values: unknown[] = [
      counters.map((slot) => slot.project),
      counters.map((slot) => slot.room),
      counters.map((slot) => slot.count),
      batch.map((pending) => pending.message.project),
      batch.map((pending) => pending.message.room),
      backs,
      batch.map((pending) => pending.bytes),
      batch.map((pending) => pending.message.from),
      ts,
    ];
    const keyed = batch.flatMap(({ message }, i) =>
      message.idempotencyKey === undefined ? [] : [{ message, back: backs[i] }],
    );
    if (keyed.length > 0) {
      values.push(
        keyed.map(({ message }) => message.project),
        keyed.map(({ message }) => message.idempotencyKey),
        keyed.map(({ message }) => message.room),
        keyed.map(({ back }) => back),
      );
    }
    const { rows } = await run<{ id: string; project: string; room: string; seq: string }>(
      keyed.length > 0 ? APPEND_BATCH_FILLING_KEYS : APPEND_BATCH,
      values,
      keyed.length > 0 ? 'sb_append_keys' : 'sb_append',
    );
    // RETURNING promises no order: match rows to messages by room and seq. A room's last seq is
    // the highest the batch got in it, and its messages count down from there.
    const ids = new Map<string, string>();
    const last = new Map<string, number>();
    for (const row of rows) {
      const key = scoped(row.project, row.room);
      const seq = Number(row.seq);
      ids.set(`${key}\u0000${seq}`, row.id);
      last.set(key, Math.max(last.get(key) ?? 0, seq));
    }
    return batch.map(({ message }, i) => {
      const key = scoped(message.project, message.room);
      const rank = ranks[i];
      const top = last.get(key);
      if (!rank || top === undefined) throw new Error('Batch insert returned no row for a room');
      const seq = top - (rank.slot.count - rank.rank);
      const id = ids.get(`${key}\u0000${seq}`);
      if (id === undefined) throw new Error('Batch insert returned no row for a message');
      return { id, seq, room: message.room, payload: message.payload, from: message.from, ts };
    });
  }

  /** Runs one statement on a connection of the pool. */
  private readonly run: Run = (text, values, name) =>
    this.withClient((client) => runOn(client)(text, values, name));

  /** Runs one statement; `name` makes it a prepared statement, parsed once per connection. */
  private async rows<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
    name?: string,
  ): Promise<R[]> {
    return (await this.run<R>(text, values, name)).rows;
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      await client.query('BEGIN');
      try {
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        // On a dead connection this fails too; the connection is then discarded, and the
        // server rolls back by itself.
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  /**
   * Lends a connection. It goes back to the pool after an error the server reported (the
   * connection is fine), and is discarded after any other (dead socket, timeout).
   */
  private async withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out connection has no listener of the pool's: a socket error would be unhandled
    // and crash the process. The query running on it rejects with the same error.
    const ignore = (): void => {};
    client.on('error', ignore);
    let healthy = true;
    try {
      return await work(client);
    } catch (error) {
      healthy = error instanceof pg.DatabaseError;
      throw error;
    } finally {
      client.off('error', ignore);
      client.release(!healthy);
    }
  }
}

/**
 * Applies missing migrations in one transaction under an advisory lock: a second instance opening
 * the same schema at the same moment waits for the lock, then finds them applied. It runs on a
 * connection of its own, whose timeouts allow for that wait and for slow migrations.
 */
async function migrate(url: string, connectionTimeoutMs: number): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: connectionTimeoutMs,
    statement_timeout: MIGRATION_TIMEOUT_MS,
    query_timeout: MIGRATION_TIMEOUT_MS + CLIENT_GRACE_MS,
    application_name: 'socket-base migrations',
  });
  // A dying connection also rejects the query running on it; unhandled, the event would crash.
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))",
      [MIGRATION_LOCK],
    );
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
    );
    const { rows } = await client.query<{ version: number }>(
      'SELECT version FROM schema_migrations',
    );
    const applied = new Set(rows.map((row) => row.version));
    for (const migration of postgresMigrations) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.end().catch(() => {});
  }
}

function blamesMessage(error: unknown): boolean {
  return error instanceof pg.DatabaseError && MESSAGE_FAULT.test(error.code ?? '');
}

function hasNul(text: string): boolean {
  return text.includes('\u0000');
}

/**
 * Joins a project and a room or idempotency key unambiguously: none can contain NUL (append
 * refuses it).
 */
function scoped(project: string, name: string): string {
  return `${project}\u0000${name}`;
}

function keyOf(message: NewMessage | undefined): string {
  return message ? scoped(message.project, message.idempotencyKey ?? '') : '';
}

/** `run` on one connection: the statements of a transaction. */
function runOn(client: pg.PoolClient): Run {
  return <R extends pg.QueryResultRow>(text: string, values: unknown[], name?: string) =>
    client.query<R>(name ? { name, text, values } : { text, values });
}

/** One look at a project's rooms for the purge by count: up to `wanted` overfull ones. */
async function lookAtRooms(
  run: Run,
  rule: CountRule,
  afterRoom: string | undefined,
  wanted: number,
): Promise<WalkStep> {
  const { rows } = await run<{ room: string; through: string }>(
    afterRoom === undefined ? OVERFULL_FROM_FIRST : OVERFULL_AFTER,
    [rule.project, rule.keep, afterRoom ?? '', wanted],
  );
  const overfull = rows.map(({ room, through }) => ({
    project: rule.project,
    room,
    through: Number(through),
  }));
  return { overfull, lastRoom: rows.at(-1)?.room, done: rows.length < wanted };
}

function firstUse(row: KeyUseRow): DuplicateMessage {
  return { duplicate: true, room: row.room, id: row.id, seq: Number(row.seq) };
}

function isMessageId(id: string): boolean {
  return MESSAGE_ID.test(id) && BigInt(id) <= MAX_BIGINT;
}

function clampSeq(seq: number): number {
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, seq));
}

function toMessage(row: MessageRow): RoomMessage {
  return {
    id: row.id,
    seq: Number(row.seq),
    room: row.room,
    payload: row.payload.toString('utf8'),
    from: row.sender,
    ts: Number(row.ts),
  };
}
