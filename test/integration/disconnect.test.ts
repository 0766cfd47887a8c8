/**
 * The admin's tokens and disconnect endpoints (issue 11) over three instances on Redis +
 * PostgreSQL: a user's (or a project's) sockets closed with 4003 on every instance, revocations in
 * force everywhere (WebSocket 4001, HTTP 401) while tokens minted after them work, refusals that
 * close nothing, the minted tokens themselves, and a revocation whose control event is lost.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { jwtVerify } from 'jose';
import { TestClient } from '../helpers/client.js';
import { eventually } from '../helpers/eventually.js';
import { type TestSchemas, testSchemas } from '../helpers/postgres.js';
import { startTestServer, type TestProject, type TestServer } from '../helpers/server.js';
import {
  expectAlive,
  expectRefusedUrl,
  nowSeconds,
  signClaims,
  statusAndBody,
  wsUrl,
} from '../helpers/ws.js';

/** The refresh period of the instance that never hears the control events. */
const LONE_REFRESH_MS = 500;
/** How long after the 202 every instance must have closed the sockets. */
const DISCONNECT_WITHIN_MS = 2000;

const DISCONNECTED = { type: 'error', message: 'Disconnected' };

describe('tokens and disconnect on three instances, Redis + PostgreSQL', () => {
  let schemas: TestSchemas;
  let env: Record<string, string>;
  const servers: TestServer[] = [];
  const clients: TestClient[] = [];
  const at = (i: number): TestServer => servers[i] as TestServer;

  /** A token of `sub` issued `ago` seconds ago: before any revocation made from now on. */
  const oldToken = (project: TestProject, sub: string, ago = 5): string =>
    signClaims(project.jwtSecret, { sub, iat: nowSeconds() - ago, exp: nowSeconds() + 3600 });

  const connect = async (server: TestServer, hash: string, token: string) => {
    const client = await TestClient.connect(wsUrl(server, hash, token));
    clients.push(client);
    return client;
  };

  const disconnect = (server: TestServer, project: TestProject, body: unknown) =>
    server.admin('POST', `/admin/projects/${project.hash}/disconnect`, body);

  const mint = async (server: TestServer, project: TestProject, body: unknown) => {
    const response = await server.admin('POST', `/admin/projects/${project.hash}/tokens`, body);
    const [status, answer] = await statusAndBody(response);
    assert.equal(status, 201, JSON.stringify(answer));
    return answer as { jwt: string; exp: number };
  };

  const publish = async (server: TestServer, project: TestProject, token: string) =>
    statusAndBody(
      await server.api('POST', '/api/message', {
        hash: project.hash,
        token,
        body: { room: 'r', payload: 'p' },
      }),
    );

  /** Asserts the error frame, then close 4003, and nothing else after `connected`. */
  const expectDisconnected = async (client: TestClient, what: string): Promise<void> => {
    const { code, reason } = await client.waitClosed(DISCONNECT_WITHIN_MS);
    assert.deepEqual([code, reason], [4003, 'Disconnected'], what);
    assert.deepEqual(client.frames.slice(1), [DISCONNECTED], what);
  };

  const expectUnauthorized = async (server: TestServer, project: TestProject, token: string) => {
    assert.deepEqual(await publish(server, project, token), [
      401,
      { success: false, error: 'Invalid token' },
    ]);
  };

  before(async () => {
    schemas = await testSchemas();
    env = {
      DATABASE_URL: schemas.urlFor(await schemas.create()),
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `sb-test-${randomBytes(6).toString('hex')}:`,
      // A refresh is a minute away: only the control event can close sockets and revoke in time.
      PROJECT_REFRESH_MS: '60000',
    };
    for (let i = 0; i < 3; i++) servers.push(await startTestServer(env));
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.close()));
    await schemas.dropAll();
  });

  it('disconnect {"user"} on A closes every socket of that user on A, B and C within 2 s: the Disconnected error frame, then 4003; other users and projects untouched', async () => {
    const project = await at(0).createProject('kick');
    const other = await at(0).createProject('elsewhere');
    const alice = oldToken(project, 'alice');
    const targets = [
      await connect(at(0), project.hash, alice),
      await connect(at(1), project.hash, alice),
      await connect(at(1), project.hash, alice),
      await connect(at(2), project.hash, alice),
    ];
    const bystanders = [
      ...(await Promise.all(
        [0, 1, 2].map((i) => connect(at(i), project.hash, oldToken(project, 'bob'))),
      )),
      await connect(at(1), other.hash, oldToken(other, 'alice')),
    ];
    const startedAt = Date.now();
    const [status, body] = await statusAndBody(await disconnect(at(0), project, { user: 'alice' }));
    assert.deepEqual([status, body], [202, { success: true }]);
    await Promise.all(targets.map((client, i) => expectDisconnected(client, `alice socket ${i}`)));
    assert.ok(Date.now() - startedAt < DISCONNECT_WITHIN_MS, `${Date.now() - startedAt} ms`);
    for (const client of bystanders) {
      await client.expectSilence();
      await expectAlive(client);
    }
    // Without revoke the token stays good: the user may come back with it.
    for (const i of [0, 1, 2]) await connect(at(i), project.hash, alice);
  });

  it('disconnect {"all":true} closes every connection of the project on every instance, and none of another project', async () => {
    const project = await at(1).createProject('everyone');
    const other = await at(1).createProject('spared');
    const targets = await Promise.all(
      ['u0', 'u1', 'u2', 'u3'].map((sub, i) =>
        connect(at(i % 3), project.hash, oldToken(project, sub)),
      ),
    );
    const spared = await Promise.all(
      [0, 1, 2].map((i) => connect(at(i), other.hash, oldToken(other, 'u0'))),
    );
    const [status, body] = await statusAndBody(await disconnect(at(2), project, { all: true }));
    assert.deepEqual([status, body], [202, { success: true }]);
    await Promise.all(targets.map((client, i) => expectDisconnected(client, `socket ${i}`)));
    for (const client of spared) {
      await client.expectSilence();
      await expectAlive(client);
    }
  });

  it('with "revoke":true the user’s earlier tokens (and one without iat) are refused on every instance, WebSocket 4001 and HTTP 401, also once verified and cached; a token minted after the call works; other users’ do', async () => {
    const project = await at(0).createProject('revoke');
    const alice = oldToken(project, 'alice');
    const aliceNoIat = signClaims(project.jwtSecret, { sub: 'alice' });
    const bob = oldToken(project, 'bob');
    const sockets: TestClient[] = [];
    for (const i of [0, 1, 2]) {
      // Every instance verifies (and caches) both tokens before the revocation.
      assert.equal((await publish(at(i), project, alice))[0], 200);
      assert.equal((await publish(at(i), project, aliceNoIat))[0], 200);
      sockets.push(await connect(at(i), project.hash, alice));
    }
    const [status, body] = await statusAndBody(
      await disconnect(at(1), project, { user: 'alice', revoke: true }),
    );
    assert.deepEqual([status, body], [202, { success: true }]);
    // An instance has applied the revocation before it closes the sockets.
    await Promise.all(sockets.map((client, i) => expectDisconnected(client, `instance ${i}`)));
    const fresh = await mint(at(2), project, { sub: 'alice' });
    for (const i of [0, 1, 2]) {
      for (const token of [alice, aliceNoIat]) {
        await expectRefusedUrl(wsUrl(at(i), project.hash, token), 'Invalid token', 4001);
        await expectUnauthorized(at(i), project, token);
      }
      const again = await connect(at(i), project.hash, fresh.jwt);
      assert.equal(again.frames[0]?.user, 'alice');
      assert.equal((await publish(at(i), project, fresh.jwt))[0], 200);
      assert.equal((await publish(at(i), project, bob))[0], 200, 'another user’s token');
      await connect(at(i), project.hash, bob);
    }
  });

  it('with "all":true and "revoke":true every user’s earlier tokens are refused on every instance; tokens minted after work', async () => {
    const project = await at(2).createProject('revoke-all');
    const users = ['carol', 'dave'];
    const old = users.map((sub) => oldToken(project, sub));
    const sockets = await Promise.all(old.map((token, i) => connect(at(i), project.hash, token)));
    const [status] = await statusAndBody(
      await disconnect(at(0), project, { all: true, revoke: true }),
    );
    assert.equal(status, 202);
    await Promise.all(sockets.map((client, i) => expectDisconnected(client, `socket ${i}`)));
    for (const i of [0, 1, 2]) {
      for (const token of old) {
        await expectRefusedUrl(wsUrl(at(i), project.hash, token), 'Invalid token', 4001);
        await expectUnauthorized(at(i), project, token);
      }
    }
    for (const sub of [...users, 'erin']) {
      const { jwt } = await mint(at(1), project, { sub });
      for (const i of [0, 1, 2]) assert.equal((await publish(at(i), project, jwt))[0], 200, sub);
    }
  });

  it('neither "user" nor "all":true answers 400 User required and closes nothing; a bad revoke 400 Invalid revoke; unknown project 404; no admin token 401; GET 405', async () => {
    const project = await at(0).createProject('refusals');
    const alice = oldToken(project, 'alice');
    const sockets = await Promise.all([0, 1, 2].map((i) => connect(at(i), project.hash, alice)));
    const cases: [unknown, number, string][] = [
      [{}, 400, 'User required'],
      [{ revoke: true }, 400, 'User required'],
      [{ user: '' }, 400, 'User required'],
      [{ user: 5, revoke: true }, 400, 'User required'],
      [{ user: null, all: false }, 400, 'User required'],
      [{ all: 'yes' }, 400, 'User required'],
      [{ all: 1, revoke: true }, 400, 'User required'],
      [{ user: 'alice', all: true }, 400, 'User required'],
      [{ user: ['alice'] }, 400, 'User required'],
      [{ user: 'alice', revoke: 'yes' }, 400, 'Invalid revoke'],
      [{ all: true, revoke: 1 }, 400, 'Invalid revoke'],
      [[], 400, 'Invalid JSON'],
      ['alice', 400, 'Invalid JSON'],
    ];
    for (const [body, status, error] of cases) {
      assert.deepEqual(
        await statusAndBody(await disconnect(at(0), project, body)),
        [status, { success: false, error }],
        JSON.stringify(body),
      );
    }
    assert.deepEqual(
      await statusAndBody(
        await at(0).admin('POST', '/admin/projects/no-such-hash/disconnect', { user: 'alice' }),
      ),
      [404, { success: false, error: 'Unknown project' }],
    );
    assert.deepEqual(
      await statusAndBody(
        await at(0).admin('POST', '/admin/projects/no-such-hash/disconnect', {
          all: true,
          revoke: true,
        }),
      ),
      [404, { success: false, error: 'Unknown project' }],
    );
    for (const path of ['disconnect', 'tokens']) {
      const unauthorized = await fetch(`${at(1).adminUrl}/admin/projects/${project.hash}/${path}`, {
        method: 'POST',
        headers: { authorization: 'Bearer wrong-token-0123456789' },
        body: JSON.stringify({ all: true, revoke: true, sub: 'alice' }),
      });
      assert.deepEqual(await statusAndBody(unauthorized), [
        401,
        { success: false, error: 'Unauthorized' },
      ]);
      assert.deepEqual(
        await statusAndBody(await at(1).admin('GET', `/admin/projects/${project.hash}/${path}`)),
        [405, { success: false, error: 'Method not allowed' }],
      );
    }
    for (const client of sockets) {
      await client.expectSilence();
      await expectAlive(client);
    }
    // Nothing was revoked either.
    for (const i of [0, 1, 2]) assert.equal((await publish(at(i), project, alice))[0], 200);
  });

  it('POST /tokens answers 201 {"jwt","exp"}: HS256 with the project’s secret, sub, iat, exp = iat + ttlSeconds (now + 1 h by default), and the claims given', async () => {
    const project = await at(1).createProject('mint');
    const secret = new TextEncoder().encode(project.jwtSecret);
    const claims = { rooms: ['chat:*', 'lobby'], publish: false, broadcast: false, role: 'mod' };
    const before = nowSeconds();
    const response = await at(1).admin('POST', `/admin/projects/${project.hash}/tokens`, {
      sub: 'alice',
      ttlSeconds: 120,
      claims,
    });
    const [status, body] = await statusAndBody(response);
    assert.equal(status, 201);
    assert.deepEqual(Object.keys(body as object), ['jwt', 'exp']);
    const { jwt, exp } = body as { jwt: string; exp: number };
    const { payload, protectedHeader } = await jwtVerify(jwt, secret, { algorithms: ['HS256'] });
    assert.equal(protectedHeader.alg, 'HS256');
    const { iat, ...rest } = payload;
    assert.deepEqual(rest, { ...claims, sub: 'alice', exp });
    assert.ok(typeof iat === 'number' && iat >= before && iat <= nowSeconds(), `iat ${iat}`);
    assert.equal(exp, iat + 120);

    const plain = await mint(at(2), project, { sub: 'bob' });
    const decoded = (await jwtVerify(plain.jwt, secret)).payload;
    assert.deepEqual(Object.keys(decoded).sort(), ['exp', 'iat', 'sub']);
    assert.equal(plain.exp, (decoded.iat ?? 0) + 3600, 'one hour by default');
    assert.ok(Math.abs(plain.exp - (Date.now() / 1000 + 3600)) < 5);
    for (const body of [
      { sub: 'bob', ttlSeconds: null, claims: null },
      { sub: 'bob', claims: {} },
    ]) {
      const minted = await mint(at(0), project, body);
      assert.equal(minted.exp - ((await jwtVerify(minted.jwt, secret)).payload.iat ?? 0), 3600);
    }
    // The minted token opens a connection, on any instance, as its sub.
    const client = await connect(at(0), project.hash, plain.jwt);
    assert.equal(client.frames[0]?.user, 'bob');
  });

  it('POST /tokens refuses a bad sub (Sub required), ttlSeconds (Invalid ttlSeconds) or claims (Invalid claims), an unknown project (404), a body that is not an object (Invalid JSON)', async () => {
    const project = await at(2).createProject('mint-refusals');
    const cases: [unknown, string][] = [
      [{}, 'Sub required'],
      [{ sub: '' }, 'Sub required'],
      [{ sub: 5 }, 'Sub required'],
      [{ sub: null, ttlSeconds: 60 }, 'Sub required'],
      [{ sub: ['alice'] }, 'Sub required'],
      ...[0, -1, 1.5, '60', true, [60], 2 ** 53, Number.MAX_SAFE_INTEGER].map(
        (ttlSeconds): [unknown, string] => [{ sub: 'a', ttlSeconds }, 'Invalid ttlSeconds'],
      ),
      ...[
        [],
        'x',
        5,
        true,
        { sub: 'mallory' },
        { exp: 1 },
        { iat: 1 },
        { nbf: 1 },
        { rooms: 'chat' },
        { rooms: ['chat', 1] },
        { rooms: null },
        { publish: 'no' },
        { broadcast: null },
        { broadcast: 0 },
      ].map((claims): [unknown, string] => [{ sub: 'a', claims }, 'Invalid claims']),
      [[], 'Invalid JSON'],
      ['sub', 'Invalid JSON'],
    ];
    for (const [body, error] of cases) {
      assert.deepEqual(
        await statusAndBody(
          await at(2).admin('POST', `/admin/projects/${project.hash}/tokens`, body),
        ),
        [400, { success: false, error }],
        JSON.stringify(body),
      );
    }
    assert.deepEqual(
      await statusAndBody(
        await at(2).admin('POST', '/admin/projects/no-such-hash/tokens', { sub: 'alice' }),
      ),
      [404, { success: false, error: 'Unknown project' }],
    );
  });

  it('POST /tokens signs with the secret in force: after a rotation on another instance, the new one', async () => {
    const project = await at(0).createProject('rotated');
    const rotated = await at(1).admin('POST', `/admin/projects/${project.hash}/rotate-secret`);
    const { jwtSecret } = (await rotated.json()) as { jwtSecret: string };
    const { jwt } = await mint(at(2), project, { sub: 'alice' });
    await jwtVerify(jwt, new TextEncoder().encode(jwtSecret));
    for (const i of [0, 1, 2]) assert.equal((await publish(at(i), project, jwt))[0], 200);
  });

  it('a revocation whose control event never arrives is in force within PROJECT_REFRESH_MS (an instance on another Redis prefix), and closes the sockets it revokes there', async () => {
    const lone = await startTestServer({
      ...env,
      REDIS_PREFIX: `sb-test-${randomBytes(6).toString('hex')}:`,
      PROJECT_REFRESH_MS: String(LONE_REFRESH_MS),
    });
    servers.push(lone);
    const project = await at(0).createProject('lost');
    const alice = oldToken(project, 'alice');
    const bob = oldToken(project, 'bob');
    // The lone instance caches the project and the verified tokens first.
    assert.equal((await publish(lone, project, alice))[0], 200);
    assert.equal((await publish(lone, project, bob))[0], 200);
    const aliceSocket = await connect(lone, project.hash, alice);
    const bobSocket = await connect(lone, project.hash, bob);
    const [status] = await statusAndBody(
      await disconnect(at(0), project, { user: 'alice', revoke: true }),
    );
    assert.equal(status, 202);
    const startedAt = Date.now();
    await eventually(
      'the lone instance refuses the revoked token',
      async () => (await publish(lone, project, alice))[0] === 401,
      LONE_REFRESH_MS + 1000,
    );
    const took = Date.now() - startedAt;
    assert.ok(took <= LONE_REFRESH_MS + 250, `${took} ms`);
    await expectUnauthorized(lone, project, alice);
    await expectDisconnected(aliceSocket, 'the revoked socket on the lone instance');
    assert.deepEqual(await bobSocket.request({ type: 'ping' }), { type: 'pong' });
    await expectRefusedUrl(wsUrl(lone, project.hash, alice), 'Invalid token', 4001);
    assert.equal((await publish(lone, project, bob))[0], 200);
    const { jwt } = await mint(at(1), project, { sub: 'alice' });
    assert.equal((await publish(lone, project, jwt))[0], 200);
  });
});
