import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { isDuplicate, noSettings, type Project, type RoomMessage } from '../../src/domain.js';
import { sqliteMigrations } from '../../src/store/migrations/sqlite.js';
import { SqliteCheckpointer } from '../../src/store/sqlite-checkpointer.js';
import { MAX_BATCH, SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite-store.js';
import { lockContract } from './sqlite-lock.contract.js';
import { storeContract, stored } from './store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'socket-base-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
const newFile = (): string => join(dir, `nested-${++files}`, 'store.db');

storeContract('SqliteStore on :memory:', async (options) => SqliteStore.open(':memory:', options));
storeContract('SqliteStore on a file', async (options) => SqliteStore.open(newFile(), options));
lockContract('SqliteStore', async (path, options) => SqliteStore.open(path, options), newFile);

const project: Project = {
  hash: 'p1',
  name: 'sqlite',
  jwtSecret: 'secret',
  createdAt: new Date(0).toISOString(),
  settings: noSettings(),
};

async function openWithProject(
  path: string,
  options: SqliteStoreOptions = {},
): Promise<SqliteStore> {
  const store = SqliteStore.open(path, options);
  if (!(await store.getProject(project.hash))) await store.createProject(project);
  return store;
}

function appendMany(store: SqliteStore, room: string, count: number): Promise<RoomMessage[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) =>
      stored(await store.append({ project: project.hash, room, payload: `m${i}`, from: 'bob' })),
    ),
  );
}

const NO_RETENTION = { maxAgeSeconds: null, maxMessagesPerRoom: null };

const oneTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
const sortedSeqs = (messages: RoomMessage[]): number[] =>
  messages.map((m) => m.seq).sort((a, b) => a - b);

describe('SqliteStore', () => {
  it('groups concurrent appends into batches larger than one', async () => {
    const sizes: number[] = [];
    const store = await openWithProject(':memory:', { onBatch: (size) => sizes.push(size) });
    await appendMany(store, 'load', 1000);
    await store.close();
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      1000,
    );
    assert.ok(Math.max(...sizes) > 1, `batch sizes ${sizes.join(',')}`);
  });

  it(`caps a batch at ${MAX_BATCH} messages and commits the rest in the next one`, async () => {
    const sizes: number[] = [];
    const store = await openWithProject(':memory:', { onBatch: (size) => sizes.push(size) });
    const sent = await appendMany(store, 'flood', 2 * MAX_BATCH + 500);
    await store.close();
    assert.ok(
      sizes.every((size) => size <= MAX_BATCH),
      `batch sizes ${sizes.join(',')}`,
    );
    assert.deepEqual(
      sent.map((m) => m.seq),
      oneTo(2 * MAX_BATCH + 500),
    );
  });

  it('reports each committed batch with its duration in seconds', async () => {
    const batches: [number, number][] = [];
    const store = await openWithProject(':memory:', {
      onBatch: (size, seconds) => batches.push([size, seconds]),
    });
    await appendMany(store, 'timed', 3);
    await store.close();
    assert.equal(batches.length, 1);
    const [size, seconds] = batches[0] ?? [];
    assert.equal(size, 3);
    assert.ok(typeof seconds === 'number' && seconds >= 0 && seconds < 5);
  });

  it('commits a lone append within one event-loop turn, without waiting for more', async () => {
    const sizes: number[] = [];
    const store = await openWithProject(':memory:', { onBatch: (size) => sizes.push(size) });
    let turns = 0;
    let counting = true;
    const tick = (): void => {
      if (!counting) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    await store.append({ project: project.hash, room: 'alone', payload: 'x', from: 'bob' });
    counting = false;
    await store.close();
    assert.ok(turns <= 2, `took ${turns} event-loop turns`);
    assert.deepEqual(sizes, [1]);
  });

  it('still stores messages when the onBatch callback throws', async () => {
    const store = await openWithProject(':memory:', {
      onBatch: () => {
        throw new Error('metrics broke');
      },
    });
    const sent = await appendMany(store, 'metrics', 2);
    assert.deepEqual(await store.history(project.hash, 'metrics', { limit: 10 }), sent);
    await store.close();
  });

  it('stores a lone UTF-16 surrogate as U+FFFD, the same in append and history', async () => {
    const store = await openWithProject(':memory:');
    const sent = stored(
      await store.append({
        project: project.hash,
        room: 'broken',
        payload: 'a\uD800b\uDFFF😀',
        from: 'bob',
      }),
    );
    assert.equal(sent.payload, 'a\uFFFDb\uFFFD😀');
    assert.deepEqual(await store.history(project.hash, 'broken', { limit: 1 }), [sent]);
    await store.close();
  });

  it('creates the parent directory of its file', async () => {
    const path = join(dir, 'made', 'for', 'it', 'store.db');
    const store = SqliteStore.open(path);
    await store.close();
    assert.ok(existsSync(path));
  });

  it('keeps data across close and reopen, and continues the seq', async () => {
    const path = newFile();
    const first = await openWithProject(path);
    const sent = await appendMany(first, 'durable', 3);
    await first.close();
    const second = SqliteStore.open(path);
    assert.deepEqual(await second.getProject(project.hash), project);
    assert.deepEqual(await second.history(project.hash, 'durable', { limit: 10 }), sent);
    const next = await second.append({
      project: project.hash,
      room: 'durable',
      payload: 'n',
      from: 'b',
    });
    assert.equal(next.seq, 4);
    await second.close();
  });

  it('applies each migration once, however often the file is opened', async () => {
    const path = newFile();
    for (let i = 0; i < 3; i++) await SqliteStore.open(path).close();
    assertFullyMigrated(path);
  });

  it('continues the seqs of a file written before the counter rows were dropped', async () => {
    const path = oldFile(
      1,
      `INSERT INTO projects VALUES ('p1', 'sqlite', 'secret', '1970-01-01T00:00:00.000Z');
       INSERT INTO room_seq VALUES ('p1', 'kept', 2);
       INSERT INTO messages (project, room, seq, payload, sender, ts)
         VALUES ('p1', 'kept', 1, 'a', 'bob', 1), ('p1', 'kept', 2, 'b', 'bob', 2);`,
    );
    const store = SqliteStore.open(path);
    try {
      assert.equal(await store.lastSeq(project.hash, 'kept'), 2);
      const [third, other] = await Promise.all([
        store.append({ project: project.hash, room: 'kept', payload: 'c', from: 'bob' }),
        store.append({ project: project.hash, room: 'new', payload: 'd', from: 'bob' }),
      ]);
      assert.equal(third?.seq, 3);
      assert.equal(other?.seq, 1);
      assert.deepEqual(
        (await store.history(project.hash, 'kept', { limit: 10 }))?.map((m) => m.payload),
        ['a', 'b', 'c'],
      );
    } finally {
      await store.close();
    }
    assertFullyMigrated(path);
  });

  it('migrates a file with rows written before settings and keys: no settings, keys and the purge work', async () => {
    const path = oldFile(
      2,
      `INSERT INTO projects VALUES ('p1', 'sqlite', 'secret', '1970-01-01T00:00:00.000Z');
       INSERT INTO messages (project, room, seq, payload, sender, ts)
         VALUES ('p1', 'old', 1, 'a', 'bob', 1), ('p1', 'old', 2, 'b', 'bob', 2);`,
    );
    const store = SqliteStore.open(path);
    try {
      assert.deepEqual(await store.getProject(project.hash), project);
      const keyed = { project: project.hash, room: 'old', payload: 'c', from: 'bob' };
      const third = stored(await store.append({ ...keyed, idempotencyKey: 'k' }));
      assert.equal(third.seq, 3);
      assert.equal(isDuplicate(await store.append({ ...keyed, idempotencyKey: 'k' })), true);
      // Messages stored at ts 1 and 2 are far past an hour.
      await store.updateProject(project.hash, {
        settings: { ...noSettings(), retention: { maxAgeSeconds: 3600, maxMessagesPerRoom: null } },
      });
      const purge = { defaults: NO_RETENTION, idempotencyWindowMs: 86_400_000, limit: 100 };
      assert.equal(await store.purgeExpired({ ...purge, now: Date.now() }), 2);
      assert.deepEqual(await store.history(project.hash, 'old', { limit: 10 }), [third]);
    } finally {
      await store.close();
    }
    assertFullyMigrated(path);
  });

  it('migrates a file whose positions have no time: rooms lists them with lastTs null, a later purge keeps the time', async () => {
    const path = oldFile(
      3,
      `INSERT INTO projects (hash, name, jwt_secret, created_at)
         VALUES ('p1', 'sqlite', 'secret', '1970-01-01T00:00:00.000Z');
       INSERT INTO room_positions VALUES ('p1', 'gone', 4);
       INSERT INTO messages (project, room, seq, payload, sender, ts)
         VALUES ('p1', 'live', 1, 'a', 'bob', 1), ('p1', 'live', 2, 'b', 'bob', 2);`,
    );
    const store = SqliteStore.open(path);
    try {
      assert.deepEqual(await store.rooms(project.hash, undefined, 10), [
        { room: 'gone', lastSeq: 4, lastTs: null },
        { room: 'live', lastSeq: 2, lastTs: 2 },
      ]);
      await store.updateProject(project.hash, {
        settings: { ...noSettings(), retention: { maxAgeSeconds: 3600, maxMessagesPerRoom: null } },
      });
      const purge = { defaults: NO_RETENTION, idempotencyWindowMs: 86_400_000, limit: 100 };
      assert.equal(await store.purgeExpired({ ...purge, now: Date.now() }), 2);
      assert.deepEqual(await store.rooms(project.hash, 'gone', 10), [
        { room: 'live', lastSeq: 2, lastTs: 2 },
      ]);
      const next = stored(
        await store.append({ project: project.hash, room: 'gone', payload: 'n', from: 'b' }),
      );
      assert.equal(next.seq, 5);
      assert.deepEqual(await store.rooms(project.hash, undefined, 1), [
        { room: 'gone', lastSeq: 5, lastTs: next.ts },
      ]);
    } finally {
      await store.close();
    }
    assertFullyMigrated(path);
  });

  it('a room emptied by the purge keeps its last seq in the file: opened again, the next message takes LAST+1', async () => {
    const path = newFile();
    const store = await openWithProject(path);
    await store.updateProject(project.hash, {
      settings: { ...noSettings(), retention: { maxAgeSeconds: 1, maxMessagesPerRoom: null } },
    });
    await appendMany(store, 'emptied', 5);
    const purge = { defaults: NO_RETENTION, idempotencyWindowMs: 86_400_000, limit: 100 };
    assert.equal(await store.purgeExpired({ ...purge, now: Date.now() + 60_000 }), 5);
    await store.close();
    const reopened = SqliteStore.open(path);
    try {
      assert.equal(await reopened.lastSeq(project.hash, 'emptied'), 5);
      assert.deepEqual(await reopened.history(project.hash, 'emptied', { limit: 10 }), []);
      const next = stored(
        await reopened.append({ project: project.hash, room: 'emptied', payload: 'n', from: 'b' }),
      );
      assert.equal(next.seq, 6);
    } finally {
      await reopened.close();
    }
  });

  it('copies the WAL back into the database file from its worker thread, not in commits', async () => {
    const path = newFile();
    const store = await openWithProject(path);
    try {
      const empty = statSync(path).size;
      // A few hundred WAL pages: under the 1,000 at which SQLite would checkpoint in a commit.
      for (let round = 0; round < 3; round++) await appendMany(store, `room-${round}`, 500);
      const deadline = Date.now() + 2000;
      while (statSync(path).size <= empty + 64 * 1024 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(statSync(path).size > empty + 64 * 1024, 'the database file took the pages');
    } finally {
      await store.close();
    }
  });

  it('two stores on one file appending into one room at once keep seq gapless', async () => {
    const path = newFile();
    const a = await openWithProject(path);
    const b = SqliteStore.open(path);
    const calls = Array.from({ length: 400 }, (_, i) =>
      (i % 2 ? a : b)
        .append({ project: project.hash, room: 'shared', payload: `${i}`, from: 'x' })
        .then(stored),
    );
    const sent = await Promise.all(calls);
    assert.deepEqual(sortedSeqs(sent), oneTo(400));
    for (const parity of [0, 1]) {
      const own = sent.filter((_, i) => i % 2 === parity).map((m) => m.seq);
      assert.deepEqual(
        own,
        [...own].sort((x, y) => x - y),
        'each store resolves in seq order',
      );
    }
    assert.equal((await b.history(project.hash, 'shared', { limit: 1000 }))?.length, 400);
    await Promise.all([a.close(), b.close()]);
  });

  it('threads that open a new file at once migrate it once and append gaplessly', async () => {
    const path = newFile();
    const workers = 4;
    // Many small rounds, so that the threads' transactions interleave on the write lock.
    const rounds = 50;
    const perRound = 5;
    const module = new URL('../../src/store/sqlite-store.js', import.meta.url).href;
    const threads = Array.from(
      { length: workers },
      (_, w) =>
        new Worker(WORKER, {
          eval: true,
          workerData: { module, path, project: project.hash, worker: w, rounds, perRound },
        }),
    );
    const results = threads.map(
      (thread) =>
        new Promise<number[]>((resolve, reject) => {
          thread.on('message', (message: unknown) => {
            if (Array.isArray(message)) resolve(message as number[]);
          });
          thread.once('error', reject);
          thread.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
        }),
    );
    await Promise.all(
      threads.map((thread) => new Promise((resolve) => thread.once('message', resolve))),
    );
    const store = await openWithProject(path);
    for (const thread of threads) thread.postMessage('go');
    const perWorker = await Promise.all(results);
    for (const seqs of perWorker) {
      assert.equal(seqs.length, rounds * perRound);
      assert.deepEqual(
        seqs,
        [...seqs].sort((x, y) => x - y),
        'each thread resolves in seq order',
      );
    }
    const total = workers * rounds * perRound;
    assert.deepEqual(
      perWorker.flat().sort((x, y) => x - y),
      oneTo(total),
    );
    const stored = await store.range(project.hash, 'threads', 1, total);
    assert.deepEqual(
      stored.map((m) => m.seq),
      oneTo(total),
    );
    await store.close();
    assertFullyMigrated(path);
  });
});

/**
 * A new file as a version of the store that knew migrations 1 to `version` left it, with `rows`
 * written into it.
 */
function oldFile(version: number, rows: string): string {
  const path = newFile();
  mkdirSync(dirname(path), { recursive: true });
  const old = new Database(path);
  try {
    old.pragma('journal_mode = WAL');
    old.exec(
      `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
        applied_at TEXT NOT NULL) STRICT`,
    );
    for (const migration of sqliteMigrations.filter((m) => m.version <= version)) {
      old.exec(migration.sql);
      old
        .prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)')
        .run(migration.version, migration.name, new Date(0).toISOString());
    }
    old.exec(rows);
  } finally {
    old.close();
  }
  return path;
}

/** Fails unless the file records every migration, each once. */
function assertFullyMigrated(path: string): void {
  const db = new Database(path, { readonly: true });
  try {
    const versions = db
      .prepare<[], { version: number }>('SELECT version FROM schema_migrations ORDER BY version')
      .all()
      .map((row) => row.version);
    assert.deepEqual(
      versions,
      sqliteMigrations.map((m) => m.version),
    );
  } finally {
    db.close();
  }
}

// Runs in each worker thread: opens the file, says 'ready', and on 'go' appends in rounds of
// concurrent calls, then posts the seqs it got in the order its promises resolved.
const WORKER = `
const { parentPort, workerData: d } = require('node:worker_threads');
(async () => {
  const { SqliteStore } = await import(d.module);
  const store = SqliteStore.open(d.path);
  parentPort.postMessage('ready');
  await new Promise((resolve) => parentPort.once('message', resolve));
  const seqs = [];
  for (let round = 0; round < d.rounds; round++) {
    await Promise.all(
      Array.from({ length: d.perRound }, (_, i) =>
        store
          .append({ project: d.project, room: 'threads', payload: d.worker + ':' + i, from: 'w' })
          .then((m) => seqs.push(m.seq)),
      ),
    );
  }
  await store.close();
  parentPort.postMessage(seqs);
})();
`;

describe('SqliteCheckpointer', () => {
  it('keeps the WAL bounded while commits never stop', async () => {
    const path = newFile();
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
    const faults: unknown[] = [];
    const checkpointer = new SqliteCheckpointer(db, path, {
      delayMs: 5,
      maxWalFrames: 200,
      onError: (error) => faults.push(error),
    });
    const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
    const body = Buffer.alloc(3000, 1);
    let written = 0;
    try {
      // 20,000 pages of rows (80 MiB), a commit every event-loop turn: never a pause long enough for a
      // checkpoint running beside the writer to finish before the next commit.
      const deadline = Date.now() + 20_000;
      while (written < 20_000 && Date.now() < deadline) {
        db.transaction(() => {
          for (let i = 0; i < 4; i++) insert.run(body);
        })();
        written += 4;
        checkpointer.committed();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const walBytes = statSync(`${path}-wal`).size;
      assert.equal(written, 20_000);
      // Without the writer finishing checkpoints, the WAL takes every page: 20,000 frames of 4 KiB,
      // over 80 MiB. The bound is generous below that (a CI run on a slow disk saw 53 MB): it
      // catches checkpoints that never finish, not their speed.
      assert.ok(walBytes < 64 * 1024 * 1024, `WAL grew to ${walBytes} bytes`);
      assert.deepEqual(faults, []);
    } finally {
      await checkpointer.close();
      db.close();
    }
  });
});
