import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { noSettings, type Project, type RoomMessage } from '../../src/domain.js';
import type { SqliteStoreOptions } from '../../src/store/sqlite-store.js';
import { SqliteWorkerStore } from '../../src/store/sqlite-worker-store.js';
import { lockContract } from './sqlite-lock.contract.js';
import { storeContract, stored } from './store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'socket-base-sqlite-worker-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
const newFile = (): string => join(dir, `nested-${++files}`, 'store.db');

storeContract('SqliteWorkerStore on :memory:', (options) =>
  SqliteWorkerStore.open(':memory:', options),
);
storeContract('SqliteWorkerStore on a file', (options) =>
  SqliteWorkerStore.open(newFile(), options),
);
lockContract(
  'SqliteWorkerStore',
  (path, options) => SqliteWorkerStore.open(path, options),
  newFile,
);

const project: Project = {
  hash: 'p1',
  name: 'worker',
  jwtSecret: 'secret',
  createdAt: new Date(0).toISOString(),
  settings: noSettings(),
};

async function openWithProject(
  path: string,
  options: SqliteStoreOptions = {},
): Promise<SqliteWorkerStore> {
  const store = await SqliteWorkerStore.open(path, options);
  if (!(await store.getProject(project.hash))) await store.createProject(project);
  return store;
}

function appendMany(store: SqliteWorkerStore, room: string, count: number): Promise<RoomMessage[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) =>
      stored(await store.append({ project: project.hash, room, payload: `m${i}`, from: 'bob' })),
    ),
  );
}

const oneTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('SqliteWorkerStore', () => {
  it('commits the appends of one turn together and reports each batch, with its seconds, on the event loop', async () => {
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

  it('groups a stream of appends into batches larger than one, resolving in seq order', async () => {
    const sizes: number[] = [];
    const store = await openWithProject(':memory:', { onBatch: (size) => sizes.push(size) });
    const resolved: number[] = [];
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        store
          .append({ project: project.hash, room: 'load', payload: `${i}`, from: 'bob' })
          .then((m) => resolved.push(m.seq)),
      ),
    );
    await store.close();
    assert.deepEqual(resolved, oneTo(2000));
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      2000,
    );
    assert.ok(Math.max(...sizes) > 1, `batch sizes ${sizes.join(',')}`);
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

  it('answers a lone UTF-16 surrogate as U+FFFD, the same in append and history', async () => {
    const store = await openWithProject(':memory:');
    const sent = stored(
      await store.append({ project: project.hash, room: 'u', payload: 'a\uD800b😀', from: 'b' }),
    );
    assert.equal(sent.payload, 'a\uFFFDb😀');
    assert.deepEqual(await store.history(project.hash, 'u', { limit: 1 }), [sent]);
    await store.close();
  });

  it('keeps data across close and reopen, and continues the seq', async () => {
    const path = newFile();
    const first = await openWithProject(path);
    const sent = await appendMany(first, 'durable', 3);
    await first.close();
    const second = await SqliteWorkerStore.open(path);
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

  it('two stores on one file appending into one room at once keep seq gapless, each in seq order', async () => {
    const path = newFile();
    const a = await openWithProject(path);
    const b = await SqliteWorkerStore.open(path);
    const sent = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        (i % 2 ? a : b)
          .append({ project: project.hash, room: 'shared', payload: `${i}`, from: 'x' })
          .then(stored),
      ),
    );
    assert.deepEqual(
      sent.map((m) => m.seq).sort((x, y) => x - y),
      oneTo(400),
    );
    for (const parity of [0, 1]) {
      const own = sent.filter((_, i) => i % 2 === parity).map((m) => m.seq);
      assert.deepEqual(
        own,
        [...own].sort((x, y) => x - y),
      );
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('open rejects with the reason when the file cannot be opened, and leaves no thread behind', async () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path, { recursive: true });
    await assert.rejects(SqliteWorkerStore.open(path), { code: 'SQLITE_CANTOPEN' });
  });

  it('every call after close rejects with Store is closed', async () => {
    const store = await openWithProject(':memory:');
    await store.close();
    await assert.rejects(store.getProject(project.hash), /Store is closed/);
    await assert.rejects(store.lastSeq(project.hash, 'r'), /Store is closed/);
    await store.close();
  });
});
