/**
 * Room permissions from a token's optional claims (`rooms`, `publish`, `broadcast`), on WebSocket
 * and HTTP, at step 9 of the check order; and what a refresh changes of them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { startTestServer, type TestProject, type TestServer } from '../helpers/server.js';
import {
  expectAlive,
  expectRefusedUrl,
  nowSeconds,
  signClaims,
  statusAndBody,
  wsUrl,
} from '../helpers/ws.js';

const NOT_ALLOWED = 'Not allowed';
const INVALID = 'Invalid token';
const ROOMS = ['chat:*', 'lobby'];
const ALLOWED = ['chat:1', 'chat:', 'lobby'];
const REFUSED = ['general', 'chat', 'lobby2', 'Chat:1'];

let server: TestServer;
let project: TestProject;

before(async () => {
  server = await startTestServer({ JWT_CLOCK_TOLERANCE_S: '0', MAX_ROOMS_PER_CONNECTION: '3' });
  project = await server.createProject('room-permissions');
});
after(() => server.close());

function tokenFor(sub: string, claims: Record<string, unknown> = {}): string {
  return signClaims(project.jwtSecret, { sub, exp: nowSeconds() + 3600, ...claims });
}

function connect(sub: string, claims: Record<string, unknown> = {}): Promise<TestClient> {
  return TestClient.connect(wsUrl(server, project.hash, tokenFor(sub, claims)));
}

function call(
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<[number, unknown]> {
  return server.api(method, path, { hash: project.hash, token, body }).then(statusAndBody);
}

const notAllowed = [403, { success: false, error: NOT_ALLOWED }];

describe('Room permissions over WebSocket: rooms ["chat:*","lobby"]', () => {
  it('joins of matching rooms are answered joined; others get Not allowed with the ref, and the connection keeps working', async () => {
    for (const room of ALLOWED) {
      const client = await connect('alice', { rooms: ROOMS });
      assert.deepEqual(await client.request({ type: 'join', room, ref: room }), {
        type: 'joined',
        room,
        seq: 0,
        ref: room,
      });
      client.close();
    }
    const client = await connect('alice', { rooms: ROOMS });
    for (const room of REFUSED) {
      assert.deepEqual(await client.request({ type: 'join', room, ref: room }), {
        type: 'error',
        message: NOT_ALLOWED,
        ref: room,
      });
      assert.deepEqual(await client.request({ type: 'join', room }), {
        type: 'error',
        message: NOT_ALLOWED,
      });
    }
    await expectAlive(client);
    client.close();
  });

  it('messages and presence frames for a refused room get Not allowed (before the membership check); nothing is stored or delivered there', async () => {
    const watcher = await connect('watcher');
    await watcher.join('general');
    const client = await connect('alice', { rooms: ROOMS });
    assert.deepEqual(
      await client.request({ type: 'message', room: 'general', payload: 'sneaky', ref: 1 }),
      { type: 'error', message: NOT_ALLOWED, ref: 1 },
    );
    assert.deepEqual(await client.request({ type: 'presence', room: 'general', ref: 2 }), {
      type: 'error',
      message: NOT_ALLOWED,
      ref: 2,
    });
    // An allowed room that is not joined still gets the membership error.
    assert.deepEqual(await client.request({ type: 'message', room: 'lobby', payload: 'x' }), {
      type: 'error',
      message: 'You must join the room first',
    });
    await client.join('chat:1');
    client.send({ type: 'message', room: 'chat:1', payload: 'allowed', ref: 3 });
    const [ack] = await client.collect('ack', 1);
    assert.equal(ack?.ref, 3);
    await client.collect('message', 1);
    client.drain();
    const presence = await client.request({ type: 'presence', room: 'chat:1' }, 'presence');
    assert.equal(presence.count, 1);
    await watcher.expectSilence();
    assert.deepEqual(await call('GET', '/api/rooms/general/messages', tokenFor('watcher')), [
      200,
      { messages: [] },
    ]);
    watcher.close();
    client.close();
  });

  it('step 9 comes after Room name too long and before Too many rooms', async () => {
    const client = await connect('alice', { rooms: ROOMS });
    assert.deepEqual(await client.request({ type: 'join', room: 'x'.repeat(257) }), {
      type: 'error',
      message: 'Room name too long',
    });
    assert.deepEqual(await client.request({ type: 'join', room: 'general', since: -1 }), {
      type: 'error',
      message: 'Invalid since',
    });
    for (const room of ALLOWED) await client.join(room);
    // MAX_ROOMS_PER_CONNECTION=3 is reached: a refused room is still Not allowed.
    assert.deepEqual(await client.request({ type: 'join', room: 'general' }), {
      type: 'error',
      message: NOT_ALLOWED,
    });
    assert.deepEqual(await client.request({ type: 'join', room: 'chat:2' }), {
      type: 'error',
      message: 'Too many rooms',
    });
    client.close();
  });

  it('leave is never refused: a room the claims do not match answers left', async () => {
    const client = await connect('alice', { rooms: ROOMS });
    assert.deepEqual(await client.request({ type: 'leave', room: 'general', ref: 'l' }), {
      type: 'left',
      room: 'general',
      ref: 'l',
    });
    client.close();
  });

  it('rooms [] opens no room; "*" opens every room', async () => {
    const none = await connect('alice', { rooms: [] });
    for (const room of ['lobby', 'chat:1', '*']) {
      assert.deepEqual(await none.request({ type: 'join', room }), {
        type: 'error',
        message: NOT_ALLOWED,
      });
    }
    none.close();
    const every = await connect('alice', { rooms: ['*'] });
    for (const room of ['general', 'chat:1']) await every.join(room);
    every.close();
  });
});

describe('Room permissions over HTTP: rooms ["chat:*","lobby"]', () => {
  const token = (): string => tokenFor('alice', { rooms: ROOMS });

  it('POST /api/message to a matching room → 200 and delivered; to another room → 403 Not allowed, not stored', async () => {
    const member = await connect('member');
    await member.join('chat:http');
    await member.join('general');
    const [status, body] = await call('POST', '/api/message', token(), {
      room: 'chat:http',
      payload: 'allowed',
    });
    assert.equal(status, 200);
    assert.equal((body as { success: boolean }).success, true);
    const [delivered] = await member.collect('message', 1);
    assert.equal(delivered?.payload, 'allowed');
    for (const room of REFUSED) {
      assert.deepEqual(
        await call('POST', '/api/message', token(), { room, payload: 'refused' }),
        notAllowed,
        room,
      );
    }
    await member.exactly('message', 1);
    assert.deepEqual(await call('GET', '/api/rooms/general/messages', tokenFor('member')), [
      200,
      { messages: [] },
    ]);
    member.close();
  });

  it('history and presence of a matching room → 200; of another room → 403 Not allowed', async () => {
    await call('POST', '/api/message', tokenFor('bob'), { room: 'lobby', payload: 'hello' });
    const [historyStatus, history] = await call('GET', '/api/rooms/lobby/messages', token());
    assert.equal(historyStatus, 200);
    assert.equal((history as { messages: { payload: string }[] }).messages[0]?.payload, 'hello');
    assert.deepEqual(await call('GET', '/api/rooms/lobby/presence', token()), [
      200,
      { users: [], count: 0 },
    ]);
    for (const room of REFUSED) {
      const path = encodeURIComponent(room);
      assert.deepEqual(await call('GET', `/api/rooms/${path}/messages`, token()), notAllowed);
      assert.deepEqual(await call('GET', `/api/rooms/${path}/presence`, token()), notAllowed);
    }
  });

  it('the body and query are checked before Not allowed (400 first), the token before both (401)', async () => {
    assert.deepEqual(await call('POST', '/api/message', token(), { room: 'general' }), [
      400,
      { success: false, error: 'Payload required' },
    ]);
    assert.deepEqual(await call('GET', '/api/rooms/general/messages?limit=0', token()), [
      400,
      { success: false, error: 'Limit must be a positive integer' },
    ]);
    assert.deepEqual(await call('GET', '/api/rooms/general/presence?limit=x', token()), [
      400,
      { success: false, error: 'Limit must be a positive integer' },
    ]);
    assert.deepEqual(
      await call('POST', '/api/message', 'garbage', { room: 'general', payload: 'p' }),
      [401, { success: false, error: INVALID }],
    );
  });

  it('rooms claims do not limit broadcasts: POST /api/broadcast → 200', async () => {
    assert.deepEqual(await call('POST', '/api/broadcast', token(), { payload: 'all' }), [
      200,
      { success: true },
    ]);
  });
});

describe('Room permissions over HTTP: Not allowed comes before the per-user rate limit', () => {
  let limited: TestServer;
  let limitedProject: TestProject;

  before(async () => {
    limited = await startTestServer({ RATE_LIMIT: '1', RATE_BURST: '1' });
    limitedProject = await limited.createProject('room-permissions-rate');
  });
  after(() => limited.close());

  it('with the bucket spent, a refused room still answers 403 Not allowed, an allowed one 429', async () => {
    const token = signClaims(limitedProject.jwtSecret, { sub: 'alice', rooms: ['lobby'] });
    const post = (room: string) =>
      limited
        .api('POST', '/api/message', {
          hash: limitedProject.hash,
          token,
          body: { room, payload: 'p' },
        })
        .then(statusAndBody);
    assert.equal((await post('lobby'))[0], 200);
    assert.deepEqual(await post('general'), notAllowed);
    const history = await limited.api('GET', '/api/rooms/general/messages', {
      hash: limitedProject.hash,
      token,
    });
    assert.deepEqual(await statusAndBody(history), notAllowed);
    assert.deepEqual(await post('lobby'), [429, { success: false, error: 'Rate limit exceeded' }]);
  });
});

describe('Room permissions: publish and broadcast claims', () => {
  it('publish:false: messages get Not allowed on WebSocket (also in a joined room) and 403 over HTTP; joins, history, presence and broadcasts work', async () => {
    const client = await connect('quiet', { publish: false });
    await client.join('quiet-room');
    assert.deepEqual(
      await client.request({ type: 'message', room: 'quiet-room', payload: 'x', ref: 'm' }),
      { type: 'error', message: NOT_ALLOWED, ref: 'm' },
    );
    const presence = await client.request({ type: 'presence', room: 'quiet-room' }, 'presence');
    assert.equal(presence.count, 1);
    client.send({ type: 'broadcast', payload: 'allowed', ref: 'b' });
    assert.deepEqual((await client.collect('ack', 1))[0], { type: 'ack', ref: 'b' });
    const token = tokenFor('quiet', { publish: false });
    assert.deepEqual(
      await call('POST', '/api/message', token, { room: 'quiet-room', payload: 'x' }),
      notAllowed,
    );
    assert.equal((await call('GET', '/api/rooms/quiet-room/messages', token))[0], 200);
    assert.equal((await call('GET', '/api/rooms/quiet-room/presence', token))[0], 200);
    assert.deepEqual(await call('POST', '/api/broadcast', token, { payload: 'p' }), [
      200,
      { success: true },
    ]);
    client.close();
  });

  it('broadcast:false: broadcasts get Not allowed on WebSocket and 403 over HTTP, and reach nobody; messages work', async () => {
    const listener = await connect('listener');
    const client = await connect('muted', { broadcast: false });
    assert.deepEqual(await client.request({ type: 'broadcast', payload: 'x', ref: 5 }), {
      type: 'error',
      message: NOT_ALLOWED,
      ref: 5,
    });
    const token = tokenFor('muted', { broadcast: false });
    assert.deepEqual(await call('POST', '/api/broadcast', token, { payload: 'x' }), notAllowed);
    await client.join('muted-room');
    client.send({ type: 'message', room: 'muted-room', payload: 'fine' });
    assert.equal((await client.collect('message', 1))[0]?.payload, 'fine');
    assert.equal(
      (await call('POST', '/api/message', token, { room: 'muted-room', payload: 'y' }))[0],
      200,
    );
    await listener.expectSilence();
    listener.close();
    client.close();
  });
});

describe('Room permissions: claims of the wrong shape', () => {
  const MALFORMED: Record<string, unknown>[] = [
    { rooms: 'chat:*' },
    { rooms: [1] },
    { rooms: ['lobby', null] },
    { rooms: {} },
    { publish: 'no' },
    { publish: 0 },
    { broadcast: 1 },
    { broadcast: 'false' },
  ];

  for (const claims of MALFORMED) {
    it(`${JSON.stringify(claims)} is refused at connect (Invalid token, close 4001) and over HTTP (401)`, async () => {
      await expectRefusedUrl(wsUrl(server, project.hash, tokenFor('alice', claims)), INVALID, 4001);
      assert.deepEqual(
        await call('POST', '/api/message', tokenFor('alice', claims), {
          room: 'lobby',
          payload: 'p',
        }),
        [401, { success: false, error: INVALID }],
      );
    });
  }

  it('at refresh they are Invalid token, and the connection keeps its current claims', async () => {
    const client = await connect('alice', { rooms: ['lobby'] });
    for (const claims of MALFORMED) {
      assert.deepEqual(
        await client.request({ type: 'refresh', jwt: tokenFor('alice', claims), ref: 'r' }),
        { type: 'error', message: INVALID, ref: 'r' },
      );
    }
    await client.join('lobby');
    assert.deepEqual(await client.request({ type: 'join', room: 'general' }), {
      type: 'error',
      message: NOT_ALLOWED,
    });
    client.close();
  });
});

describe('Room permissions: a refresh changes them', () => {
  it('a narrowing refresh keeps the rooms already joined (deliveries go on, leave answers left) while new frames follow the new claims', async () => {
    const client = await connect('alice', { rooms: ROOMS });
    const sender = await connect('sender');
    await client.join('chat:1');
    await client.join('lobby');
    await sender.join('chat:1');
    const exp = nowSeconds() + 600;
    assert.deepEqual(
      await client.request({ type: 'refresh', jwt: tokenFor('alice', { rooms: ['lobby'], exp }) }),
      { type: 'refreshed', exp },
    );
    sender.send({ type: 'message', room: 'chat:1', payload: 'still joined' });
    assert.equal((await client.collect('message', 1))[0]?.payload, 'still joined');
    client.drain();
    for (const frame of [
      { type: 'message', room: 'chat:1', payload: 'no longer' },
      { type: 'presence', room: 'chat:1' },
      { type: 'join', room: 'chat:2' },
    ]) {
      assert.deepEqual(await client.request(frame), { type: 'error', message: NOT_ALLOWED });
    }
    client.send({ type: 'message', room: 'lobby', payload: 'lobby still open' });
    assert.equal((await client.collect('message', 1))[0]?.payload, 'lobby still open');
    client.drain();
    assert.deepEqual(await client.request({ type: 'leave', room: 'chat:1' }), {
      type: 'left',
      room: 'chat:1',
    });
    sender.send({ type: 'message', room: 'chat:1', payload: 'after leave' });
    await sender.collect('message', 2);
    await client.expectSilence();
    sender.close();
    client.close();
  });

  it('a widening refresh applies to the frame sent right after it, without waiting for the answer', async () => {
    const client = await connect('alice', { rooms: [], publish: false, broadcast: false });
    client.send({ type: 'refresh', jwt: tokenFor('alice'), ref: 'r' });
    client.send({ type: 'join', room: 'widened', ref: 'j' });
    client.send({ type: 'message', room: 'widened', payload: 'now allowed', ref: 'm' });
    client.send({ type: 'broadcast', payload: 'now allowed too', ref: 'b' });
    assert.equal((await client.next()).type, 'refreshed');
    assert.deepEqual(await client.next(), { type: 'joined', room: 'widened', seq: 0, ref: 'j' });
    const answers = await client.collect('ack', 2);
    assert.deepEqual(answers.map((frame) => frame.ref).sort(), ['b', 'm']);
    client.close();
  });
});
