import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { compareCodePoints, noSettings } from '../../src/domain.js';
import { StoredCounts } from '../../src/http/admin-reads.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';

describe('compareCodePoints', () => {
  const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const names = [
    '',
    'a',
    'A',
    'ab',
    'a b',
    'é',
    '\u00ff',
    '\u0100',
    '\ud7ff',
    '\ue000',
    '\uffff',
    '\ufffd',
    '\u{10000}',
    '\u{1F600}',
    '\u{1F600}a',
    '\u{10FFFF}',
    'x\u{1F600}',
    'x\uffff',
  ];

  it('orders names as their UTF-8 bytes do (surrogate pairs after U+E000–U+FFFF)', () => {
    const expected = [...names].sort(byBytes);
    assert.deepEqual([...names].sort(compareCodePoints), expected);
    assert.ok(compareCodePoints('\uffff', '\u{10000}') < 0);
    assert.ok('\uffff' > '\u{10000}', 'code-unit order differs there');
  });

  it('answers 0 only for equal names, and the opposite sign swapped', () => {
    for (const a of names) {
      for (const b of names) {
        const order = compareCodePoints(a, b);
        assert.equal(order === 0, a === b, `${a} ${b}`);
        assert.equal(Math.sign(order) + Math.sign(compareCodePoints(b, a)), 0);
        assert.equal(Math.sign(order), Math.sign(byBytes(a, b)), `${a} ${b}`);
      }
    }
  });
});

describe('StoredCounts', () => {
  let store: SqliteStore;
  let clock = 0;
  const project = {
    hash: 'p',
    name: 'p',
    jwtSecret: 's',
    createdAt: new Date(0).toISOString(),
    settings: noSettings(),
  };
  const append = (room: string) =>
    store.append({ project: project.hash, room, payload: 'x', from: 'u' });

  beforeEach(async () => {
    clock = 0;
    store = SqliteStore.open(':memory:');
    await store.createProject(project);
    await store.createProject({ ...project, hash: 'q' });
  });
  afterEach(() => store.close());

  it('answers the count it read for the TTL, then reads it again', async () => {
    const counts = new StoredCounts(store, 1000, () => clock);
    assert.equal(await counts.count('p'), 0);
    await append('a');
    clock = 999;
    assert.equal(await counts.count('p'), 0, 'within the TTL');
    clock = 1000;
    assert.equal(await counts.count('p'), 1, 'past it');
  });

  it('keeps one count per project and one for all of them', async () => {
    const counts = new StoredCounts(store, 1000, () => clock);
    await append('a');
    assert.equal(await counts.count('p'), 1);
    assert.equal(await counts.count('q'), 0);
    assert.equal(await counts.count(undefined), 1);
    await store.append({ project: 'q', room: 'b', payload: 'x', from: 'u' });
    await append('a');
    assert.deepEqual(
      [await counts.count('p'), await counts.count('q'), await counts.count(undefined)],
      [1, 0, 1],
    );
    clock = 1000;
    assert.deepEqual(
      [await counts.count('p'), await counts.count('q'), await counts.count(undefined)],
      [2, 1, 3],
    );
  });

  it('does not keep a failed count: the next call within the TTL asks again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'socket-base-counts-'));
    const path = join(dir, 'store.db');
    let current = SqliteStore.open(path);
    try {
      await current.createProject(project);
      await current.append({ project: project.hash, room: 'a', payload: 'x', from: 'u' });
      // Whichever store is open now: the counts follow the database, not one connection.
      const counts = new StoredCounts(
        { storedMessages: (hash) => current.storedMessages(hash) },
        1000,
        () => clock,
      );
      await current.close();
      await assert.rejects(counts.count('p'));
      current = SqliteStore.open(path);
      assert.equal(await counts.count('p'), 1);
    } finally {
      await current.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
