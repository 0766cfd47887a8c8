/**
 * PostgresStore against the real server (TEST_POSTGRES_URL, by default the one on 127.0.0.1:5432).
 * Each run of this file works in schemas of its own, `sb_test_<random>`, chosen with the URL's
 * `options=-c search_path=…` and dropped at the end, so runs never see each other's rows.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { isDuplicate, noSettings, type Project, type RoomMessage } from '../../src/domain.js';
import { postgresMigrations } from '../../src/store/migrations/postgres.js';
import {
  MAX_BATCH,
  PostgresStore,
  type PostgresStoreOptions,
  PURGE_LOCK,
} from '../../src/store/postgres-store.js';
import type { Appended } from '../../src/store/store.js';
import { eventually } from '../helpers/eventually.js';
import { POSTGRES_URL, type TestSchemas, testSchemas } from '../helpers/postgres.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { storeContract, stored } from './store.contract.js';

/** How long an append may take to reject while the database is away, timeouts included. */
const FAULT_DEADLINE_MS = 4000;

let schemas: TestSchemas;

before(async () => {
  schemas = await testSchemas();
});

after(async () => {
  await schemas.dropAll();
});

const newSchema = (): Promise<string> => schemas.create();
const urlFor = (schema: string, port?: number): string => schemas.urlFor(schema, port);

let contractSchema: string | undefined;
storeContract('PostgresStore', async (options) => {
  contractSchema ??= await newSchema();
  return PostgresStore.open(urlFor(contractSchema), options);
});

const project: Project = {
  hash: 'p1',
  name: 'postgres',
  jwtSecret: 'secret',
  createdAt: new Date(0).toISOString(),
  settings: noSettings(),
};

async function openWithProject(
  schema: string,
  options: PostgresStoreOptions = {},
  port?: number,
): Promise<PostgresStore> {
  const store = await PostgresStore.open(urlFor(schema, port), options);
  if (!(await store.getProject(project.hash))) await store.createProject(project);
  return store;
}

async function append(store: PostgresStore, room: string, payload = 'x'): Promise<RoomMessage> {
  return stored(await store.append({ project: project.hash, room, payload, from: 'bob' }));
}

function appendKeyed(
  store: PostgresStore,
  room: string,
  key: string,
  payload = 'x',
): Promise<Appended> {
  return store.append({ project: project.hash, room, payload, from: 'bob', idempotencyKey: key });
}

function appendMany(store: PostgresStore, room: string, count: number): Promise<RoomMessage[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => append(store, room, `m${i}`)));
}

const oneTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
const sortedSeqs = (messages: RoomMessage[]): number[] =>
  messages.map((m) => m.seq).sort((a, b) => a - b);

/** Settles `promise`, and says how long that took. */
async function timed<T>(
  promise: Promise<T>,
): Promise<{ result: PromiseSettledResult<T>; ms: number }> {
  const started = performance.now();
  const [result] = (await Promise.allSettled([promise])) as [PromiseSettledResult<T>];
  return { result, ms: performance.now() - started };
}

describe('PostgresStore', () => {
  const open: PostgresStore[] = [];
  const proxies: TcpProxy[] = [];

  afterEach(async () => {
    // Restored first, so that closing stores can reach the database.
    for (const proxy of proxies) proxy.restore();
    await Promise.all(open.splice(0).map((store) => store.close()));
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  });

  async function track(store: Promise<PostgresStore>): Promise<PostgresStore> {
    const opened = await store;
    open.push(opened);
    return opened;
  }

  async function proxied(options: PostgresStoreOptions = {}): Promise<{
    store: PostgresStore;
    proxy: TcpProxy;
    schema: string;
  }> {
    const proxy = await startTcpProxy(Number(new URL(POSTGRES_URL).port || 5432));
    proxies.push(proxy);
    const schema = await newSchema();
    const store = await track(
      openWithProject(
        schema,
        { connectionTimeoutMs: 1000, queryTimeoutMs: 1000, ...options },
        proxy.port,
      ),
    );
    return { store, proxy, schema };
  }

  describe('group commit', () => {
    it('commits 1000 concurrent appends in batches larger than one', async () => {
      const sizes: number[] = [];
      const store = await track(
        openWithProject(await newSchema(), { onBatch: (size) => sizes.push(size) }),
      );
      const sent = await appendMany(store, 'load', 1000);
      assert.deepEqual(
        sent.map((m) => m.seq),
        oneTo(1000),
      );
      assert.equal(
        sizes.reduce((a, b) => a + b, 0),
        1000,
      );
      assert.ok(Math.max(...sizes) > 1, `batch sizes ${sizes.join(',')}`);
    });

    it(`caps a batch at ${MAX_BATCH} messages and commits the rest in the next ones`, async () => {
      const sizes: number[] = [];
      const store = await track(
        openWithProject(await newSchema(), { onBatch: (size) => sizes.push(size) }),
      );
      const sent = await appendMany(store, 'flood', 2 * MAX_BATCH + 100);
      assert.ok(
        sizes.every((size) => size <= MAX_BATCH),
        `batch sizes ${sizes.join(',')}`,
      );
      assert.deepEqual(
        sent.map((m) => m.seq),
        oneTo(2 * MAX_BATCH + 100),
      );
    });

    it('sends a lone append at once, and reports its batch with a duration', async () => {
      const batches: [number, number][] = [];
      const store = await track(
        openWithProject(await newSchema(), {
          onBatch: (size, seconds) => batches.push([size, seconds]),
        }),
      );
      await append(store, 'warm-up');
      batches.length = 0;
      const { ms } = await timed(append(store, 'alone'));
      assert.ok(ms < 500, `took ${ms} ms`);
      assert.equal(batches.length, 1);
      const [size, seconds] = batches[0] ?? [];
      assert.equal(size, 1);
      assert.ok(typeof seconds === 'number' && seconds >= 0 && seconds < 5);
    });

    it('batches across many rooms number each room on its own, in call order', async () => {
      const store = await track(openWithProject(await newSchema()));
      const rooms = Array.from({ length: 50 }, (_, i) => `room-${i}`);
      const sent = await Promise.all(
        Array.from({ length: 2000 }, (_, i) =>
          append(store, rooms[i % rooms.length] ?? '', `${i}`),
        ),
      );
      for (const room of rooms) {
        const own = sent.filter((m) => m.room === room);
        assert.deepEqual(
          own.map((m) => m.seq),
          oneTo(40),
          room,
        );
        assert.deepEqual(await store.range(project.hash, room, 1, 40), own);
      }
    });

    it('still stores messages when the onBatch callback throws', async () => {
      const store = await track(
        openWithProject(await newSchema(), {
          onBatch: () => {
            throw new Error('metrics broke');
          },
        }),
      );
      const sent = await appendMany(store, 'metrics', 2);
      assert.deepEqual(await store.history(project.hash, 'metrics', { limit: 10 }), sent);
    });
  });

  describe('several instances', () => {
    it('two stores (two pools) appending into one room at once keep seq gapless', async () => {
      const schema = await newSchema();
      const a = await track(openWithProject(schema));
      const b = await track(openWithProject(schema));
      const got: [RoomMessage[], RoomMessage[]] = [[], []];
      // Many small rounds as well as large batches, so that the two pools' statements interleave.
      for (let round = 0; round < 20; round++) {
        const [fromA, fromB] = await Promise.all([
          appendMany(a, 'shared', 1 + (round % 7) * 30),
          appendMany(b, 'shared', 1 + ((round + 3) % 7) * 30),
        ]);
        got[0].push(...fromA);
        got[1].push(...fromB);
      }
      const total = got[0].length + got[1].length;
      assert.deepEqual(sortedSeqs([...got[0], ...got[1]]), oneTo(total));
      for (const own of got) {
        assert.deepEqual(
          own.map((m) => m.seq),
          sortedSeqs(own),
          'each store resolves in seq order',
        );
      }
      const stored = await a.range(project.hash, 'shared', 1, total);
      assert.deepEqual(
        stored.map((m) => m.seq),
        oneTo(total),
      );
      assert.equal(await b.lastSeq(project.hash, 'shared'), total);
    });

    it('concurrent batches that take the same rooms in opposite orders neither deadlock nor skip', async () => {
      const schema = await newSchema();
      const stores = [
        await track(openWithProject(schema)),
        await track(openWithProject(schema)),
        await track(openWithProject(schema)),
      ];
      const rooms = Array.from({ length: 20 }, (_, i) => `r${String(i).padStart(2, '0')}`);
      const rounds = 10;
      for (let round = 0; round < rounds; round++) {
        await Promise.all(
          stores.map((store, s) => {
            const order = s % 2 ? [...rooms].reverse() : rooms;
            return Promise.all(order.map((room) => append(store, room)));
          }),
        );
      }
      for (const room of rooms) {
        const stored = await stores[0]?.range(project.hash, room, 1, 1000);
        assert.deepEqual(
          stored?.map((m) => m.seq),
          oneTo(rounds * stores.length),
          room,
        );
      }
    });

    it('instances opening one empty schema at once apply each migration once', async () => {
      const schema = await newSchema();
      const stores = await Promise.all(
        Array.from({ length: 6 }, () => track(PostgresStore.open(urlFor(schema)))),
      );
      await stores[0]?.createProject(project);
      const sent = await Promise.all(stores.map((store) => append(store, 'after-migrations')));
      assert.deepEqual(sortedSeqs(sent), oneTo(stores.length));
      // Opening again finds everything applied.
      await track(PostgresStore.open(urlFor(schema)));
      const { rows } = await schemas.query<{ version: number }>(
        `SELECT version FROM ${schema}.schema_migrations ORDER BY version`,
      );
      assert.deepEqual(
        rows.map((row) => row.version),
        postgresMigrations.map((m) => m.version),
      );
    });

    it('refuses to open a schema that does not exist, without leaking its pool', async () => {
      await assert.rejects(PostgresStore.open(urlFor('sb_test_missing_schema')));
    });
  });

  describe('payloads', () => {
    it('stores payloads as their exact UTF-8 bytes: NUL and emoji round-trip', async () => {
      const schema = await newSchema();
      const store = await track(openWithProject(schema));
      const payload = '\u0000a\u0000👋🏽 👨‍👩‍👧‍👦\u0000';
      const sent = await append(store, 'bytes', payload);
      assert.equal(sent.payload, payload);
      assert.deepEqual(await store.history(project.hash, 'bytes', { limit: 1 }), [sent]);
      const { rows } = await schemas.query<{ payload: Buffer }>(
        `SELECT payload FROM ${schema}.messages WHERE id = $1`,
        [sent.id],
      );
      assert.deepEqual(rows[0]?.payload, Buffer.from(payload, 'utf8'));
    });

    it('stores a lone UTF-16 surrogate as U+FFFD, the same in append and history', async () => {
      const store = await track(openWithProject(await newSchema()));
      const sent = await append(store, 'broken', 'a\uD800b\uDFFF😀');
      assert.equal(sent.payload, 'a\uFFFDb\uFFFD😀');
      assert.deepEqual(await store.history(project.hash, 'broken', { limit: 1 }), [sent]);
    });

    it('refuses a room or sender containing NUL alone; reads of such a room answer empty', async () => {
      const store = await track(openWithProject(await newSchema()));
      const results = await Promise.allSettled([
        append(store, 'fine', 'one'),
        append(store, 'bad\u0000room'),
        store.append({ project: project.hash, room: 'fine', payload: 'p', from: 'a\u0000b' }),
        append(store, 'fine', 'two'),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
      );
      assert.equal(await store.lastSeq(project.hash, 'fine'), 2);
      assert.deepEqual(await store.history(project.hash, 'bad\u0000room', { limit: 5 }), []);
      assert.deepEqual(await store.range(project.hash, 'bad\u0000room', 1, 5), []);
      assert.equal(await store.lastSeq(project.hash, 'bad\u0000room'), 0);
    });

    it('splits large payloads over several batches', async () => {
      const sizes: number[] = [];
      const store = await track(
        openWithProject(await newSchema(), { onBatch: (size) => sizes.push(size) }),
      );
      const big = 'ü€😀x'.repeat(6 * 1024);
      const sent = await Promise.all(Array.from({ length: 200 }, () => append(store, 'big', big)));
      assert.deepEqual(
        sent.map((m) => m.seq),
        oneTo(200),
      );
      assert.ok(sizes.length > 1, `batch sizes ${sizes.join(',')}`);
      const stored = await store.range(project.hash, 'big', 200, 200);
      assert.equal(stored[0]?.payload, big);
    });
  });

  describe('idempotency keys and the purge, several instances', () => {
    const keepOne = { ...noSettings(), retention: { maxAgeSeconds: null, maxMessagesPerRoom: 1 } };
    const purgeOptions = {
      defaults: { maxAgeSeconds: null, maxMessagesPerRoom: null },
      idempotencyWindowMs: 86_400_000,
      limit: 10_000,
    };

    /** Has the project keep one message per room, and fills `rooms` rooms with 10 each. */
    async function overfill(store: PostgresStore, rooms: number): Promise<void> {
      await store.updateProject(project.hash, { settings: keepOne });
      await Promise.all(
        Array.from({ length: rooms }, (_, i) => appendMany(store, `room-${i}`, 10)),
      );
    }

    it('20 appends with one key at once from two stores (two pools) store exactly one, and all name its id and seq', async () => {
      const schema = await newSchema();
      const a = await track(openWithProject(schema));
      const b = await track(openWithProject(schema));
      const rounds = 5;
      for (let round = 0; round < rounds; round++) {
        // Each store sends its ten in one batch: two transactions claiming the key at once.
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            appendKeyed(i % 2 ? a : b, 'contended', `k-${round}`, `copy ${i}`),
          ),
        );
        const kept = answers.filter((answer) => !isDuplicate(answer));
        assert.equal(kept.length, 1, `round ${round}: one stored`);
        const first = stored(kept[0] as Appended);
        assert.equal(first.seq, round + 1, 'the duplicates took no seq');
        for (const answer of answers) {
          assert.deepEqual(
            { room: answer.room, id: answer.id, seq: answer.seq },
            { room: 'contended', id: first.id, seq: first.seq },
          );
        }
        assert.equal(answers.filter(isDuplicate).length, 19);
      }
      const rows = await a.range(project.hash, 'contended', 1, 100);
      assert.deepEqual(
        rows.map((m) => m.seq),
        oneTo(rounds),
      );
      assert.equal(await b.lastSeq(project.hash, 'contended'), rounds);
    });

    it('two stores purging one schema at once: one purge runs, the other resolves 0', async () => {
      const { store: first, proxy, schema } = await proxied();
      const second = await track(openWithProject(schema));
      await overfill(second, 200);
      // The store behind the proxy sends the statement that takes the purge lock; PostgreSQL runs
      // it, but its answer is held back. So that store's purge is under way, holding the lock,
      // while the other store purges.
      proxy.holdRepliesAfter(Buffer.from('pg_try_advisory_xact_lock'));
      const running = first.purgeExpired({ ...purgeOptions, now: Date.now() });
      await eventually('the first purge holds the lock', async () => {
        const { rows } = await schemas.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted",
          [PURGE_LOCK],
        );
        return rows[0]?.n === 1;
      });
      assert.equal(await second.purgeExpired({ ...purgeOptions, now: Date.now() }), 0);
      assert.equal((await second.range(project.hash, 'room-7', 1, 10)).length, 10);
      proxy.restore();
      assert.equal(await running, 1800);
      assert.deepEqual(
        (await second.history(project.hash, 'room-7', { limit: 10 }))?.map((m) => m.seq),
        [10],
      );
    });

    it('while another session holds the purge lock, a purge resolves 0 and removes nothing', async () => {
      const schema = await newSchema();
      const a = await track(openWithProject(schema));
      const b = await track(openWithProject(schema));
      await overfill(a, 3);
      const holder = new pg.Client({ connectionString: POSTGRES_URL });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [PURGE_LOCK, schema]);
        for (const store of [a, b]) {
          assert.equal(await store.purgeExpired({ ...purgeOptions, now: Date.now() }), 0);
        }
        assert.equal((await a.range(project.hash, 'room-0', 1, 10)).length, 10);
        await holder.query('COMMIT');
        assert.equal(await b.purgeExpired({ ...purgeOptions, now: Date.now() }), 27);
      } finally {
        await holder.end();
      }
    });

    it('migrates a schema that already has rows: no settings, seqs go on, keys work, rooms know the time of their last message', async () => {
      const schema = await newSchema();
      const [first] = postgresMigrations;
      assert.ok(first);
      const old = new pg.Client({ connectionString: urlFor(schema) });
      await old.connect();
      try {
        // What migrate() made of an empty schema before migration 2 existed.
        await old.query(
          'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
        );
        await old.query(first.sql);
        await old.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          first.version,
          first.name,
        ]);
        await old.query('INSERT INTO projects VALUES ($1, $2, $3, $4)', [
          project.hash,
          project.name,
          project.jwtSecret,
          project.createdAt,
        ]);
        await old.query("INSERT INTO room_seq VALUES ($1, 'old', 2), ($1, 'gone', 5)", [
          project.hash,
        ]);
        await old.query(
          "INSERT INTO messages (project, room, seq, payload, sender, ts) VALUES ($1, 'old', 1, 'a', 's', 1), ($1, 'old', 2, 'b', 's', 2)",
          [project.hash],
        );
      } finally {
        await old.end();
      }
      const store = await track(PostgresStore.open(urlFor(schema)));
      assert.deepEqual(await store.getProject(project.hash), project);
      assert.deepEqual(
        (await store.history(project.hash, 'old', { limit: 10 }))?.map((m) => m.payload),
        ['a', 'b'],
      );
      assert.deepEqual(await store.rooms(project.hash, undefined, 10), [
        { room: 'gone', lastSeq: 5, lastTs: null },
        { room: 'old', lastSeq: 2, lastTs: 2 },
      ]);
      const next = stored(await appendKeyed(store, 'old', 'k-after-migration'));
      assert.equal(next.seq, 3);
      assert.deepEqual(await store.rooms(project.hash, 'gone', 10), [
        { room: 'old', lastSeq: 3, lastTs: next.ts },
      ]);
      assert.equal(isDuplicate(await appendKeyed(store, 'old', 'k-after-migration')), true);
    });
  });

  describe('faults', () => {
    it('a keyed append whose COMMIT reached the server but whose answer was lost rejects; its retry answers the stored message, stored once', async () => {
      const { store, proxy, schema } = await proxied();
      await append(store, 'warm-up');
      const count = async (): Promise<number> => {
        const { rows } = await schemas.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${schema}.messages WHERE room = 'lost'`,
        );
        return rows[0]?.n ?? 0;
      };
      // How the case is made real: the keyed batch is a transaction ending in COMMIT, sent by pg
      // as one simple-query message ('Q', length, "COMMIT\0"). The proxy forwards that message
      // to PostgreSQL, then holds back everything PostgreSQL answers on that connection; once the
      // test's own connection sees the row (the COMMIT was applied), the cut drops the store's
      // connection before it had its answer.
      proxy.holdRepliesAfter(Buffer.from('COMMIT\u0000'));
      const outcome = appendKeyed(store, 'lost', 'k-lost', 'once').then(
        () => 'resolved',
        () => 'rejected',
      );
      await eventually('the COMMIT was applied', async () => (await count()) === 1);
      proxy.cut();
      assert.equal(await outcome, 'rejected', 'the append could not know it was stored');
      proxy.restore();
      const { rows } = await schemas.query<{ id: string }>(
        `SELECT id::text AS id FROM ${schema}.messages WHERE room = 'lost'`,
      );
      assert.deepEqual(await appendKeyed(store, 'lost', 'k-lost', 'once'), {
        duplicate: true,
        room: 'lost',
        id: rows[0]?.id,
        seq: 1,
      });
      assert.equal(await count(), 1, 'the retry stored nothing');
      assert.equal((await append(store, 'lost')).seq, 2);
    });

    it('while the database is cut, appends and ping reject quickly; afterwards it recovers by itself', async () => {
      const { store, proxy } = await proxied();
      assert.deepEqual(
        (await appendMany(store, 'cut', 3)).map((m) => m.seq),
        [1, 2, 3],
      );
      proxy.cut();
      for (let attempt = 0; attempt < 3; attempt++) {
        const { result, ms } = await timed(appendMany(store, 'cut', 5));
        assert.equal(result.status, 'rejected');
        assert.ok(ms < FAULT_DEADLINE_MS, `rejected after ${ms} ms`);
      }
      await assert.rejects(store.ping());
      await assert.rejects(store.history(project.hash, 'cut', { limit: 10 }));
      proxy.restore();
      await store.ping();
      const next = await appendMany(store, 'cut', 3);
      assert.deepEqual(
        next.map((m) => m.seq),
        [4, 5, 6],
        'rejected appends took no seq',
      );
      assert.equal((await store.history(project.hash, 'cut', { limit: 10 }))?.length, 6);
    });

    it('while the database stops answering, appends reject within the timeouts; then it recovers', async () => {
      const { store, proxy } = await proxied();
      await append(store, 'frozen');
      proxy.freeze();
      // The first batch waits on a connection that no longer answers, the one queued behind it
      // on a connection that never opens: both are bounded.
      const first = timed(append(store, 'frozen'));
      await new Promise((resolve) => setTimeout(resolve, 10));
      const second = timed(append(store, 'frozen'));
      for (const { result, ms } of await Promise.all([first, second])) {
        assert.equal(result.status, 'rejected');
        assert.ok(ms < FAULT_DEADLINE_MS, `rejected after ${ms} ms`);
      }
      const ping = await timed(store.ping());
      assert.equal(ping.result.status, 'rejected');
      assert.ok(ping.ms < FAULT_DEADLINE_MS, `ping rejected after ${ping.ms} ms`);
      proxy.restore();
      const next = await append(store, 'frozen');
      assert.equal(next.seq, 2, 'rejected appends took no seq');
    });

    it('a cut while batches are in flight leaves stored seqs gapless and resolved messages stored', async () => {
      const { store, proxy } = await proxied();
      await append(store, 'mid');
      const pending = Promise.allSettled(
        Array.from({ length: 3000 }, (_, i) => append(store, 'mid', `m${i}`)),
      );
      await new Promise((resolve) => setTimeout(resolve, 15));
      proxy.cut();
      const results = await pending;
      proxy.restore();
      const resolved = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const after = await append(store, 'mid', 'after');
      const stored = await store.range(project.hash, 'mid', 1, after.seq);
      // A batch whose connection died after it was sent may have committed though it rejected;
      // either way the stored seqs have no gap and every acknowledged message is there.
      assert.deepEqual(
        stored.map((m) => m.seq),
        oneTo(after.seq),
      );
      const byId = new Map(stored.map((m) => [m.id, m]));
      for (const message of resolved) assert.deepEqual(byId.get(message.id), message);
    });

    it('close while the database is cut rejects pending appends and still resolves', async () => {
      const { store, proxy } = await proxied();
      await append(store, 'closing');
      proxy.cut();
      const pending = append(store, 'closing');
      const { result, ms } = await timed(store.close());
      assert.equal(result.status, 'fulfilled');
      assert.ok(ms < FAULT_DEADLINE_MS, `close took ${ms} ms`);
      await assert.rejects(pending);
      await assert.rejects(append(store, 'closing'));
    });
  });
});
