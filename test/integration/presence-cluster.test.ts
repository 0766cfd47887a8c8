/**
 * Presence and per-project limits over three instances on Redis + PostgreSQL (issue 10): lists and
 * counts that agree everywhere, events once per user, paging 2,500 users, a SIGKILLed instance's
 * users leaving within PRESENCE_TTL_MS, connection limits and the shared message rate.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Frame, TestClient } from '../helpers/client.js';
import { eventually } from '../helpers/eventually.js';
import { type ServerProcess, spawnServer } from '../helpers/ops.js';
import { type TestSchemas, testSchemas } from '../helpers/postgres.js';
import {
  ADMIN_TOKEN,
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl } from '../helpers/ws.js';

const PRESENCE_TTL_MS = 1000;

interface PresenceBody {
  users: { user: string; connections: number }[];
  count: number;
  partial?: boolean;
}

describe('presence and limits on three instances, Redis + PostgreSQL', () => {
  let schemas: TestSchemas;
  let env: Record<string, string>;
  let cwd: string;
  const servers: TestServer[] = [];
  const clients: TestClient[] = [];
  const at = (i: number): TestServer => servers[i % servers.length] as TestServer;

  const connect = async (
    server: { wsUrl: string },
    project: TestProject,
    sub: string,
  ): Promise<TestClient> => {
    const client = await TestClient.connect(await memberUrl(server, project, sub));
    clients.push(client);
    return client;
  };
  const watch = async (client: TestClient, room: string): Promise<Frame> => {
    client.send({ type: 'join', room, presence: true });
    await client.next('joined');
    return client.next('presence');
  };
  const presencePage = async (
    server: TestServer,
    project: TestProject,
    room: string,
    query: string,
  ): Promise<PresenceBody> => {
    const response = await server.api('GET', `/api/rooms/${room}/presence${query}`, {
      hash: project.hash,
      token: await signToken(project.jwtSecret, 'reader'),
    });
    assert.equal(response.status, 200);
    return (await response.json()) as PresenceBody;
  };
  const setLimits = async (project: TestProject, limits: Record<string, number | null>) => {
    const response = await at(0).admin('PATCH', `/admin/projects/${project.hash}`, {
      settings: { limits },
    });
    assert.equal(response.status, 200);
  };

  before(async () => {
    schemas = await testSchemas();
    cwd = mkdtempSync(join(tmpdir(), 'sb-presence-'));
    env = {
      DATABASE_URL: schemas.urlFor(await schemas.create()),
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `sb-test-${randomBytes(6).toString('hex')}:`,
      PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
      PROJECT_REFRESH_MS: '200',
    };
    for (let i = 0; i < 3; i++) servers.push(await startTestServer(env));
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.close()));
    await schemas.dropAll();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('users with two tabs on different instances: the same list everywhere, one event per user', async () => {
    const project = await at(0).createProject('spread');
    const watchers = await Promise.all(
      [0, 1, 2].map(async (i) => connect(at(i), project, `watcher-${i}`)),
    );
    for (const watcher of watchers) await watch(watcher, 'spread');
    const plain = await connect(at(0), project, 'plain');
    await plain.join('spread');
    const users = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'];
    const tabs: TestClient[] = [];
    for (const [i, user] of users.entries()) {
      for (const tab of [0, 1]) {
        const client = await connect(at(i + tab), project, user);
        await client.join('spread');
        tabs.push(client);
      }
    }
    for (const [i, watcher] of watchers.entries()) {
      const joins = await watcher.exactly('presence_join', users.length + 3 - i);
      const seen = joins.map((frame) => frame.user).sort();
      const expected = [
        ...users,
        'plain',
        ...[0, 1, 2].filter((j) => j > i).map((j) => `watcher-${j}`),
      ];
      assert.deepEqual(seen, expected.sort(), `watcher ${i}`);
      assert.ok(!seen.includes(`watcher-${i}`), 'never about its own user');
    }
    await plain.expectSilence();
    const lists = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const client = watchers[i] as TestClient;
        return client.request({ type: 'presence', room: 'spread' }, 'presence');
      }),
    );
    for (const list of lists) {
      assert.equal(list.count, users.length + 4);
      assert.deepEqual(
        (list.users as PresenceBody['users']).filter((entry) => entry.user.startsWith('u')),
        users.map((user) => ({ user, connections: 2 })),
      );
    }
    for (const tab of tabs) tab.close();
    for (const watcher of watchers) {
      const leaves = await watcher.exactly('presence_leave', users.length);
      assert.deepEqual(leaves.map((frame) => frame.user).sort(), users);
    }
  });

  it('stats are the whole deployment: every instance answers the same connections, users and rooms', async () => {
    const project = await at(0).createProject('stats');
    const placed: [number, string, string][] = [
      [0, 'ann', 'one'],
      [1, 'ann', 'two'],
      [2, 'bob', 'one'],
      [1, 'cid', 'one'],
    ];
    for (const [i, user, room] of placed) await (await connect(at(i), project, user)).join(room);
    for (let i = 0; i < 3; i++) {
      const response = await at(i).admin('GET', `/admin/projects/${project.hash}/stats`);
      assert.equal(response.status, 200);
      const stats = (await response.json()) as Record<string, number>;
      assert.deepEqual(
        { connections: stats.connections, users: stats.users, rooms: stats.rooms },
        { connections: 4, users: 3, rooms: 2 },
        `instance ${i}`,
      );
    }
    const all = (await (await at(2).admin('GET', '/admin/stats')).json()) as Record<string, number>;
    assert.equal(all.instances, 3);
    const rooms = await at(1).admin('GET', `/admin/projects/${project.hash}/rooms`);
    assert.deepEqual(await rooms.json(), {
      rooms: [
        { room: 'one', lastSeq: 0, lastTs: null, present: 3 },
        { room: 'two', lastSeq: 0, lastTs: null, present: 1 },
      ],
    });
  });

  it('paging walks 2,500 users spread over the instances exactly once, on every instance', async () => {
    const project = await at(0).createProject('paged');
    const total = 2500;
    const width = String(total).length;
    for (let start = 0; start < total; start += 250) {
      await Promise.all(
        Array.from({ length: Math.min(250, total - start) }, async (_, k) => {
          const n = start + k;
          const client = await connect(at(n), project, `user-${String(n).padStart(width, '0')}`);
          await client.join('big');
        }),
      );
    }
    for (let i = 0; i < 3; i++) {
      const walked: string[] = [];
      let query = '?limit=1000';
      for (;;) {
        const page = await presencePage(at(i), project, 'big', query);
        assert.equal(page.count, total);
        walked.push(...page.users.map((entry) => entry.user));
        const last = page.users.at(-1);
        if (page.users.length < 1000 || last === undefined) break;
        query = `?limit=1000&after=${encodeURIComponent(last.user)}`;
      }
      assert.equal(walked.length, total, `instance ${i}`);
      assert.equal(new Set(walked).size, total);
      assert.deepEqual(walked, [...walked].sort());
    }
  });

  it('a SIGKILLed instance: its users leave, with events, within PRESENCE_TTL_MS, and stop counting', async () => {
    const project = await at(0).createProject('killed');
    await setLimits(project, { maxConnections: 4 });
    const doomed: ServerProcess = await spawnServer(
      { ...env, ADMIN_TOKEN, LOG_LEVEL: 'warn' },
      cwd,
    );
    try {
      const watcher = await connect(at(0), project, 'watcher');
      await watch(watcher, 'room');
      for (const user of ['k1', 'k2', 'k3']) {
        const client = await connect(doomed, project, user);
        await client.join('room');
      }
      assert.equal((await watcher.exactly('presence_join', 3)).length, 3);
      const refused = new TestClient(await memberUrl(at(1), project, 'extra'));
      clients.push(refused);
      assert.equal((await refused.waitClosed()).code, 4029);
      const killedAt = Date.now();
      await doomed.stop('SIGKILL');
      const leaves = await watcher.collect('presence_leave', 3, PRESENCE_TTL_MS * 4);
      assert.deepEqual(leaves.map((frame) => frame.user).sort(), ['k1', 'k2', 'k3']);
      // Reaped by a survivor's refresh: within the TTL plus one refresh period.
      assert.ok(Date.now() - killedAt < PRESENCE_TTL_MS * 2 + 500, 'left late');
      const page = await presencePage(at(2), project, 'room', '');
      assert.deepEqual(page, { users: [{ user: 'watcher', connections: 1 }], count: 1 });
      await connect(at(1), project, 'extra');
    } finally {
      if (doomed.child.exitCode === null && doomed.child.signalCode === null) {
        await doomed.stop('SIGKILL');
      }
    }
  });

  it('maxConnections 10 over three instances: the eleventh is refused wherever it lands', async () => {
    const project = await at(0).createProject('capped');
    await setLimits(project, { maxConnections: 10 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const admitted: TestClient[] = [];
    for (let i = 0; i < 10; i++) admitted.push(await connect(at(i), project, `c${i}`));
    for (let i = 0; i < 3; i++) {
      const extra = new TestClient(await memberUrl(at(i), project, `extra-${i}`));
      clients.push(extra);
      assert.deepEqual(await extra.next(), { type: 'error', message: 'Too many connections' });
      assert.deepEqual(await extra.waitClosed(), { code: 4029, reason: 'Too many connections' });
    }
    (admitted[4] as TestClient).close();
    await eventually('a freed slot admits a new connection', async () => {
      const again = new TestClient(await memberUrl(at(2), project, 'again'));
      clients.push(again);
      return (await again.next()).type === 'connected';
    });
  });

  it('maxConnectionsPerUser 2: a third tab is refused on any instance; another user is not', async () => {
    const project = await at(0).createProject('per-user');
    await setLimits(project, { maxConnectionsPerUser: 2 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await connect(at(0), project, 'tabby');
    await connect(at(1), project, 'tabby');
    const third = new TestClient(await memberUrl(at(2), project, 'tabby'));
    clients.push(third);
    assert.equal((await third.waitClosed()).code, 4029);
    await connect(at(2), project, 'other');
  });

  it('maxMessagesPerSecond over three instances: any 5 s window stores at most 110 %', async () => {
    const project = await at(0).createProject('rated');
    const limit = 40;
    await setLimits(project, { maxMessagesPerSecond: limit });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const senders = await Promise.all([0, 1, 2].map((i) => connect(at(i), project, `s${i}`)));
    for (const sender of senders) await sender.join('flood');
    const member = await connect(at(1), project, 'member');
    await member.join('flood');
    const started = Date.now();
    let sent = 0;
    // Each sender offers 40 msg/s (three times the limit together) for 6 s.
    while (Date.now() - started < 6000) {
      for (const [i, sender] of senders.entries()) {
        sender.send({ type: 'message', room: 'flood', payload: `p${sent}`, ref: `${i}-${sent}` });
      }
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const answers = async (sender: TestClient): Promise<Frame[]> => {
      await eventually(
        'every frame answered',
        async () =>
          sender.frames.filter((f) => f.type === 'ack' || f.type === 'error').length >= sent,
      );
      return sender.frames.filter((f) => f.type === 'ack' || f.type === 'error');
    };
    let acked = 0;
    for (const sender of senders) {
      const frames = await answers(sender);
      for (const frame of frames) {
        if (frame.type === 'error') assert.equal(frame.message, 'Rate limit exceeded');
        else acked++;
      }
    }
    // Exactly the acknowledged ones, and not one more: refused frames are not delivered.
    const delivered = await member.exactly('message', acked, 10_000);
    const times = delivered.map((frame) => Number(frame.ts)).sort((x, y) => x - y);
    let most = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while ((times[i] as number) - (times[j] as number) >= 5000) j++;
      most = Math.max(most, i - j + 1);
    }
    assert.ok(most <= limit * 5 * 1.1, `${most} stored in 5 s, limit ${limit}/s`);
    assert.ok(most >= limit * 5 * 0.5, `only ${most} stored in 5 s: the budget is not shared well`);
  });
});
