/**
 * PostgreSQL schema, as ordered migrations. Kept as TypeScript strings because tsc does not copy
 * .sql files into the build. Never edit a migration that has shipped: append a new one.
 *
 * The tables go into the first schema of the connection's `search_path` (`public` by default;
 * `?options=-c%20search_path%3Dname` in DATABASE_URL chooses another).
 */
import type { Migration } from './sqlite.js';

export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'projects, room counters and messages',
    sql: `
      -- created_at stays the ISO 8601 text the caller gave, so that it comes back unchanged.
      CREATE TABLE projects (
        hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        jwt_secret TEXT NOT NULL,
        created_at TEXT NOT NULL
      );

      -- One row per room: the last seq handed out. A batch takes its seqs by upserting these rows
      -- in the transaction that inserts its messages; the row lock serializes every writer of a
      -- room, whichever process or connection it comes from, so seqs stay gapless.
      CREATE TABLE room_seq (
        project TEXT NOT NULL REFERENCES projects (hash) ON DELETE CASCADE,
        room TEXT NOT NULL,
        last_seq BIGINT NOT NULL,
        PRIMARY KEY (project, room)
      );

      -- A sequence never hands out an id twice, even after the newest rows were deleted with
      -- their project: a stale cursor must never point at someone else's message.
      -- payload is BYTEA holding UTF-8, because TEXT refuses NUL and payloads may contain it.
      -- UNIQUE (project, room, seq) is also the index every history and range query walks, and
      -- the one the foreign key's cascade uses.
      CREATE TABLE messages (
        id BIGSERIAL PRIMARY KEY,
        project TEXT NOT NULL REFERENCES projects (hash) ON DELETE CASCADE,
        room TEXT NOT NULL,
        seq BIGINT NOT NULL,
        payload BYTEA NOT NULL,
        sender TEXT NOT NULL,
        ts BIGINT NOT NULL,
        UNIQUE (project, room, seq)
      );
    `,
  },
  {
    version: 2,
    name: 'project settings, idempotency keys, messages by age',
    sql: `
      -- The project's own settings (src/store/project-row.ts); '{}' reads as none.
      ALTER TABLE projects ADD COLUMN settings JSONB NOT NULL DEFAULT '{}';

      -- One row per key a project used: where its first message went. Apart from messages, so
      -- that retention does not take it; message_id is no foreign key, as that message may be
      -- gone. An append claims the key first (the primary key makes a concurrent claim of the
      -- same key wait for this one's outcome) and fills message_id and seq once the message is
      -- inserted, in the same transaction: others never see them NULL. No foreign key to
      -- projects either: its check would lock the project row before the room counters, the
      -- reverse of every other append's order, and deadlock with deleteProject; deleteProject
      -- removes the keys itself, last. first_used (epoch ms) dates the key for the window.
      CREATE TABLE idempotency_keys (
        project TEXT NOT NULL,
        key TEXT NOT NULL,
        room TEXT NOT NULL,
        message_id BIGINT,
        seq BIGINT,
        first_used BIGINT NOT NULL,
        PRIMARY KEY (project, key)
      );
      CREATE INDEX idempotency_keys_by_age ON idempotency_keys (first_used);

      -- The purge by age seeks each project's oldest messages here instead of scanning them.
      CREATE INDEX messages_by_age ON messages (project, ts);
    `,
  },
  {
    version: 3,
    name: 'the time of each room counter, rooms by name',
    sql: `
      -- The ts of the room's last message (the one numbered last_seq), written by the append
      -- that advances last_seq, in the same row update: it outlives the message, like last_seq.
      -- Filled here from the messages still stored; NULL where that message is already gone.
      ALTER TABLE room_seq ADD COLUMN last_ts BIGINT;
      UPDATE room_seq AS r SET last_ts = m.ts FROM messages AS m
      WHERE m.project = r.project AND m.room = r.room AND m.seq = r.last_seq;

      -- A project's rooms in code-point (byte) order, whatever the database's collation: the
      -- pages of the admin's room list walk it. Only a new room writes to it (the per-batch
      -- update of last_seq and last_ts changes no indexed column).
      CREATE INDEX room_seq_by_name ON room_seq (project, room COLLATE "C");
    `,
  },
  {
    version: 4,
    name: 'token revocations',
    sql: `
      -- The project-wide not-before of a disconnect with all and revoke (epoch seconds, as a
      -- JWT's iat): tokens issued before it are refused. NULL: none.
      ALTER TABLE projects ADD COLUMN tokens_not_before BIGINT;

      -- One user's not-before, kept only while later than the project's (a project-wide
      -- revocation deletes the rows it covers). The cascade removes a deleted project's rows
      -- after its row is locked, the order revokeTokens takes them in too.
      CREATE TABLE user_revocations (
        project TEXT NOT NULL REFERENCES projects (hash) ON DELETE CASCADE,
        sub TEXT NOT NULL,
        not_before BIGINT NOT NULL,
        PRIMARY KEY (project, sub)
      );
    `,
  },
];
