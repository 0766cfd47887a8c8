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
];
