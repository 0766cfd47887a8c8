import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import { TestClient } from '../helpers/client.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
  unsignedToken,
} from '../helpers/server.js';
import {
  connectAs,
  expectAlive,
  expectRefused,
  expectRefusedUrl,
  nowSeconds,
  openClient,
  signClaims,
  statusAndBody,
  wsUrl,
} from '../helpers/ws.js';

const INVALID = 'Invalid token';
const EXPIRED = 'Token expired';
const UNKNOWN = 'Unknown project';

let server: TestServer;
let project: TestProject;
let other: TestProject;

before(async () => {
  server = await startTestServer();
  project = await server.createProject('ws-auth');
  other = await server.createProject('ws-auth-other');
});
after(() => server.close());

async function asymmetricToken(alg: 'RS256' | 'ES256'): Promise<string> {
  const { privateKey } = await generateKeyPair(alg);
  return new SignJWT({}).setProtectedHeader({ alg }).setSubject('alice').sign(privateKey);
}

/** A token the server must refuse, the message it must say, and the WebSocket close code. */
interface BadToken {
  what: string;
  token: () => Promise<string | undefined>;
  message: string;
  code: number;
  status: number;
}

const BAD_TOKENS: BadToken[] = [
  {
    what: 'a missing jwt',
    token: async () => undefined,
    message: INVALID,
    code: 4001,
    status: 401,
  },
  { what: 'an empty jwt', token: async () => '', message: INVALID, code: 4001, status: 401 },
  {
    what: 'a malformed jwt',
    token: async () => 'not.a.jwt',
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'a jwt with a tampered payload',
    token: async () => {
      const [header, , signature] = (await signToken(project.jwtSecret, 'alice')).split('.');
      const payload = Buffer.from(JSON.stringify({ sub: 'mallory' })).toString('base64url');
      return `${header}.${payload}.${signature}`;
    },
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'a jwt signed with the wrong secret',
    token: () => signToken('not-the-secret', 'alice'),
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'an alg: none jwt',
    token: async () => unsignedToken('alice'),
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'an RS256-signed jwt',
    token: () => asymmetricToken('RS256'),
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'an ES256-signed jwt',
    token: () => asymmetricToken('ES256'),
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'a jwt without sub',
    token: () => signToken(project.jwtSecret, undefined),
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'a jwt with an empty sub',
    token: async () => signClaims(project.jwtSecret, { sub: '' }),
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'a jwt with a numeric sub',
    token: async () => signClaims(project.jwtSecret, { sub: 42 }),
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'a jwt not valid before a minute from now (nbf)',
    token: () => signToken(project.jwtSecret, 'alice', { notBefore: nowSeconds() + 60 }),
    message: INVALID,
    code: 4001,
    status: 401,
  },
  {
    what: 'a jwt expired a minute ago',
    token: () => signToken(project.jwtSecret, 'alice', { expiresIn: nowSeconds() - 60 }),
    message: EXPIRED,
    code: 4002,
    status: 401,
  },
  {
    what: 'a jwt of another project',
    token: () => signToken(other.jwtSecret, 'alice'),
    message: INVALID,
    code: 4001,
    status: 401,
  },
];

describe('WebSocket: refused tokens get an error frame, then a close code', () => {
  for (const bad of BAD_TOKENS) {
    it(`${bad.what} → {"type":"error","message":"${bad.message}"}, close ${bad.code}`, async () => {
      await expectRefusedUrl(wsUrl(server, project.hash, await bad.token()), bad.message, bad.code);
    });
  }

  it(`an unknown project hash → {"type":"error","message":"${UNKNOWN}"}, close 4004`, async () => {
    const token = await signToken(project.jwtSecret, 'alice');
    await expectRefusedUrl(wsUrl(server, 'no-such-project', token), UNKNOWN, 4004);
  });

  it('an unknown project hash with a bad token → Unknown project, close 4004', async () => {
    await expectRefusedUrl(wsUrl(server, 'no-such-project', 'garbage'), UNKNOWN, 4004);
  });

  it('frames sent before the refusal are neither delivered nor stored', async () => {
    const bob = await connectAs(server, project, 'bob');
    await bob.join('guarded');
    for (const bad of BAD_TOKENS) {
      const client = await openClient(wsUrl(server, project.hash, await bad.token()));
      client.send({ type: 'join', room: 'guarded' });
      client.send({ type: 'message', room: 'guarded', payload: `from ${bad.what}` });
      client.send({ type: 'broadcast', payload: `from ${bad.what}` });
      await expectRefused(client, bad.message, bad.code);
    }
    await bob.expectSilence();
    const response = await server.api('GET', '/api/rooms/guarded/messages', {
      hash: project.hash,
      token: await signToken(project.jwtSecret, 'bob'),
    });
    assert.deepEqual(await statusAndBody(response), [200, { messages: [] }]);
    bob.close();
  });
});

describe('WebSocket: accepted tokens', () => {
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    it(`a ${alg} token signed with the project secret is accepted`, async () => {
      const token = await signToken(project.jwtSecret, 'alice', { alg });
      const client = await TestClient.connect(wsUrl(server, project.hash, token));
      assert.equal(client.frames[0]?.user, 'alice');
      await expectAlive(client);
      client.close();
    });
  }

  it('a token expired 2 seconds ago is accepted (clock tolerance)', async () => {
    const token = await signToken(project.jwtSecret, 'alice', { expiresIn: nowSeconds() - 2 });
    const client = await TestClient.connect(wsUrl(server, project.hash, token));
    assert.equal(client.frames[0]?.user, 'alice');
    client.close();
  });

  it('a token valid from 2 seconds from now is accepted (clock tolerance)', async () => {
    const token = await signToken(project.jwtSecret, 'alice', { notBefore: nowSeconds() + 2 });
    const client = await TestClient.connect(wsUrl(server, project.hash, token));
    assert.equal(client.frames[0]?.user, 'alice');
    client.close();
  });

  it('a socket whose token expires while it is open works until exp + the default 5 s tolerance, then gets Token expired and close 4002', async () => {
    // Accepted within the tolerance, then past it a moment later.
    const exp = nowSeconds() - 4;
    const token = await signToken(project.jwtSecret, 'alice', { expiresIn: exp });
    const client = await TestClient.connect(wsUrl(server, project.hash, token));
    await client.join('before-expiry');
    client.send({ type: 'message', room: 'before-expiry', payload: 'still here' });
    const [frame] = await client.collect('message', 1);
    assert.equal(frame?.payload, 'still here');
    const { code } = await client.waitClosed();
    const closedAt = Date.now();
    assert.equal(code, 4002);
    assert.deepEqual(client.frames.at(-1), { type: 'error', message: EXPIRED });
    assert.ok(closedAt > (exp + 5) * 1000, `closed at ${closedAt}, exp + 5 s ${(exp + 5) * 1000}`);
    assert.ok(closedAt <= (exp + 6) * 1000 + 100, `closed at ${closedAt}`);
    await expectRefusedUrl(wsUrl(server, project.hash, token), 'Token expired', 4002);
  });

  it('a token with a future exp is accepted and its sub becomes the user', async () => {
    const token = await signToken(project.jwtSecret, 'ünïcødé 😀', { expiresIn: '1h' });
    const client = await TestClient.connect(wsUrl(server, project.hash, token));
    assert.equal(client.frames[0]?.user, 'ünïcødé 😀');
    client.close();
  });
});

describe('HTTP POST /api/message: the same refusals', () => {
  const post = (hash: string | undefined, token: string | undefined): Promise<Response> =>
    server.api('POST', '/api/message', { hash, token, body: { room: 'http', payload: 'x' } });

  for (const bad of BAD_TOKENS) {
    it(`${bad.what} → ${bad.status} {"success":false,"error":"${bad.message}"}`, async () => {
      assert.deepEqual(await statusAndBody(await post(project.hash, await bad.token())), [
        bad.status,
        { success: false, error: bad.message },
      ]);
    });
  }

  it('a Bearer scheme missing from Authorization → 401 Invalid token', async () => {
    const response = await fetch(`${server.url}/api/message`, {
      method: 'POST',
      headers: {
        'x-hash': project.hash,
        authorization: await signToken(project.jwtSecret, 'alice'),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ room: 'http', payload: 'x' }),
    });
    assert.deepEqual(await statusAndBody(response), [401, { success: false, error: INVALID }]);
  });

  for (const alg of ['HS256', 'HS384', 'HS512']) {
    it(`a ${alg} token is accepted → 200`, async () => {
      const response = await post(project.hash, await signToken(project.jwtSecret, 'a', { alg }));
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { success: boolean }).success, true);
    });
  }

  it('an unknown hash → 404 Unknown project', async () => {
    const token = await signToken(project.jwtSecret, 'alice');
    assert.deepEqual(await statusAndBody(await post('no-such-project', token)), [
      404,
      { success: false, error: UNKNOWN },
    ]);
  });

  it('a missing x-hash → 400 Project hash required', async () => {
    const token = await signToken(project.jwtSecret, 'alice');
    assert.deepEqual(await statusAndBody(await post(undefined, token)), [
      400,
      { success: false, error: 'Project hash required' },
    ]);
  });

  it('a missing x-hash and a bad token → 400 (the hash is checked first)', async () => {
    assert.deepEqual(await statusAndBody(await post(undefined, 'garbage')), [
      400,
      { success: false, error: 'Project hash required' },
    ]);
  });

  it('an unknown hash and a bad token → 404 (the project is checked before the token)', async () => {
    assert.deepEqual(await statusAndBody(await post('no-such-project', 'garbage')), [
      404,
      { success: false, error: UNKNOWN },
    ]);
  });

  it('a bad token and a bad body → 401 (the token is checked before the body)', async () => {
    const response = await server.api('POST', '/api/message', {
      hash: project.hash,
      token: 'garbage',
      rawBody: 'not json',
    });
    assert.deepEqual(await statusAndBody(response), [401, { success: false, error: INVALID }]);
  });

  it('refused calls deliver nothing and store nothing', async () => {
    const bob = await connectAs(server, project, 'bob');
    await bob.join('http-guarded');
    for (const bad of BAD_TOKENS) {
      const response = await server.api('POST', '/api/message', {
        hash: project.hash,
        token: await bad.token(),
        body: { room: 'http-guarded', payload: `from ${bad.what}` },
      });
      assert.equal(response.status, bad.status);
      const broadcast = await server.api('POST', '/api/broadcast', {
        hash: project.hash,
        token: await bad.token(),
        body: { room: 'http-guarded', payload: `from ${bad.what}` },
      });
      assert.equal(broadcast.status, bad.status);
    }
    await bob.expectSilence();
    const response = await server.api('GET', '/api/rooms/http-guarded/messages', {
      hash: project.hash,
      token: await signToken(project.jwtSecret, 'bob'),
    });
    assert.deepEqual(await statusAndBody(response), [200, { messages: [] }]);
    bob.close();
  });
});

describe('rotating a project secret', () => {
  it('refuses old tokens for new sockets and HTTP calls, keeps open sockets working, accepts new tokens', async () => {
    const rotating = await server.createProject('rotating');
    const oldToken = await signToken(rotating.jwtSecret, 'alice');
    const alice = await TestClient.connect(wsUrl(server, rotating.hash, oldToken));
    await alice.join('r');
    // The old token works over HTTP before the rotation (and is cached by the server).
    const beforeRotation = await server.api('POST', '/api/message', {
      hash: rotating.hash,
      token: oldToken,
      body: { room: 'r', payload: 'before' },
    });
    assert.equal(beforeRotation.status, 200);
    await alice.collect('message', 1);
    alice.drain();

    const rotated = await server.admin('POST', `/admin/projects/${rotating.hash}/rotate-secret`);
    assert.equal(rotated.status, 200);
    const body = (await rotated.json()) as { hash: string; jwtSecret: string };
    assert.deepEqual(Object.keys(body).sort(), ['hash', 'jwtSecret']);
    assert.equal(body.hash, rotating.hash);
    assert.equal(typeof body.jwtSecret, 'string');
    assert.notEqual(body.jwtSecret, rotating.jwtSecret);

    await expectRefusedUrl(wsUrl(server, rotating.hash, oldToken), INVALID, 4001);
    const oldHttp = await server.api('POST', '/api/message', {
      hash: rotating.hash,
      token: oldToken,
      body: { room: 'r', payload: 'with the old secret' },
    });
    assert.deepEqual(await statusAndBody(oldHttp), [401, { success: false, error: INVALID }]);

    // The socket opened before the rotation stays open and working.
    await expectAlive(alice);
    alice.send({ type: 'message', room: 'r', payload: 'still here' });
    const [own] = await alice.collect('message', 1);
    assert.equal(own?.payload, 'still here');
    alice.drain();

    const newToken = await signToken(body.jwtSecret, 'bob');
    const bob = await TestClient.connect(wsUrl(server, rotating.hash, newToken));
    await bob.join('r');
    const newHttp = await server.api('POST', '/api/message', {
      hash: rotating.hash,
      token: newToken,
      body: { room: 'r', payload: 'with the new secret' },
    });
    assert.equal(newHttp.status, 200);
    for (const client of [alice, bob]) {
      const [frame] = await client.collect('message', 1);
      assert.equal(frame?.payload, 'with the new secret');
      assert.equal(frame?.from, 'bob');
      client.drain();
    }
    const history = await server.api('GET', '/api/rooms/r/messages', {
      hash: rotating.hash,
      token: newToken,
    });
    const { messages } = (await history.json()) as { messages: { payload: string }[] };
    assert.deepEqual(
      messages.map((message) => message.payload),
      ['before', 'still here', 'with the new secret'],
    );
    assert.equal(alice.closeCode, undefined);
    alice.close();
    bob.close();
  });

  it('rotating an unknown project → 404', async () => {
    const response = await server.admin('POST', '/admin/projects/no-such-project/rotate-secret');
    assert.deepEqual(await statusAndBody(response), [404, { success: false, error: UNKNOWN }]);
  });
});

describe('deleting a project', () => {
  it('closes its open sockets with 4004, and its history goes with it', async () => {
    const doomed = await server.createProject('doomed');
    const token = await signToken(doomed.jwtSecret, 'alice');
    const alice = await TestClient.connect(wsUrl(server, doomed.hash, token));
    const idle = await connectAs(server, doomed, 'idle');
    const bystander = await connectAs(server, other, 'bystander');
    await alice.join('r');
    alice.send({ type: 'message', room: 'r', payload: 'soon gone' });
    await alice.collect('message', 1);
    const historyBefore = await server.api('GET', '/api/rooms/r/messages', {
      hash: doomed.hash,
      token,
    });
    assert.equal(((await historyBefore.json()) as { messages: unknown[] }).messages.length, 1);

    const deleted = await server.admin('DELETE', `/admin/projects/${doomed.hash}`);
    assert.equal(deleted.status, 204);
    assert.equal((await alice.waitClosed()).code, 4004);
    assert.equal((await idle.waitClosed()).code, 4004);

    const historyAfter = await server.api('GET', '/api/rooms/r/messages', {
      hash: doomed.hash,
      token,
    });
    assert.deepEqual(await statusAndBody(historyAfter), [404, { success: false, error: UNKNOWN }]);
    await expectRefusedUrl(wsUrl(server, doomed.hash, token), UNKNOWN, 4004);
    const adminGet = await server.admin('GET', `/admin/projects/${doomed.hash}`);
    assert.equal(adminGet.status, 404);

    const reborn = await server.createProject('doomed');
    assert.notEqual(reborn.hash, doomed.hash);
    const rebornHistory = await server.api('GET', '/api/rooms/r/messages', {
      hash: reborn.hash,
      token: await signToken(reborn.jwtSecret, 'alice'),
    });
    assert.deepEqual(await statusAndBody(rebornHistory), [200, { messages: [] }]);

    // Another project's sockets are untouched.
    await expectAlive(bystander);
    bystander.close();
  });

  it('deleting an unknown project → 404', async () => {
    const response = await server.admin('DELETE', '/admin/projects/no-such-project');
    assert.deepEqual(await statusAndBody(response), [404, { success: false, error: UNKNOWN }]);
  });
});
