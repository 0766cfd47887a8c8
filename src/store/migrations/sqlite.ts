/**
 * SQLite schema, as ordered migrations. Kept as TypeScript strings because tsc does not copy .sql
 * files into the build. Never edit a migration that has shipped: append a new one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'projects, room counters and messages',
    sql: `
      CREATE TABLE projects (
        hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        jwt_secret TEXT NOT NULL,
        created_at TEXT NOT NULL
      ) STRICT;

      -- One row per room: the last seq handed out. Taking the next seq is an upsert on this row
      -- inside the writing transaction, so seqs stay gapless even with several processes.
      CREATE TABLE room_seq (
        project TEXT NOT NULL REFERENCES projects (hash) ON DELETE CASCADE,
        room TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        PRIMARY KEY (project, room)
      ) STRICT, WITHOUT ROWID;

      -- AUTOINCREMENT so that an id is never handed out twice, even after the newest rows were
      -- deleted with their project: a stale cursor must never point at someone else's message.
      -- UNIQUE (project, room, seq) is also the index every history and range query walks.
      CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project TEXT NOT NULL REFERENCES projects (hash) ON DELETE CASCADE,
        room TEXT NOT NULL,
        seq INTEGER NOT NULL,
        payload TEXT NOT NULL,
        sender TEXT NOT NULL,
        ts INTEGER NOT NULL,
        UNIQUE (project, room, seq)
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: 'seqs from the messages index, no counter rows',
    // A room's next seq is max(seq) + 1 under the write lock, read from UNIQUE (project, room, seq).
    // The counter row always held that same number, and updating it dirtied one more page per
    // commit: about half of what a commit of a few messages wrote to the WAL.
    sql: 'DROP TABLE room_seq;',
  },
  {
    version: 3,
    name: 'project settings, idempotency keys, room positions, messages by age',
    sql: `
      -- JSON of the project's own settings (src/store/project-row.ts); '{}' reads as none.
      ALTER TABLE projects ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

      -- One row per key a project used: where its first message went. Apart from messages, so
      -- that retention does not take it; message_id is no foreign key, as that message may be
      -- gone. first_used (epoch ms) dates the key for the window and for the purge.
      CREATE TABLE idempotency_keys (
        project TEXT NOT NULL REFERENCES projects (hash) ON DELETE CASCADE,
        key TEXT NOT NULL,
        room TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        first_used INTEGER NOT NULL,
        PRIMARY KEY (project, key)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX idempotency_keys_by_age ON idempotency_keys (first_used);

      -- A room's last seq, written by the purge when it removes the room's newest message, and
      -- read only for a room with no message left: max(seq) of the messages stays the fast path.
      CREATE TABLE room_positions (
        project TEXT NOT NULL REFERENCES projects (hash) ON DELETE CASCADE,
        room TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        PRIMARY KEY (project, room)
      ) STRICT, WITHOUT ROWID;

      -- The purge by age seeks each project's oldest messages here instead of scanning them.
      CREATE INDEX messages_by_age ON messages (project, ts);
    `,
  },
  {
    version: 4,
    name: 'the time of a room position',
    // The ts of the message a position names, written with it by the purge, so that a room whose
    // every message went still tells when its last one was stored. NULL for the positions kept
    // before this migration: that time is gone.
    sql: 'ALTER TABLE room_positions ADD COLUMN last_ts INTEGER;',
  },
  {
    version: 5,
    name: 'token revocations',
    sql: `
      -- The project-wide not-before of a disconnect with all and revoke (epoch seconds, as a
      -- JWT's iat): tokens issued before it are refused. NULL: none.
      ALTER TABLE projects ADD COLUMN tokens_not_before INTEGER;

      -- One user's not-before, kept only while later than the project's (a project-wide
      -- revocation deletes the rows it covers), so that the table holds what still matters.
      CREATE TABLE user_revocations (
        project TEXT NOT NULL REFERENCES projects (hash) ON DELETE CASCADE,
        sub TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        PRIMARY KEY (project, sub)
      ) STRICT, WITHOUT ROWID;
    `,
  },
];
