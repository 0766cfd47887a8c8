/**
 * The SQL of PostgresStore (postgres-store.ts), each statement with what it uses: the tables are
 * those of migrations/postgres.ts.
 */

const MESSAGE_COLUMNS = 'id::text AS id, seq, room, payload, sender, ts';
export const MESSAGES = `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE project = $1 AND room = $2`;
export const PROJECTS = 'SELECT hash, name, jwt_secret, created_at, settings FROM projects';

/**
 * Moves the project-wide not-before forward ($2; GREATEST skips a NULL) and deletes the users'
 * that it now covers, in one statement; answers one row when the project exists.
 */
export const REVOKE_ALL = `
  WITH p AS (
    UPDATE projects SET tokens_not_before = GREATEST(tokens_not_before, $2::bigint)
    WHERE hash = $1 RETURNING tokens_not_before
  ),
  dropped AS (
    DELETE FROM user_revocations AS u USING p
    WHERE u.project = $1 AND u.not_before <= p.tokens_not_before
  )
  SELECT 1 AS found FROM p`;

/**
 * Moves one user's not-before forward, unless the project's covers it; answers one row when the
 * project exists. FOR SHARE makes a concurrent REVOKE_ALL wait for this statement, or this one
 * read the project's not-before that one wrote: a covered row never stays.
 */
export const REVOKE_USER = `
  WITH p AS (SELECT tokens_not_before FROM projects WHERE hash = $1 FOR SHARE),
  kept AS (
    INSERT INTO user_revocations AS u (project, sub, not_before)
    SELECT $1, $2, $3::bigint FROM p
    WHERE p.tokens_not_before IS NULL OR p.tokens_not_before < $3::bigint
    ON CONFLICT (project, sub) DO UPDATE SET not_before = GREATEST(u.not_before, EXCLUDED.not_before)
  )
  SELECT 1 AS found FROM p`;

/** The revocations of the projects among $1: the project-wide ones (sub NULL), then the users'. */
export const REVOCATIONS = `
  SELECT hash AS project, NULL AS sub, tokens_not_before AS not_before FROM projects
  WHERE hash = ANY ($1::text[]) AND tokens_not_before IS NOT NULL
  UNION ALL
  SELECT project, sub, not_before FROM user_revocations WHERE project = ANY ($1::text[])`;

/**
 * Takes each room's counter row, in sorted order so that concurrent batches (of this or another
 * process) touching the same rooms queue behind each other instead of deadlocking, and advances
 * it by the batch's count for that room. The row also takes the batch's ts ($9, every message's):
 * that of the room's last message.
 */
const TAKE_SEQS = `
    INSERT INTO room_seq AS r (project, room, last_seq, last_ts)
    SELECT c.project, c.room, c.n, $9::bigint
    FROM unnest($1::text[], $2::text[], $3::bigint[]) AS c (project, room, n)
    ORDER BY c.project, c.room
    ON CONFLICT (project, room) DO UPDATE
      SET last_seq = r.last_seq + EXCLUDED.last_seq, last_ts = EXCLUDED.last_ts
    RETURNING r.project, r.room, r.last_seq`;

/** Numbers the room's messages of the batch last_seq - n + 1 … last_seq, in append order. */
const INSERT_MESSAGES = `
  INSERT INTO messages (project, room, seq, payload, sender, ts)
  SELECT m.project, m.room, c.last_seq - m.back, m.payload, m.sender, $9::bigint
  FROM unnest($4::text[], $5::text[], $6::bigint[], $7::bytea[], $8::text[])
    WITH ORDINALITY AS m (project, room, back, payload, sender, ord)
  JOIN counters AS c ON c.project = m.project AND c.room = m.room
  ORDER BY m.ord`;

/**
 * One statement per batch, so one round trip and the shortest possible row locks: the counters
 * and the messages commit together or not at all.
 */
export const APPEND_BATCH = `
  WITH counters AS (${TAKE_SEQS})
  ${INSERT_MESSAGES}
  RETURNING id::text AS id, project, room, seq`;

/**
 * The same, inside the transaction that claimed the batch's keys, also writing into each claimed
 * key's row the id and seq its message got (a key's message is the one numbered last_seq - back).
 */
export const APPEND_BATCH_FILLING_KEYS = `
  WITH counters AS (${TAKE_SEQS}),
  inserted AS (${INSERT_MESSAGES} RETURNING id, project, room, seq),
  filled AS (
    UPDATE idempotency_keys AS k SET message_id = i.id, seq = i.seq
    FROM unnest($10::text[], $11::text[], $12::text[], $13::bigint[]) AS u (project, key, room, back)
    JOIN counters AS c ON c.project = u.project AND c.room = u.room
    JOIN inserted AS i ON i.project = u.project AND i.room = u.room AND i.seq = c.last_seq - u.back
    WHERE k.project = u.project AND k.key = u.key
  )
  SELECT id::text AS id, project, room, seq FROM inserted`;

/**
 * Claims keys for this transaction, in sorted order (two batches claiming the same keys queue
 * instead of deadlocking). A key another transaction is inserting makes this wait for its outcome.
 * Returns the keys claimed: new ones, and those first used before $5 (their row starts over).
 * A key in use within the window is left as it is, and not returned.
 */
export const CLAIM_KEYS = `
  INSERT INTO idempotency_keys AS k (project, key, room, first_used)
  SELECT c.project, c.key, c.room, $4::bigint
  FROM unnest($1::text[], $2::text[], $3::text[]) AS c (project, key, room)
  ORDER BY c.project, c.key
  ON CONFLICT (project, key) DO UPDATE
    SET room = EXCLUDED.room, message_id = NULL, seq = NULL, first_used = EXCLUDED.first_used
    WHERE k.first_used < $5
  RETURNING k.project, k.key`;

/**
 * Where the keys' first messages went. A statement of its own, after the claim: its snapshot sees
 * the rows of the transactions the claim waited for.
 */
export const KEY_USES = `
  SELECT k.project, k.key, k.room, k.message_id::text AS id, k.seq
  FROM idempotency_keys AS k
  JOIN unnest($1::text[], $2::text[]) AS u (project, key) ON k.project = u.project AND k.key = u.key
  WHERE k.message_id IS NOT NULL`;

export const TRY_PURGE_LOCK = `
  SELECT pg_try_advisory_xact_lock($1, hashtext(coalesce(current_schema(), ''))) AS locked`;

/** A scan of projects (a small table) for those with a rule; JSON null reads as SQL NULL. */
export const RETENTION_RULES = `
  SELECT project, max_age_s, keep FROM (
    SELECT hash AS project,
      coalesce((settings #>> '{retention,maxAgeSeconds}')::bigint, $1::bigint) AS max_age_s,
      coalesce((settings #>> '{retention,maxMessagesPerRoom}')::bigint, $2::bigint) AS keep
    FROM projects
  ) AS p
  WHERE max_age_s IS NOT NULL OR keep IS NOT NULL`;

/**
 * Seeks each project's oldest messages in messages_by_age (project, ts): a project with nothing to
 * purge costs one seek. SKIP LOCKED: the purge never waits for, nor deadlocks with, a writer.
 */
export const PURGE_BY_AGE = `
  DELETE FROM messages WHERE id IN (
    SELECT v.id FROM unnest($1::text[], $2::bigint[]) AS r (project, before)
    CROSS JOIN LATERAL (
      SELECT id FROM messages WHERE project = r.project AND ts < r.before
      ORDER BY ts LIMIT $3 FOR UPDATE SKIP LOCKED
    ) AS v
    LIMIT $3
  )`;

/**
 * The project's rooms after $3 in room_seq's primary key, each with one probe of the start of
 * UNIQUE (project, room, seq): those holding a seq at most last_seq - keep.
 */
const overfullRooms = (start: '>' | '>=') => `
  SELECT r.room, r.last_seq - $2 AS through FROM room_seq AS r
  WHERE r.project = $1 AND r.room ${start} $3 AND EXISTS (
    SELECT 1 FROM messages AS m
    WHERE m.project = r.project AND m.room = r.room AND m.seq <= r.last_seq - $2
  )
  ORDER BY r.room LIMIT $4`;
export const OVERFULL_FROM_FIRST = overfullRooms('>=');
export const OVERFULL_AFTER = overfullRooms('>');

/** Each room's oldest seqs, from the start of UNIQUE (project, room, seq). */
export const PURGE_BY_COUNT = `
  DELETE FROM messages WHERE id IN (
    SELECT v.id FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t (project, room, through)
    CROSS JOIN LATERAL (
      SELECT id FROM messages WHERE project = t.project AND room = t.room AND seq <= t.through
      ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED
    ) AS v
    LIMIT $4
  )`;

/** The oldest keys, from the start of idempotency_keys_by_age; a key being claimed is skipped. */
export const PURGE_KEYS = `
  DELETE FROM idempotency_keys WHERE (project, key) IN (
    SELECT project, key FROM idempotency_keys WHERE first_used < $1
    ORDER BY first_used LIMIT $2 FOR UPDATE SKIP LOCKED
  )`;

/**
 * A page of the project's rooms by name in code-point order, from room_seq_by_name (project, room
 * COLLATE "C"): room_seq holds a row for every room that has had a message, whatever the purge
 * removed since.
 */
const roomsPage = (after: boolean) => `
  SELECT room, last_seq, last_ts FROM room_seq
  WHERE project = $1${after ? ' AND room COLLATE "C" > $3' : ''}
  ORDER BY room COLLATE "C" LIMIT $2`;
export const ROOMS_FROM_FIRST = roomsPage(false);
export const ROOMS_AFTER = roomsPage(true);

/** Index-only scans of UNIQUE (project, room, seq). */
export const COUNT_PROJECT_MESSAGES = 'SELECT count(*) AS n FROM messages WHERE project = $1';
export const COUNT_MESSAGES = 'SELECT count(*) AS n FROM messages';
