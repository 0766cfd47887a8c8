/**
 * What a SQLite store does while another connection holds the file's write lock (another process
 * on the same file): it waits off the event loop, keeps seqs in call order, and gives up at its
 * deadline. Run on SqliteStore and SqliteWorkerStore.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { noSettings, type Project, type RoomMessage } from '../../src/domain.js';
import type { SqliteStoreOptions } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { stored } from './store.contract.js';

/** Opens a store on `path` (a new file, or one a test made before). */
export type OpenSqliteStore = (path: string, options: SqliteStoreOptions) => Promise<Store>;

const project: Project = {
  hash: 'p1',
  name: 'sqlite',
  jwtSecret: 'secret',
  createdAt: new Date(0).toISOString(),
  settings: noSettings(),
};

export function lockContract(name: string, open: OpenSqliteStore, newFile: () => string): void {
  describe(`${name} beside another connection holding the write lock`, () => {
    /** How long the other connection holds the lock where the store is meant to outwait it. */
    const HOLD_MS = 1000;
    /** The store's deadline where the lock is meant to outlast it. */
    const SHORT_DEADLINE_MS = 300;
    /**
     * The longest the event loop may be held up: far above a commit's few milliseconds, far below
     * the seconds of a synchronous wait for the lock.
     */
    const STALL_BOUND_MS = 200;

    const rawMessage = (room: string): string =>
      `INSERT INTO messages (project, room, seq, payload, sender, ts)
     VALUES ('${project.hash}', '${room}', 1, 'raw', 'raw', 1)`;

    /**
     * Opens a store on a new file, has a second connection take the file's write lock, runs `test`,
     * then frees the lock and closes the store.
     */
    async function whileLocked(
      lockOptions: LockOptions,
      storeOptions: SqliteStoreOptions,
      test: (store: Store, lock: WriteLock, path: string) => Promise<void>,
    ): Promise<void> {
      const path = newFile();
      const store = await open(path, storeOptions);
      await store.createProject(project);
      const lock = takeWriteLock(path, lockOptions);
      try {
        await test(store, lock, path);
      } finally {
        lock.release();
        await store.close();
      }
    }

    /** Runs `work`, and fails if the event loop was held up for STALL_BOUND_MS meanwhile. */
    async function withoutStalls<T>(work: () => Promise<T>): Promise<T> {
      const { result, longestStallMs } = await measuringStalls(work);
      assert.ok(longestStallMs < STALL_BOUND_MS, `event loop held up ${longestStallMs} ms`);
      return result;
    }

    async function appendTo(store: Store, room: string, payload: string): Promise<RoomMessage> {
      return stored(await store.append({ project: project.hash, room, payload, from: 'bob' }));
    }

    async function payloadsOf(store: Store, room: string): Promise<string[]> {
      return ((await store.history(project.hash, room, { limit: 100 })) ?? []).map(
        (m) => m.payload,
      );
    }

    /** What each promise came to: its value, or the code of its error. */
    const outcomes = (results: PromiseSettledResult<unknown>[]): unknown[] =>
      results.map((r) => (r.status === 'fulfilled' ? r.value : errorCode(r.reason)));

    it('appends wait for the lock off the event loop, then take the next seqs in call order', async () => {
      const lock = { sql: rawMessage('locked'), releaseAfterMs: HOLD_MS };
      await whileLocked(lock, {}, async (store, held) => {
        const resolved: { seq: number; afterRelease: boolean }[] = [];
        const wave = (payloads: string[]) =>
          Promise.allSettled(
            payloads.map(async (payload) => {
              const { seq } = await appendTo(store, 'locked', payload);
              resolved.push({ seq, afterRelease: held.released });
              return seq;
            }),
          );
        const results = await withoutStalls(async () => {
          const first = wave(['a', 'b', 'c']);
          // A second wave while the first batch waits: it must queue behind it.
          await new Promise((resolve) => setTimeout(resolve, HOLD_MS / 4));
          const second = wave(['d', 'e', 'f']);
          return [...(await first), ...(await second)];
        });
        assert.deepEqual(outcomes(results), [2, 3, 4, 5, 6, 7]);
        assert.deepEqual(
          resolved,
          [2, 3, 4, 5, 6, 7].map((seq) => ({ seq, afterRelease: true })),
        );
        assert.deepEqual(await payloadsOf(store, 'locked'), ['raw', 'a', 'b', 'c', 'd', 'e', 'f']);
      });
    });

    it('createProject, setProjectSecret and deleteProject wait for the lock off the event loop', async () => {
      const created: Project = { ...project, hash: 'created', name: 'created' };
      // Committed by the other connection when it lets go: the store must see it then.
      const doomed = `INSERT INTO projects (hash, name, jwt_secret, created_at)
      VALUES ('doomed', 'doomed', 's', '${project.createdAt}')`;
      await whileLocked({ sql: doomed, releaseAfterMs: HOLD_MS }, {}, async (store, held) => {
        const afterRelease = async (work: Promise<unknown>): Promise<boolean> => {
          await work;
          return held.released;
        };
        const results = await withoutStalls(() =>
          Promise.allSettled([
            afterRelease(store.createProject(created)),
            afterRelease(store.setProjectSecret(project.hash, 'rotated')),
            afterRelease(store.deleteProject('doomed')),
          ]),
        );
        assert.deepEqual(outcomes(results), [true, true, true], 'each resolved after the release');
        assert.deepEqual(await store.getProject(created.hash), created);
        assert.equal((await store.getProject(project.hash))?.jwtSecret, 'rotated');
        assert.equal(await store.getProject('doomed'), undefined);
      });
    });

    it('appends reject once the lock outlasts the deadline, and a later append takes the next seq', async () => {
      const options = { busyDeadlineMs: SHORT_DEADLINE_MS };
      await whileLocked({ sql: rawMessage('late') }, options, async (store, held) => {
        const started = performance.now();
        const results = await withoutStalls(() =>
          Promise.allSettled(['a', 'b', 'c'].map((payload) => appendTo(store, 'late', payload))),
        );
        const waitedMs = performance.now() - started;
        assert.ok(
          waitedMs >= SHORT_DEADLINE_MS && waitedMs < SHORT_DEADLINE_MS + 1000,
          `rejected after ${waitedMs} ms`,
        );
        assert.deepEqual(outcomes(results), ['SQLITE_BUSY', 'SQLITE_BUSY', 'SQLITE_BUSY']);
        assert.equal(held.released, false);
        held.release();
        assert.equal((await appendTo(store, 'late', 'after')).seq, 2);
        assert.deepEqual(await payloadsOf(store, 'late'), ['raw', 'after']);
      });
    });

    it('close ends by the deadline while the lock is held, and rejects what it could not store', async () => {
      const options = { busyDeadlineMs: SHORT_DEADLINE_MS };
      let file = '';
      await whileLocked({}, options, async (store, _held, path) => {
        file = path;
        const pending = Promise.allSettled(
          ['a', 'b'].map((payload) => appendTo(store, 'closing', payload)),
        );
        const started = performance.now();
        await withoutStalls(() => store.close());
        const closedMs = performance.now() - started;
        assert.ok(closedMs < SHORT_DEADLINE_MS + 1000, `close took ${closedMs} ms`);
        assert.deepEqual(outcomes(await pending), ['SQLITE_BUSY', 'SQLITE_BUSY']);
      });
      const reopened = await open(file, {});
      try {
        assert.deepEqual(await payloadsOf(reopened, 'closing'), []);
      } finally {
        await reopened.close();
      }
    });
  });
}

interface LockOptions {
  /** Run under the lock, committed when it is let go. */
  sql?: string;
  /** Let go by itself this long after taking it. */
  releaseAfterMs?: number;
}

interface WriteLock {
  /** Whether `release` was called. */
  readonly released: boolean;
  /** Commits the holder's transaction, which frees the lock, and disconnects; idempotent. */
  release(): void;
}

/** A second connection to `path` that takes the file's write lock. */
function takeWriteLock(path: string, { sql, releaseAfterMs }: LockOptions): WriteLock {
  const db = new Database(path);
  db.exec('BEGIN IMMEDIATE');
  if (sql !== undefined) db.exec(sql);
  let released = false;
  const lock: WriteLock = {
    get released() {
      return released;
    },
    release() {
      clearTimeout(timer);
      if (released) return;
      released = true;
      db.exec('COMMIT');
      db.close();
    },
  };
  const timer = releaseAfterMs === undefined ? undefined : setTimeout(lock.release, releaseAfterMs);
  return lock;
}

/**
 * Runs `work` and measures the longest gap between the ticks of a 10 ms interval meanwhile: how
 * long the event loop was held up at most. (monitorEventLoopDelay misses a stall that begins
 * before its first sample.)
 */
async function measuringStalls<T>(
  work: () => Promise<T>,
): Promise<{ result: T; longestStallMs: number }> {
  let lastTick = performance.now();
  let longestStallMs = 0;
  const tick = (): void => {
    const now = performance.now();
    longestStallMs = Math.max(longestStallMs, now - lastTick);
    lastTick = now;
  };
  const probe = setInterval(tick, 10);
  try {
    const result = await work();
    tick();
    return { result, longestStallMs };
  } finally {
    clearInterval(probe);
  }
}

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}
