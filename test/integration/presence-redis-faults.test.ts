/**
 * Redis killed and restarted under presence and project limits (issue 10): while it is away,
 * presence answers from this instance with `partial: true` and each instance enforces its share of
 * a connection limit; once it is back (empty), the shared state is rebuilt and full service resumes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Frame, TestClient } from '../helpers/client.js';
import { eventually, readyzAnswers } from '../helpers/eventually.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl } from '../helpers/ws.js';

describe('presence and limits while Redis is killed and restarted', () => {
  let redis: RedisServer;
  let dir: string;
  const servers: TestServer[] = [];
  const clients: TestClient[] = [];
  let project: TestProject;
  const a = (): TestServer => servers[0] as TestServer;
  const b = (): TestServer => servers[1] as TestServer;
  const connect = async (server: TestServer, sub: string): Promise<TestClient> => {
    const client = await TestClient.connect(await memberUrl(server, project, sub));
    clients.push(client);
    return client;
  };
  const attempt = async (server: TestServer, sub: string): Promise<Frame> => {
    const client = new TestClient(await memberUrl(server, project, sub));
    clients.push(client);
    return client.next();
  };
  const overHttp = async (server: TestServer) => {
    const response = await server.api('GET', '/api/rooms/room/presence', {
      hash: project.hash,
      token: await signToken(project.jwtSecret, 'reader'),
    });
    return (await response.json()) as { users: { user: string }[]; count: number; partial?: true };
  };

  before(async () => {
    redis = await startRedisServer();
    dir = mkdtempSync(join(tmpdir(), 'sb-presence-faults-'));
    const env = {
      DATABASE_URL: `sqlite:${join(dir, 'shared.db')}`,
      REDIS_URL: redis.url,
      PRESENCE_TTL_MS: '1000',
    };
    servers.push(await startTestServer(env), await startTestServer(env));
    project = await a().createProject('faults');
    const patched = await a().admin('PATCH', `/admin/projects/${project.hash}`, {
      settings: { limits: { maxConnections: 4 } },
    });
    assert.equal(patched.status, 200);
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.close()));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers partial presence and enforces each instance its share, then recovers in full', async () => {
    const ann = await connect(a(), 'ann');
    await ann.join('room');
    const ben = await connect(b(), 'ben');
    await ben.join('room');
    assert.equal((await overHttp(a())).count, 2);

    await redis.stop();
    await readyzAnswers(a(), 503);
    await readyzAnswers(b(), 503);
    assert.deepEqual(await ann.request({ type: 'presence', room: 'room' }), {
      type: 'presence',
      room: 'room',
      users: [{ user: 'ann', connections: 1 }],
      count: 1,
      partial: true,
    });
    assert.deepEqual(await overHttp(b()), {
      users: [{ user: 'ben', connections: 1 }],
      count: 1,
      partial: true,
    });
    // maxConnections 4 over the two instances it last knew: 2 each, counted locally.
    assert.equal((await attempt(a(), 'cat')).type, 'connected');
    assert.deepEqual(await attempt(a(), 'dan'), { type: 'error', message: 'Too many connections' });

    await redis.restart();
    await readyzAnswers(a(), 200);
    await readyzAnswers(b(), 200);
    await eventually('the shared state is rebuilt from every instance', async () => {
      const page = await overHttp(b());
      return page.partial === undefined && page.count === 2;
    });
    const joined = (await attempt(b(), 'eve')).type;
    assert.equal(joined, 'connected', 'ann, cat, ben and eve: four of four');
    assert.deepEqual(await attempt(b(), 'fay'), { type: 'error', message: 'Too many connections' });
    assert.deepEqual(await attempt(a(), 'gus'), { type: 'error', message: 'Too many connections' });
  });
});
