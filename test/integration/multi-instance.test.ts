import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SILENCE_MS, TestClient } from '../helpers/client.js';
import { testSchemas } from '../helpers/postgres.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl, wsUrl } from '../helpers/ws.js';

interface SharedDatabase {
  url: string;
  cleanup(): Promise<void>;
}

async function postgresDatabase(): Promise<SharedDatabase> {
  const schemas = await testSchemas();
  return { url: schemas.urlFor(await schemas.create()), cleanup: () => schemas.dropAll() };
}

async function sqliteDatabase(): Promise<SharedDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-multi-'));
  return {
    url: `sqlite:${join(dir, 'shared.db')}`,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

multiInstanceSuite('PostgreSQL', postgresDatabase);
multiInstanceSuite('one SQLite file', sqliteDatabase);

/** Three instances on one Redis (a private channel prefix) and one shared database. */
function multiInstanceSuite(name: string, database: () => Promise<SharedDatabase>): void {
  describe(`three instances joined by Redis pub/sub, on ${name}`, () => {
    const servers: TestServer[] = [];
    let shared: SharedDatabase;
    let project: TestProject;

    const connect = async (server: TestServer, sub: string, p = project): Promise<TestClient> =>
      TestClient.connect(await memberUrl(server, p, sub));

    before(async () => {
      shared = await database();
      const env = {
        DATABASE_URL: shared.url,
        REDIS_URL: 'redis://127.0.0.1:6379',
        REDIS_PREFIX: `sb-test-${randomBytes(6).toString('hex')}:`,
      };
      for (let i = 0; i < 3; i++) servers.push(await startTestServer(env));
      project = await (servers[0] as TestServer).createProject('multi');
    });
    after(async () => {
      await Promise.all(servers.map((server) => server.close()));
      await shared.cleanup();
    });

    const a = (): TestServer => servers[0] as TestServer;
    const b = (): TestServer => servers[1] as TestServer;
    const c = (): TestServer => servers[2] as TestServer;

    it('flow 1 across instances: members on A, B and C all receive a message sent on A', async () => {
      const clients = [
        await connect(a(), 'ann'),
        await connect(b(), 'ben'),
        await connect(c(), 'cy'),
      ];
      for (const client of clients) await client.join('general');
      clients[0]?.send({ type: 'message', room: 'general', payload: 'Hello' });
      for (const client of clients) {
        const [frame] = await client.collect('message', 1);
        assert.equal(frame?.payload, 'Hello');
        assert.equal(frame?.from, 'ann');
        assert.equal(frame?.seq, 1);
      }
      for (const client of clients) client.close();
    });

    it('flow 2 across instances: an HTTP publish on A reaches members on B and C', async () => {
      const onB = await connect(b(), 'ben');
      const onC = await connect(c(), 'cy');
      await onB.join('notifications');
      await onC.join('notifications');
      const response = await a().api('POST', '/api/message', {
        hash: project.hash,
        token: await signToken(project.jwtSecret, 'http-user'),
        body: { room: 'notifications', payload: 'via http' },
      });
      assert.equal(response.status, 200);
      for (const client of [onB, onC]) {
        const [frame] = await client.collect('message', 1);
        assert.equal(frame?.payload, 'via http');
        assert.equal(frame?.from, 'http-user');
        client.close();
      }
    });

    it('flow 3 across instances: a broadcast reaches every connection on every instance', async () => {
      const clients = [
        await connect(a(), 'ann'),
        await connect(b(), 'ben'),
        await connect(c(), 'cy'),
      ];
      clients[1]?.send({ type: 'broadcast', payload: 'Alert' });
      for (const client of clients) {
        const [frame] = await client.collect('broadcast', 1);
        assert.equal(frame?.payload, 'Alert');
        assert.equal(frame?.from, 'ben');
        client.close();
      }
    });

    it('projects stay isolated across instances, even with equal room names', async () => {
      const other = await a().createProject('other');
      const mine = await connect(b(), 'ann');
      const theirs = await connect(c(), 'eve', other);
      await mine.join('same');
      await theirs.join('same');
      theirs.send({ type: 'message', room: 'same', payload: 'secret' });
      theirs.send({ type: 'broadcast', payload: 'secret broadcast' });
      await theirs.collect('broadcast', 1);
      await mine.expectSilence();
      mine.close();
      theirs.close();
    });

    it('a burst of 1,500 messages from senders on all instances arrives complete, in seq order, once, everywhere', async () => {
      const senders = [
        await connect(a(), 's1'),
        await connect(b(), 's2'),
        await connect(c(), 's3'),
      ];
      const members = [
        await connect(a(), 'm1'),
        await connect(b(), 'm2'),
        await connect(c(), 'm3'),
      ];
      for (const client of [...senders, ...members]) await client.join('burst');
      const perSender = 500;
      for (let i = 0; i < perSender; i++) {
        for (const [n, sender] of senders.entries()) {
          sender.send({ type: 'message', room: 'burst', payload: `${n}:${i}` });
        }
      }
      const total = perSender * senders.length;
      for (const member of members) {
        const frames = await member.collect('message', total, 20_000);
        assert.deepEqual(
          frames.map((frame) => frame.seq),
          Array.from({ length: total }, (_, i) => i + 1),
        );
        assert.equal(new Set(frames.map((frame) => frame.payload)).size, total);
        // Nothing more arrives: no message twice.
        await new Promise((resolve) => setTimeout(resolve, SILENCE_MS));
        assert.equal(member.drain('message').length, total);
      }
      for (const client of [...senders, ...members]) client.close();
    });

    it('rotating a secret on A refuses old tokens on B and C at once; open sockets stay open', async () => {
      const project2 = await a().createProject('rotating');
      const oldToken = await signToken(project2.jwtSecret, 'ann');
      const open = await connect(c(), 'ann', project2);
      await open.join('r');
      const response = await a().admin('POST', `/admin/projects/${project2.hash}/rotate-secret`);
      const { jwtSecret } = (await response.json()) as { jwtSecret: string };
      for (const server of [b(), c()]) {
        const refused = new TestClient(wsUrl(server, project2.hash, oldToken));
        assert.deepEqual(await refused.next('error'), { type: 'error', message: 'Invalid token' });
        assert.equal((await refused.waitClosed()).code, 4001);
        const http = await server.api('POST', '/api/message', {
          hash: project2.hash,
          token: oldToken,
          body: { room: 'r', payload: 'x' },
        });
        assert.equal(http.status, 401);
      }
      const fresh = await connect(b(), 'ben', { ...project2, jwtSecret });
      fresh.close();
      open.send({ type: 'ping' });
      assert.deepEqual(await open.next(), { type: 'pong' });
      open.close();
    });

    it('deleting a project on A sends its sockets on B and C Unknown project and closes them with 4004', async () => {
      const doomed = await a().createProject('doomed');
      const onB = await connect(b(), 'ann', doomed);
      const onC = await connect(c(), 'ben', doomed);
      const response = await a().admin('DELETE', `/admin/projects/${doomed.hash}`);
      assert.equal(response.status, 204);
      for (const socket of [onB, onC]) {
        assert.deepEqual(await socket.next('error'), { type: 'error', message: 'Unknown project' });
        assert.equal((await socket.waitClosed()).code, 4004);
      }
    });
  });
}
