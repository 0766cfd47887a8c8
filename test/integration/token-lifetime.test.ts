/**
 * Token lifetime on open sockets: expiry closes them with 4002 on time, `refresh` moves the
 * deadline, and a refused refresh leaves the current token in force. JWT_CLOCK_TOLERANCE_S=0, so
 * that a deadline is the token's `exp` itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Frame, TestClient } from '../helpers/client.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
  unsignedToken,
} from '../helpers/server.js';
import { expectAlive, expectRefusedUrl, signClaims, statusAndBody, wsUrl } from '../helpers/ws.js';

const INVALID = 'Invalid token';
const EXPIRED = 'Token expired';

let server: TestServer;
let project: TestProject;
let other: TestProject;

before(async () => {
  server = await startTestServer({ JWT_CLOCK_TOLERANCE_S: '0' });
  project = await server.createProject('token-lifetime');
  other = await server.createProject('token-lifetime-other');
});
after(() => server.close());

/** A whole second at least `ahead` seconds from now, as a JWT `exp`. */
function expIn(ahead: number): number {
  return Math.ceil(Date.now() / 1000) + ahead;
}

function tokenOf(secret: string, sub: string, exp?: number, claims: object = {}): string {
  return signClaims(secret, exp === undefined ? { sub, ...claims } : { sub, exp, ...claims });
}

async function connect(token: string, hash = project.hash): Promise<TestClient> {
  return TestClient.connect(wsUrl(server, hash, token));
}

function untilTime(epochMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, epochMs - Date.now())));
}

/** When the server's expiry arrived (its error frame), and the close code that followed it. */
function watchExpiry(client: TestClient): Promise<{ at: number | undefined; code: number }> {
  let at: number | undefined;
  client.socket.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as Frame;
    // The server's own close carries no ref; a refused refresh's Token expired does.
    const closing = frame.type === 'error' && frame.message === EXPIRED && !('ref' in frame);
    if (at === undefined && closing) at = Date.now();
  });
  return client.closed.then(({ code }) => ({ at, code }));
}

/** The connection was closed for its token's `exp`: after it, within 1 s, error frame last. */
async function expectExpiredAt(
  client: TestClient,
  expiry: Promise<{ at: number | undefined; code: number }>,
  exp: number,
): Promise<void> {
  const { at, code } = await expiry;
  assert.equal(code, 4002);
  assert.deepEqual(client.frames.at(-1), { type: 'error', message: EXPIRED });
  assert.ok(at !== undefined, 'the Token expired frame came');
  assert.ok(at > exp * 1000, `expired at ${at}, before exp ${exp * 1000}`);
  assert.ok(at <= exp * 1000 + 1000, `expired at ${at}, more than 1 s after exp ${exp * 1000}`);
}

describe('Token lifetime: an open socket closes when its token expires (JWT_CLOCK_TOLERANCE_S=0)', {
  concurrency: true,
}, () => {
  it('a token with exp 2 s ahead works until exp, then gets {"type":"error","message":"Token expired"} and close 4002 within 1 s after exp, not before', async () => {
    const exp = expIn(2);
    const client = await connect(tokenOf(project.jwtSecret, 'alice', exp));
    const expiry = watchExpiry(client);
    await client.join('lifetime');
    await untilTime(exp * 1000 - 200);
    await expectAlive(client);
    await expectExpiredAt(client, expiry, exp);
    assert.deepEqual(client.drain(), [{ type: 'error', message: EXPIRED }]);
  });

  it('connections expiring in different seconds each close at their own exp; one without exp stays open', async () => {
    const forever = await connect(tokenOf(project.jwtSecret, 'forever'));
    const expiring = await Promise.all(
      [expIn(1), expIn(2), expIn(2)].map(async (exp, i) => {
        const client = await connect(tokenOf(project.jwtSecret, `user-${i}`, exp));
        return { client, exp, expiry: watchExpiry(client) };
      }),
    );
    await Promise.all(
      expiring.map(({ client, exp, expiry }) => expectExpiredAt(client, expiry, exp)),
    );
    await expectAlive(forever);
    forever.close();
  });

  it('a token expired by the time it reaches the server is refused at connect with Token expired, close 4002', async () => {
    const exp = expIn(0) - 1;
    await expectRefusedUrl(
      wsUrl(server, project.hash, tokenOf(project.jwtSecret, 'late', exp)),
      EXPIRED,
      4002,
    );
    const response = await server.api('POST', '/api/message', {
      hash: project.hash,
      token: tokenOf(project.jwtSecret, 'late', exp),
      body: { room: 'r', payload: 'p' },
    });
    assert.deepEqual(await statusAndBody(response), [401, { success: false, error: EXPIRED }]);
  });
});

describe('Token lifetime: refresh', { concurrency: true }, () => {
  it('refresh answers {"type":"refreshed","exp":EXP}, with the ref when the frame has one', async () => {
    const client = await connect(tokenOf(project.jwtSecret, 'alice', expIn(60)));
    const exp = expIn(120);
    assert.deepEqual(
      await client.request({ type: 'refresh', jwt: tokenOf(project.jwtSecret, 'alice', exp) }),
      { type: 'refreshed', exp },
    );
    assert.deepEqual(
      await client.request({
        type: 'refresh',
        jwt: tokenOf(project.jwtSecret, 'alice', exp + 1),
        ref: 'r1',
      }),
      { type: 'refreshed', exp: exp + 1, ref: 'r1' },
    );
    await expectAlive(client);
    client.close();
  });

  it('a refresh 1 s before exp keeps the socket open and working past the first exp; it then closes at the new exp', async () => {
    const first = expIn(2);
    const client = await connect(tokenOf(project.jwtSecret, 'alice', first));
    const expiry = watchExpiry(client);
    await client.join('refreshed-room');
    await untilTime(first * 1000 - 1000);
    const second = first + 2;
    assert.deepEqual(
      await client.request({
        type: 'refresh',
        jwt: tokenOf(project.jwtSecret, 'alice', second),
        ref: 7,
      }),
      { type: 'refreshed', exp: second, ref: 7 },
    );
    await untilTime(first * 1000 + 1200);
    client.send({ type: 'message', room: 'refreshed-room', payload: 'past the first exp' });
    const [delivered] = await client.collect('message', 1);
    assert.equal(delivered?.payload, 'past the first exp');
    await expectExpiredAt(client, expiry, second);
  });

  it('a refresh with a token without exp removes the deadline: {"type":"refreshed","exp":null}, open past the old exp', async () => {
    const exp = expIn(1);
    const client = await connect(tokenOf(project.jwtSecret, 'alice', exp));
    assert.deepEqual(
      await client.request({ type: 'refresh', jwt: tokenOf(project.jwtSecret, 'alice') }),
      { type: 'refreshed', exp: null },
    );
    await untilTime(exp * 1000 + 1200);
    await expectAlive(client);
    assert.equal(client.closeCode, undefined);
    client.close();
  });

  it('each refused refresh gets its error with the ref, and the connection keeps working until its own deadline', async () => {
    const exp = expIn(3);
    const client = await connect(tokenOf(project.jwtSecret, 'alice', exp));
    const expiry = watchExpiry(client);
    await client.join('kept');
    const later = exp + 60;
    const valid = tokenOf(project.jwtSecret, 'alice', later);
    const [header, payload] = valid.split('.');
    const refused: [string, unknown, string][] = [
      ['another sub', tokenOf(project.jwtSecret, 'mallory', later), INVALID],
      ['another project', tokenOf(other.jwtSecret, 'alice', later), INVALID],
      ['a wrong secret', tokenOf('not-the-secret', 'alice', later), INVALID],
      ['a bad signature', `${header}.${payload}.${'A'.repeat(43)}`, INVALID],
      ['alg none', unsignedToken('alice'), INVALID],
      ['an expired token', tokenOf(project.jwtSecret, 'alice', expIn(0) - 10), EXPIRED],
      ['malformed claims', tokenOf(project.jwtSecret, 'alice', later, { rooms: 'kept' }), INVALID],
      ['not a JWT', 'garbage', INVALID],
      ['an empty jwt', '', INVALID],
      ['a numeric jwt', 42, INVALID],
      ['a missing jwt', undefined, INVALID],
    ];
    for (const [what, jwt, message] of refused) {
      const frame =
        jwt === undefined ? { type: 'refresh', ref: what } : { type: 'refresh', jwt, ref: what };
      assert.deepEqual(await client.request(frame), { type: 'error', message, ref: what }, what);
      await expectAlive(client);
    }
    client.send({ type: 'message', room: 'kept', payload: 'still the old token' });
    const [delivered] = await client.collect('message', 1);
    assert.equal(delivered?.payload, 'still the old token');
    await expectExpiredAt(client, expiry, exp);
  });

  it('after a rotation the socket stays open; a refresh signed with the old secret is refused, one signed with the new secret is accepted', async () => {
    const rotated = await server.createProject('token-lifetime-rotated');
    const exp = expIn(2);
    const client = await connect(tokenOf(rotated.jwtSecret, 'alice', exp), rotated.hash);
    const response = await server.admin('POST', `/admin/projects/${rotated.hash}/rotate-secret`);
    const { jwtSecret } = (await response.json()) as { jwtSecret: string };
    await expectAlive(client);
    const later = exp + 60;
    assert.deepEqual(
      await client.request({ type: 'refresh', jwt: tokenOf(rotated.jwtSecret, 'alice', later) }),
      { type: 'error', message: INVALID },
    );
    await expectAlive(client);
    assert.deepEqual(
      await client.request({ type: 'refresh', jwt: tokenOf(jwtSecret, 'alice', later) }),
      { type: 'refreshed', exp: later },
    );
    await untilTime(exp * 1000 + 1200);
    await expectAlive(client);
    client.close();
  });
});

describe('Token lifetime: REQUIRE_EXP', () => {
  let strict: TestServer;
  let strictProject: TestProject;

  before(async () => {
    strict = await startTestServer({ JWT_CLOCK_TOLERANCE_S: '0', REQUIRE_EXP: 'true' });
    strictProject = await strict.createProject('require-exp');
  });
  after(() => strict.close());

  it('a token without exp is Invalid token: close 4001 over WebSocket, 401 over HTTP; one with exp is accepted', async () => {
    const forever = await signToken(strictProject.jwtSecret, 'alice');
    await expectRefusedUrl(wsUrl(strict, strictProject.hash, forever), INVALID, 4001);
    const refusedCall = await strict.api('POST', '/api/message', {
      hash: strictProject.hash,
      token: forever,
      body: { room: 'r', payload: 'p' },
    });
    assert.deepEqual(await statusAndBody(refusedCall), [401, { success: false, error: INVALID }]);
    const expiring = await signToken(strictProject.jwtSecret, 'alice', { expiresIn: '1h' });
    const client = await TestClient.connect(wsUrl(strict, strictProject.hash, expiring));
    await expectAlive(client);
    const acceptedCall = await strict.api('POST', '/api/message', {
      hash: strictProject.hash,
      token: expiring,
      body: { room: 'r', payload: 'p' },
    });
    assert.equal(acceptedCall.status, 200);
    client.close();
  });

  it('a refresh with a token without exp is Invalid token, and the connection keeps its deadline', async () => {
    const exp = expIn(2);
    const client = await TestClient.connect(
      wsUrl(strict, strictProject.hash, tokenOf(strictProject.jwtSecret, 'alice', exp)),
    );
    const expiry = watchExpiry(client);
    assert.deepEqual(
      await client.request({ type: 'refresh', jwt: tokenOf(strictProject.jwtSecret, 'alice') }),
      { type: 'error', message: INVALID },
    );
    await expectAlive(client);
    await expectExpiredAt(client, expiry, exp);
  });
});
