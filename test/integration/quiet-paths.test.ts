/**
 * Delivery paths that used to go quiet (issue 8): a stored message whose publish failed on a link
 * that stayed up, project changes whose bus event was lost, and a shutdown that closed sockets
 * before this instance's members had what was stored. Faults are real: Redis ACLs refuse PUBLISH
 * to one instance's user, a TCP proxy cuts another instance's Redis link, rows change in the
 * shared SQLite file behind the servers' backs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { TestClient } from '../helpers/client.js';
import { eventually, readyzAnswers } from '../helpers/eventually.js';
import { scrapeMetrics } from '../helpers/ops.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { expectRefusedUrl, memberUrl, wsUrl } from '../helpers/ws.js';

/** A Redis user whose right to PUBLISH the test takes away and gives back. */
const PUBLISHER = { user: 'publisher', password: 'publisher-password' };

describe('delivery paths that went quiet', () => {
  let redis: RedisServer;
  let admin: Redis;
  let dir: string;
  let databasePath: string;
  const servers: TestServer[] = [];
  let project: TestProject;

  const start = async (env: Record<string, string>): Promise<TestServer> => {
    const server = await startTestServer({ DATABASE_URL: `sqlite:${databasePath}`, ...env });
    servers.push(server);
    return server;
  };
  const publisherUrl = (): string =>
    `redis://${PUBLISHER.user}:${PUBLISHER.password}@127.0.0.1:${redis.port}`;
  const allowPublish = async (allowed: boolean): Promise<void> => {
    await admin.call('ACL', 'SETUSER', PUBLISHER.user, allowed ? '+publish' : '-publish');
  };

  before(async () => {
    redis = await startRedisServer();
    admin = new Redis(redis.url);
    await admin.call(
      'ACL',
      'SETUSER',
      PUBLISHER.user,
      'on',
      `>${PUBLISHER.password}`,
      '~*',
      '&*',
      '+@all',
    );
    dir = mkdtempSync(join(tmpdir(), 'sb-quiet-'));
    databasePath = join(dir, 'shared.db');
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
    admin.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('a stored message whose publish failed on a link that stayed up', () => {
    let publisher: TestServer;
    let receiver: TestServer;

    before(async () => {
      publisher = await start({ REDIS_URL: publisherUrl(), REDIS_COMMAND_TIMEOUT_MS: '500' });
      receiver = await start({ REDIS_URL: redis.url });
      project = await publisher.createProject('quiet');
    });

    it('is published again once the bus takes it: a member elsewhere receives it in a quiet room, counted in /metrics', async () => {
      const member = await TestClient.connect(await memberUrl(receiver, project, 'ben'));
      await member.join('quiet');
      await allowPublish(false);
      const token = await signToken(project.jwtSecret, 'ann');
      const posted = await publisher.api('POST', '/api/message', {
        hash: project.hash,
        token,
        body: { room: 'quiet', payload: 'stored, not published' },
      });
      assert.equal(posted.status, 200, 'acknowledged: it is stored');
      const { seq } = (await posted.json()) as { seq: number };
      await member.expectSilence(300);
      await allowPublish(true);
      const [frame] = await member.collect('message', 1, 8000);
      assert.equal(frame?.payload, 'stored, not published');
      assert.equal(frame?.seq, seq);
      const metrics = await scrapeMetrics(publisher.url);
      assert.ok((metrics.value('socketbase_bus_publish_failures_total') ?? 0) >= 1);
      assert.ok((metrics.value('socketbase_bus_republished_total') ?? 0) >= 1);
      member.drain();
      await member.expectSilence(300);
      member.close();
    });

    it('shutdown delivers to this instance’s members what was stored, even unpublished, before closing with 1001', async () => {
      const leaving = await start({
        REDIS_URL: publisherUrl(),
        REDIS_COMMAND_TIMEOUT_MS: '500',
        SHUTDOWN_TIMEOUT_MS: '2000',
      });
      const member = await TestClient.connect(await memberUrl(leaving, project, 'cat'));
      await member.join('last-words');
      await allowPublish(false);
      try {
        const token = await signToken(project.jwtSecret, 'ann');
        const posted = await leaving.api('POST', '/api/message', {
          hash: project.hash,
          token,
          body: { room: 'last-words', payload: 'before the end' },
        });
        assert.equal(posted.status, 200);
        const closing = leaving.close();
        const [frame] = await member.collect('message', 1, 8000);
        assert.equal(frame?.payload, 'before the end');
        assert.equal((await member.waitClosed()).code, 1001);
        await closing;
      } finally {
        await allowPublish(true);
      }
    });
  });

  describe('project changes whose control event was lost', () => {
    let proxy: TcpProxy;
    let changer: TestServer;
    let cutOff: TestServer;

    before(async () => {
      proxy = await startTcpProxy(redis.port);
      changer = await start({ REDIS_URL: redis.url });
      // Only the bus's return brings the change here: the periodic refresh is a minute away.
      cutOff = await start({
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        PROJECT_REFRESH_MS: '60000',
      });
    });
    after(() => proxy.close());

    it('a rotation and a deletion made while an instance’s bus link was down are in force there within 2 s of the link coming back', async () => {
      const rotated = await changer.createProject('rotated');
      const deleted = await changer.createProject('deleted');
      const oldToken = await signToken(rotated.jwtSecret, 'ann');
      (await TestClient.connect(wsUrl(cutOff, rotated.hash, oldToken))).close();
      const doomed = await TestClient.connect(await memberUrl(cutOff, deleted, 'ben'));

      proxy.cut();
      await readyzAnswers(cutOff, 503);
      assert.equal(
        (await changer.admin('POST', `/admin/projects/${rotated.hash}/rotate-secret`)).status,
        200,
      );
      assert.equal((await changer.admin('DELETE', `/admin/projects/${deleted.hash}`)).status, 204);
      proxy.restore();
      await readyzAnswers(cutOff, 200);
      const backAt = Date.now();

      assert.deepEqual(await doomed.next('error', 2000), {
        type: 'error',
        message: 'Unknown project',
      });
      assert.equal((await doomed.waitClosed()).code, 4004);
      await eventually(
        'the old secret is refused',
        async () => {
          const client = new TestClient(wsUrl(cutOff, rotated.hash, oldToken));
          if ((await client.next()).type === 'connected') {
            client.close();
            return false;
          }
          return (await client.waitClosed()).code === 4001;
        },
        2000,
      );
      assert.ok(Date.now() - backAt < 2500);
    });
  });

  describe('project changes that no event announced', () => {
    let refreshing: TestServer;

    before(async () => {
      refreshing = await start({ PROJECT_REFRESH_MS: '200' });
    });

    it('a secret changed and a project removed in the database are in force within PROJECT_REFRESH_MS', async () => {
      const changed = await refreshing.createProject('changed');
      const removed = await refreshing.createProject('removed');
      const oldToken = await signToken(changed.jwtSecret, 'ann');
      (await TestClient.connect(wsUrl(refreshing, changed.hash, oldToken))).close();
      const doomed = await TestClient.connect(await memberUrl(refreshing, removed, 'ben'));

      const db = new Database(databasePath, { timeout: 2000 });
      try {
        db.prepare('UPDATE projects SET jwt_secret = ? WHERE hash = ?').run(
          'x'.repeat(43),
          changed.hash,
        );
        db.prepare('DELETE FROM projects WHERE hash = ?').run(removed.hash);
      } finally {
        db.close();
      }

      assert.deepEqual(await doomed.next('error', 2000), {
        type: 'error',
        message: 'Unknown project',
      });
      assert.equal((await doomed.waitClosed()).code, 4004);
      await expectRefusedUrl(wsUrl(refreshing, changed.hash, oldToken), 'Invalid token', 4001);
    });
  });
});
