import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Frame, TestClient } from '../helpers/client.js';
import { assertGapless, fullHistory, type StoredMessage, scrapeMetrics } from '../helpers/ops.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl } from '../helpers/ws.js';

const SENDERS = 5;
const PER_SENDER = 250;
const TOTAL = SENDERS * PER_SENDER;
const ROOM = 'burst';

/** What a member received, as history answers it. */
const asStored = (frame: Frame): StoredMessage => ({
  id: frame.id as string,
  seq: frame.seq as number,
  room: frame.room as string,
  payload: frame.payload as string,
  from: frame.from as string,
  ts: frame.ts as number,
});

describe('burst: many senders into one room, on a SQLite file', () => {
  let dir: string;
  let databaseUrl: string;
  let server: TestServer;
  let project: TestProject;
  /** What every member received, in order; history is compared with it. */
  let received: StoredMessage[] = [];
  const auth = async (): Promise<{ hash: string; token: string }> => ({
    hash: project.hash,
    token: await signToken(project.jwtSecret, 'reader'),
  });
  const url = (sub: string): Promise<string> => memberUrl(server, project, sub);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'socket-base-burst-'));
    databaseUrl = `sqlite:${join(dir, 'burst.db')}`;
    server = await startTestServer({ DATABASE_URL: databaseUrl });
    project = await server.createProject('burst');
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${TOTAL} messages from ${SENDERS} senders reach every member exactly once, in seq order 1..N with no gap`, async () => {
    const members = await Promise.all(
      ['m1', 'm2', 'm3'].map(async (sub) => TestClient.connect(await url(sub))),
    );
    const senders = await Promise.all(
      Array.from({ length: SENDERS }, async (_, s) => TestClient.connect(await url(`s${s}`))),
    );
    const everyone = [...members, ...senders];
    for (const client of everyone) await client.join(ROOM);

    for (let i = 0; i < PER_SENDER; i++) {
      for (const [s, sender] of senders.entries()) {
        sender.send({ type: 'message', room: ROOM, payload: `s${s}-${i}` });
      }
    }

    const deliveries = await Promise.all(
      everyone.map((client) => client.collect('message', TOTAL, 15_000)),
    );
    await Promise.all(
      everyone.map(async (client) => {
        client.drain('message');
        await client.expectSilence();
      }),
    );
    const first: Frame[] = deliveries[0] ?? [];
    assertGapless(first, 'deliveries');
    assert.equal(new Set(first.map((frame) => frame.id)).size, TOTAL, 'ids are unique');
    for (const [index, frames] of deliveries.entries()) {
      assert.deepEqual(frames, first, `connection ${index} received what the first one did`);
    }
    for (let s = 0; s < SENDERS; s++) {
      const fromSender = first.filter((frame) => frame.from === `s${s}`);
      assert.deepEqual(
        fromSender.map((frame) => frame.payload),
        Array.from({ length: PER_SENDER }, (_, i) => `s${s}-${i}`),
        `the messages of s${s}, each once, in the order it sent them`,
      );
    }
    received = first.map(asStored);
    for (const client of everyone) client.close();
    await Promise.all(everyone.map((client) => client.closed));
  });

  it('history, paged with after=ID and limit=1000, returns every message in order', async () => {
    assert.equal(received.length, TOTAL);
    const history = await fullHistory(server.url, await auth(), ROOM);
    assert.deepEqual(history, received);
  });

  it('the store commits in batches: socketbase_store_batch_size averages more than one message', async () => {
    const scrape = await scrapeMetrics(server.url);
    const sum = scrape.value('socketbase_store_batch_size_sum') ?? 0;
    const count = scrape.value('socketbase_store_batch_size_count') ?? 0;
    assert.ok(sum >= TOTAL, `batch sizes add up to ${sum}`);
    assert.ok(count > 0 && sum / count > 1, `${sum} messages in ${count} batches`);
  });

  it('after a restart on the same file, history is unchanged and the next message gets seq N+1', async () => {
    await server.close();
    server = await startTestServer({ DATABASE_URL: databaseUrl });
    const history = await fullHistory(server.url, await auth(), ROOM);
    assert.deepEqual(history, received);

    const client = await TestClient.connect(await url('late'));
    await client.join(ROOM);
    client.send({ type: 'message', room: ROOM, payload: 'after restart' });
    const [next] = await client.collect('message', 1);
    assert.equal(next?.seq, TOTAL + 1);
    assert.equal(next?.payload, 'after restart');
    assert.ok(!received.some((message) => message.id === next?.id), 'a new id');
    client.close();
    await client.closed;
    const after = await fullHistory(server.url, await auth(), ROOM);
    assertGapless(after, 'history after the restart');
    assert.deepEqual(after.at(-1), asStored(next as Frame));
  });
});
