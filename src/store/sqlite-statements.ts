/**
 * The SQL of SqliteStore (sqlite-store.ts), compiled once per connection, each statement with what
 * it uses: the tables are those of migrations/sqlite.ts.
 */
import type Database from 'better-sqlite3';
import type { ProjectSummary } from '../domain.js';
import type { ProjectRow, RevocationRow } from './project-row.js';

export interface MessageRow {
  id: number;
  seq: number;
  room: string;
  payload: string;
  sender: string;
  ts: number;
}

const MESSAGE_COLUMNS = 'id, seq, room, payload, sender, ts';

/** Where a key's first message went, and when. */
export interface KeyRow {
  room: string;
  message_id: number;
  seq: number;
  first_used: number;
}

/** A message the purge by age removed. */
export interface RemovedMessage {
  room: string;
  seq: number;
  ts: number;
}

/** A project's effective retention: its own value, else the default; null: no such rule. */
export interface RetentionRow {
  project: string;
  max_age_s: number | null;
  keep: number | null;
}

export type Statements = ReturnType<typeof prepare>;
type Between = [project: string, room: string, afterSeq: number, beforeSeq: number, limit: number];

export interface RoomRow {
  room: string;
  last_seq: number;
  last_ts: number | null;
}

/** Every statement, compiled once per connection. */
export function prepare(db: Database.Database) {
  const messages = `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE project = ? AND room = ?`;
  // A loose scan of UNIQUE (project, room, seq): one seek per room to the next room name, and
  // one to each end of its seqs. `start` is how the first room compares with the one given.
  const rooms = (start: '>' | '>=') => `
    WITH RECURSIVE walk (room, n) AS (
      SELECT (SELECT min(room) FROM messages WHERE project = @project AND room ${start} @after), 1
      UNION ALL
      SELECT (SELECT min(room) FROM messages WHERE project = @project AND room > walk.room), n + 1
      FROM walk WHERE walk.room IS NOT NULL AND walk.n < @rooms
    )
    SELECT room,
      (SELECT min(seq) FROM messages WHERE project = @project AND room = walk.room) AS first,
      (SELECT max(seq) FROM messages WHERE project = @project AND room = walk.room) AS last
    FROM walk WHERE room IS NOT NULL`;
  // A page of the project's rooms by name (BINARY: UTF-8 byte order): the first `limit` of the
  // rooms with messages (the loose scan above) and of those with a kept position, each with its
  // last seq as lastSeq reads it and the ts of that message (from the message, else the position).
  const page = (start: '>' | '>=') => `
    WITH RECURSIVE walk (room, n) AS (
      SELECT (SELECT min(room) FROM messages WHERE project = @project AND room ${start} @after), 1
      UNION ALL
      SELECT (SELECT min(room) FROM messages WHERE project = @project AND room > walk.room), n + 1
      FROM walk WHERE walk.room IS NOT NULL AND walk.n < @limit
    ),
    kept (room) AS (
      SELECT room FROM room_positions WHERE project = @project AND room ${start} @after
      ORDER BY room LIMIT @limit
    ),
    names (room) AS (
      SELECT room FROM walk WHERE room IS NOT NULL UNION SELECT room FROM kept
      ORDER BY room LIMIT @limit
    )
    SELECT names.room AS room, coalesce(m.seq, p.last_seq) AS last_seq,
      CASE WHEN m.seq IS NULL THEN p.last_ts ELSE m.ts END AS last_ts
    FROM names
    LEFT JOIN messages AS m ON m.project = @project AND m.room = names.room
      AND m.seq = (SELECT max(seq) FROM messages WHERE project = @project AND room = names.room)
    LEFT JOIN room_positions AS p ON p.project = @project AND p.room = names.room
    ORDER BY names.room`;
  type Page = [{ project: string; after: string; limit: number }];
  type Walk = [{ project: string; after: string; rooms: number }];
  type RoomEnds = { room: string; first: number | null; last: number | null };
  return {
    insertProject: db.prepare<[string, string, string, string, string]>(
      'INSERT INTO projects (hash, name, jwt_secret, created_at, settings) VALUES (?, ?, ?, ?, ?)',
    ),
    updateProject: db.prepare<[string | null, string | null, string], ProjectRow>(
      `UPDATE projects SET name = coalesce(?, name), settings = coalesce(?, settings)
       WHERE hash = ? RETURNING *`,
    ),
    project: db.prepare<[string], ProjectRow>('SELECT * FROM projects WHERE hash = ?'),
    projects: db.prepare<[], ProjectSummary>(
      'SELECT hash, name, created_at AS createdAt FROM projects ORDER BY created_at, rowid',
    ),
    countProjects: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM projects'),
    setSecret: db.prepare<[string, string]>('UPDATE projects SET jwt_secret = ? WHERE hash = ?'),
    deleteMessages: db.prepare<[string]>('DELETE FROM messages WHERE project = ?'),
    deleteKeys: db.prepare<[string]>('DELETE FROM idempotency_keys WHERE project = ?'),
    deletePositions: db.prepare<[string]>('DELETE FROM room_positions WHERE project = ?'),
    deleteProject: db.prepare<[string]>('DELETE FROM projects WHERE hash = ?'),
    deleteRevocations: db.prepare<[string]>('DELETE FROM user_revocations WHERE project = ?'),
    tokensNotBefore: db.prepare<[string], { tokens_not_before: number | null }>(
      'SELECT tokens_not_before FROM projects WHERE hash = ?',
    ),
    // max() of SQLite returns NULL when an argument is NULL: hence the coalesce.
    revokeAll: db.prepare<[{ hash: string; notBefore: number }]>(
      `UPDATE projects SET tokens_not_before = max(coalesce(tokens_not_before, @notBefore), @notBefore)
       WHERE hash = @hash`,
    ),
    dropCoveredRevocations: db.prepare<[{ hash: string }]>(
      `DELETE FROM user_revocations WHERE project = @hash
       AND not_before <= (SELECT tokens_not_before FROM projects WHERE hash = @hash)`,
    ),
    revokeUser: db.prepare<[string, string, number]>(
      `INSERT INTO user_revocations (project, sub, not_before) VALUES (?, ?, ?)
       ON CONFLICT (project, sub) DO UPDATE SET not_before = max(not_before, excluded.not_before)`,
    ),
    // The hashes come as one JSON array, so that one statement serves any number of them; each
    // is a seek in the primary key of projects and of user_revocations.
    revocations: db.prepare<[{ hashes: string }], RevocationRow>(
      `SELECT hash AS project, NULL AS sub, tokens_not_before AS not_before FROM projects
       WHERE hash IN (SELECT value FROM json_each(@hashes)) AND tokens_not_before IS NOT NULL
       UNION ALL
       SELECT project, sub, not_before FROM user_revocations
       WHERE project IN (SELECT value FROM json_each(@hashes))`,
    ),
    cursorSeq: db.prepare<[number, string, string], { seq: number }>(
      'SELECT seq FROM messages WHERE id = ? AND project = ? AND room = ?',
    ),
    oldestBetween: db.prepare<Between, MessageRow>(
      `${messages} AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?`,
    ),
    newestBetween: db.prepare<Between, MessageRow>(
      `${messages} AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
    ),
    range: db.prepare<[string, string, number, number], MessageRow>(
      `${messages} AND seq BETWEEN ? AND ? ORDER BY seq ASC`,
    ),
    // The room's newest seq, read from the end of UNIQUE (project, room, seq): no counter row to
    // update per commit (that row's page was half of what each commit wrote). Only a room with no
    // message left reads the position the purge kept (coalesce evaluates it only then).
    lastSeq: db
      .prepare<[string, string, string, string], number>(
        `SELECT coalesce(
          (SELECT max(seq) FROM messages WHERE project = ? AND room = ?),
          (SELECT last_seq FROM room_positions WHERE project = ? AND room = ?),
          0)`,
      )
      .pluck(),
    newestSeq: db
      .prepare<[string, string], number | null>(
        'SELECT max(seq) FROM messages WHERE project = ? AND room = ?',
      )
      .pluck(),
    keyUse: db.prepare<[string, string], KeyRow>(
      'SELECT room, message_id, seq, first_used FROM idempotency_keys WHERE project = ? AND key = ?',
    ),
    useKey: db.prepare<[string, string, string, number, number, number]>(
      `INSERT INTO idempotency_keys (project, key, room, message_id, seq, first_used)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (project, key) DO UPDATE SET room = excluded.room,
         message_id = excluded.message_id, seq = excluded.seq, first_used = excluded.first_used`,
    ),
    // A scan of projects (a small table) for those with a rule; JSON null reads as SQL NULL.
    retentionRules: db.prepare<[number | null, number | null], RetentionRow>(
      `SELECT project, max_age_s, keep FROM (
        SELECT hash AS project,
          coalesce(json_extract(settings, '$.retention.maxAgeSeconds'), ?) AS max_age_s,
          coalesce(json_extract(settings, '$.retention.maxMessagesPerRoom'), ?) AS keep
        FROM projects
      ) WHERE max_age_s IS NOT NULL OR keep IS NOT NULL`,
    ),
    // Seeks the project's oldest messages in messages_by_age (project, ts): a project with
    // nothing to purge costs one seek.
    purgeByAge: db.prepare<[string, number, number], RemovedMessage>(
      `DELETE FROM messages WHERE id IN (
        SELECT id FROM messages WHERE project = ? AND ts < ? ORDER BY ts LIMIT ?
      ) RETURNING room, seq, ts`,
    ),
    // The room's oldest seqs, from the start of UNIQUE (project, room, seq).
    purgeByCount: db.prepare<[string, string, number, number]>(
      `DELETE FROM messages WHERE id IN (
        SELECT id FROM messages WHERE project = ? AND room = ? AND seq <= ? ORDER BY seq LIMIT ?
      )`,
    ),
    // The oldest keys, from the start of idempotency_keys_by_age.
    purgeKeys: db.prepare<[number, number]>(
      `DELETE FROM idempotency_keys WHERE (project, key) IN (
        SELECT project, key FROM idempotency_keys WHERE first_used < ? ORDER BY first_used LIMIT ?
      )`,
    ),
    emptyRoom: db.prepare<[string, string]>('DELETE FROM messages WHERE project = ? AND room = ?'),
    // The ts goes with the greater seq (the SET expressions read the row as it was).
    keepPosition: db.prepare<[string, string, number, number]>(
      `INSERT INTO room_positions (project, room, last_seq, last_ts) VALUES (?, ?, ?, ?)
       ON CONFLICT (project, room) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq),
         last_ts = CASE WHEN excluded.last_seq >= last_seq THEN excluded.last_ts ELSE last_ts END`,
    ),
    pageFromFirst: db.prepare<Page, RoomRow>(page('>=')),
    pageAfter: db.prepare<Page, RoomRow>(page('>')),
    // Walks messages_by_age (project, ts), or the table.
    countProjectMessages: db
      .prepare<[string], number>('SELECT count(*) FROM messages WHERE project = ?')
      .pluck(),
    countMessages: db.prepare<[], number>('SELECT count(*) FROM messages').pluck(),
    roomsFromFirst: db.prepare<Walk, RoomEnds>(rooms('>=')),
    roomsAfter: db.prepare<Walk, RoomEnds>(rooms('>')),
    ping: db.prepare('SELECT 1'),
  };
}
