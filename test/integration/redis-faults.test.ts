import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { TestClient } from '../helpers/client.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl } from '../helpers/ws.js';

const DEADLINE_MS = 10_000;

async function readyStatus(server: TestServer): Promise<number> {
  return (await fetch(`${server.url}/readyz`)).status;
}

/** Polls /readyz until it answers `status` (bounded). */
async function waitReady(server: TestServer, status: number): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while ((await readyStatus(server)) !== status) {
    if (Date.now() > deadline) throw new Error(`/readyz never answered ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Redis goes away and comes back', () => {
  let redis: RedisServer;
  let dir: string;
  let databasePath: string;
  const servers: TestServer[] = [];
  let project: TestProject;
  const a = (): TestServer => servers[0] as TestServer;
  const b = (): TestServer => servers[1] as TestServer;
  const connect = async (server: TestServer, sub: string): Promise<TestClient> =>
    TestClient.connect(await memberUrl(server, project, sub));

  before(async () => {
    redis = await startRedisServer();
    dir = mkdtempSync(join(tmpdir(), 'sb-redis-faults-'));
    databasePath = join(dir, 'shared.db');
    const env = { DATABASE_URL: `sqlite:${databasePath}`, REDIS_URL: redis.url };
    servers.push(await startTestServer(env), await startTestServer(env));
    project = await a().createProject('faults');
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses sends before storing them while Redis is down, and recovers without a restart', async () => {
    const sender = await connect(a(), 'ann');
    const member = await connect(b(), 'ben');
    await sender.join('r');
    await member.join('r');
    sender.send({ type: 'message', room: 'r', payload: 'before' });
    assert.equal((await member.collect('message', 1))[0]?.seq, 1);
    await sender.collect('message', 1);
    member.drain();
    sender.drain();

    await redis.stop();
    await waitReady(a(), 503);
    await waitReady(b(), 503);
    assert.equal((await fetch(`${a().url}/healthz`)).status, 200);
    assert.deepEqual(await sender.request({ type: 'message', room: 'r', payload: 'lost?' }), {
      type: 'error',
      message: 'Message could not be delivered',
    });
    const token = await signToken(project.jwtSecret, 'http');
    const refused = await a().api('POST', '/api/message', {
      hash: project.hash,
      token,
      body: { room: 'r', payload: 'lost over http?' },
    });
    assert.equal(refused.status, 503);
    assert.ok(refused.headers.get('retry-after'));
    assert.deepEqual(await refused.json(), {
      success: false,
      error: 'Message could not be delivered',
    });

    await redis.restart();
    await waitReady(a(), 200);
    await waitReady(b(), 200);
    sender.send({ type: 'message', room: 'r', payload: 'after' });
    const [frame] = await member.collect('message', 1);
    assert.equal(frame?.payload, 'after');
    assert.equal(frame?.seq, 2, 'nothing refused was stored');
    const history = await b().api('GET', '/api/rooms/r/messages', { hash: project.hash, token });
    const { messages } = (await history.json()) as { messages: { payload: string }[] };
    assert.deepEqual(
      messages.map((m) => m.payload),
      ['before', 'after'],
    );
    sender.close();
    member.close();
  });

  it('fills from the store a message that was stored but never published', async () => {
    const member = await connect(b(), 'ben');
    const sender = await connect(a(), 'ann');
    await member.join('gap');
    await sender.join('gap');
    // Another process appends without publishing, as when a publish is lost in a reconnect.
    const store = SqliteStore.open(databasePath);
    await store.append({ project: project.hash, room: 'gap', payload: 'unpublished', from: 'x' });
    await store.close();
    sender.send({ type: 'message', room: 'gap', payload: 'published' });
    const frames = await member.collect('message', 2);
    assert.deepEqual(
      frames.map((f) => [f.seq, f.payload]),
      [
        [1, 'unpublished'],
        [2, 'published'],
      ],
    );
    const metrics = await (await fetch(`${b().url}/metrics`)).text();
    assert.match(metrics, /^socketbase_gaps_filled_total [1-9]/m);
    member.close();
    sender.close();
  });
});
