import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { backoffDelay, SocketBaseError } from '@socket-base/client';
import WebSocket from 'ws';
import { nextError, Received, sdkClient, waitState } from '../helpers/sdk.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { nowSeconds, signClaims } from '../helpers/ws.js';

describe('the SDK against a real server', () => {
  let server: TestServer;
  let project: TestProject;
  const token = (sub: string): Promise<string> => signToken(project.jwtSecret, sub);

  before(async () => {
    server = await startTestServer({ RATE_LIMIT: '20', RATE_BURST: '20' });
    project = await server.createProject('sdk');
  });
  after(() => server.close());

  it('connects, joins, sends and receives each message once, with the ack’s id and seq', async () => {
    const alice = sdkClient({ url: server.url, hash: project.hash, token: () => token('alice') });
    const states: string[] = [];
    alice.on('state', (state) => states.push(state));
    const bob = sdkClient({ url: server.url, hash: project.hash, token: await token('bob') });
    const aliceRoom = alice.room('basics');
    const bobRoom = bob.room('basics');
    assert.equal(alice.room('basics'), aliceRoom, 'one Room object per name');
    const seen = new Received(bobRoom);
    assert.deepEqual(await aliceRoom.join(), { seq: 0 });
    await bobRoom.join();
    const first = await aliceRoom.send('hello');
    const second = await bobRoom.send('back');
    assert.deepEqual([first.seq, second.seq], [1, 2]);
    await seen.count(2);
    assert.deepEqual(
      seen.messages.map((m) => [m.seq, m.payload, m.from, m.room, typeof m.id, typeof m.ts]),
      [
        [1, 'hello', 'alice', 'basics', 'string', 'number'],
        [2, 'back', 'bob', 'basics', 'string', 'number'],
      ],
    );
    assert.equal(seen.messages[0]?.id, first.id);
    assert.equal(alice.user, 'alice');
    assert.deepEqual(states, ['connecting', 'open']);
    const history = await aliceRoom.history({ limit: 1, before: second.id });
    assert.deepEqual(
      history.messages.map((m) => m.payload),
      ['hello'],
    );
    alice.close();
    bob.close();
    assert.equal(alice.state, 'closed');
  });

  it('broadcasts reach every client of the project; broadcast() resolves once published', async () => {
    const a = sdkClient({ url: server.url, hash: project.hash, token: await token('a') });
    const b = sdkClient({ url: server.url, hash: project.hash, token: await token('b') });
    const got = new Promise<{ payload: string; from: string; ts: number }>((resolve) => {
      b.on('broadcast', resolve);
    });
    await waitState(b, 'open');
    await a.broadcast('to all');
    const event = await got;
    assert.equal(event.payload, 'to all');
    assert.equal(event.from, 'a');
    assert.equal(typeof event.ts, 'number');
    a.close();
    b.close();
  });

  it('presence: a list on join, then join and leave events for other users only', async () => {
    const watcher = sdkClient({ url: server.url, hash: project.hash, token: await token('w') });
    const room = watcher.room('lobby', { presence: true });
    const events: string[] = [];
    // Each event is told with `users` already holding the change, so a redraw from it is right.
    room.on('presence', (event) => events.push(`${event.type}:${event.user}=${room.users.join()}`));
    await room.join();
    assert.deepEqual(room.users, ['w'], 'join() resolves once the list is in');
    const visitor = sdkClient({ url: server.url, hash: project.hash, token: await token('v') });
    await visitor.room('lobby').join();
    const list = await room.presence();
    assert.deepEqual(list.users, [
      { user: 'v', connections: 1 },
      { user: 'w', connections: 1 },
    ]);
    assert.equal(list.count, 2);
    await new Promise<void>((resolve) => {
      const off = room.on('presence', () => {
        if (events.length === 1) {
          off();
          resolve();
        }
      });
      if (events.length >= 1) resolve();
    });
    visitor.close();
    await new Promise<void>((resolve) => {
      const off = room.on('presence', (event) => {
        if (event.type === 'leave') {
          off();
          resolve();
        }
      });
    });
    assert.deepEqual(events, ['join:v=v,w', 'leave:v=w']);
    assert.deepEqual(room.users, ['w']);
    watcher.close();
  });

  it('refuses locally: a frame over maxFrameBytes, sends past maxPending, a room not joined', async () => {
    const client = sdkClient({
      url: server.url,
      hash: project.hash,
      token: await token('local'),
      maxFrameBytes: 1024,
      maxPending: 2,
    });
    const room = client.room('local');
    await assert.rejects(room.send('x'), { code: 'notJoined', message: 'Join the room first' });
    const joined = room.join();
    await assert.rejects(room.send('é'.repeat(600)), (error: unknown) => {
      assert.ok(error instanceof SocketBaseError);
      assert.equal(error.code, 'frameTooLarge');
      return true;
    });
    // Two sends wait for the join (not yet answered); the third is one too many.
    const waiting = [room.send('one'), room.send('two')];
    await assert.rejects(room.send('three'), { code: 'tooManyPending' });
    await joined;
    const stored = await Promise.all(waiting);
    assert.deepEqual(
      stored.map((s) => s.seq),
      [1, 2],
    );
    // close() ends for good: what still waits rejects, and so does everything after.
    const late = room.send('late');
    client.close();
    await assert.rejects(late, { code: 'clientClosed', message: 'Client closed' });
    await assert.rejects(client.broadcast('x'), { code: 'clientClosed' });
    await assert.rejects(client.room('another').join(), { code: 'clientClosed' });
  });

  it('server errors reject the send with the catalogue’s message and code', async () => {
    const narrow = signClaims(project.jwtSecret, { sub: 'narrow', publish: false });
    const client = sdkClient({ url: server.url, hash: project.hash, token: narrow });
    const room = client.room('locked');
    await room.join();
    await assert.rejects(room.send('no'), (error: unknown) => {
      assert.ok(error instanceof SocketBaseError);
      assert.equal(error.message, 'Not allowed');
      assert.equal(error.code, 'notAllowed');
      return true;
    });
    const forbidden = signClaims(project.jwtSecret, { sub: 'narrow', rooms: ['a:*'] });
    const other = sdkClient({ url: server.url, hash: project.hash, token: forbidden });
    await assert.rejects(other.room('b').join(), { code: 'notAllowed' });
    await assert.rejects(other.room('b').history(), { code: 'notAllowed', status: 403 });
    client.close();
    other.close();
  });

  it('a send refused with Rate limit exceeded is sent again after a backoff and stored once', async () => {
    const client = sdkClient({ url: server.url, hash: project.hash, token: await token('fast') });
    const room = client.room('rate');
    await room.join();
    // RATE_BURST is 20 frames: 40 sends at once run into the limit and must all land anyway.
    const sends = Array.from({ length: 40 }, (_, i) => room.send(`m${i}`));
    const results = await Promise.all(sends);
    assert.equal(new Set(results.map((r) => r.seq)).size, 40);
    const stored = await room.history({ limit: 100 });
    assert.deepEqual(
      stored.messages.map((m) => m.payload).sort(),
      Array.from({ length: 40 }, (_, i) => `m${i}`).sort(),
    );
    client.close();
  });

  it('4003 (disconnected by an admin) is terminal: closed, an error, no reconnect', async () => {
    let sockets = 0;
    const client = sdkClient({
      url: server.url,
      hash: project.hash,
      token: () => token('gone'),
      WebSocket: class extends WebSocket {
        constructor(url: string) {
          super(url);
          sockets++;
        }
      },
    });
    await waitState(client, 'open');
    const error = nextError(client);
    const response = await server.admin('POST', `/admin/projects/${project.hash}/disconnect`, {
      user: 'gone',
    });
    assert.equal(response.status, 202);
    assert.equal((await error).message, 'Disconnected');
    assert.equal(client.state, 'closed');
    // Long past the longest reconnect delay: nobody came back.
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(sockets, 1);
    assert.equal(client.state, 'closed');
  });

  it('4004 (project deleted) is terminal', async () => {
    const doomed = await server.createProject('doomed');
    const client = sdkClient({
      url: server.url,
      hash: doomed.hash,
      token: await signToken(doomed.jwtSecret, 'u'),
    });
    const room = client.room('r');
    await room.join();
    const error = nextError(client);
    const pending = room.send('after delete').then(
      () => 'stored',
      (refused: unknown) => (refused instanceof SocketBaseError ? refused.code : 'other'),
    );
    await server.admin('DELETE', `/admin/projects/${doomed.hash}`);
    const closed = await error;
    assert.equal(closed.message, 'Unknown project');
    assert.equal(closed.closeCode, 4004);
    assert.equal(client.state, 'closed');
    // Stored before the delete, or refused by the close: settled either way, never left hanging.
    assert.ok(['stored', 'unknownProject'].includes(await pending));
  });

  it('4001: asks the token function once more, then gives up with Invalid token', async () => {
    let calls = 0;
    const client = sdkClient({
      url: server.url,
      hash: project.hash,
      token: () => {
        calls++;
        return signClaims('not the secret', { sub: 'x' });
      },
    });
    const error = await nextError(client);
    assert.equal(error.message, 'Invalid token');
    assert.equal(error.code, 'invalidToken');
    assert.equal(error.closeCode, 4001);
    assert.equal(client.state, 'closed');
    assert.equal(calls, 2);
  });
});

describe('token lifetime through the SDK', () => {
  let server: TestServer;
  let project: TestProject;

  before(async () => {
    server = await startTestServer({ JWT_CLOCK_TOLERANCE_S: '0' });
    project = await server.createProject('tokens');
  });
  after(() => server.close());

  it('refreshes a token in band before it expires: the connection stays open', async () => {
    let calls = 0;
    const firstExpiry = nowSeconds() + 2;
    const client = sdkClient({
      url: server.url,
      hash: project.hash,
      refreshAheadMs: 1500,
      token: () => {
        calls++;
        return signClaims(project.jwtSecret, { sub: 'r', exp: nowSeconds() + 2 });
      },
    });
    const states: string[] = [];
    client.on('state', (state) => states.push(state));
    const room = client.room('stay');
    await room.join();
    const first = client.connectionId;
    // Past the first token's expiry: two refreshes later, still the same connection.
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (calls >= 3 && Date.now() > firstExpiry * 1000 + 300) {
          clearInterval(check);
          resolve();
        }
      }, 50);
    });
    assert.equal(client.connectionId, first);
    assert.equal(client.state, 'open');
    assert.deepEqual(states, ['connecting', 'open']);
    assert.equal((await room.send('still here')).seq, 1);
    client.close();
  });

  it('on 4002 it asks the token function for a new token, reconnects and rejoins', async () => {
    let calls = 0;
    const client = sdkClient({
      url: server.url,
      hash: project.hash,
      refreshAheadMs: 500,
      token: () => {
        calls++;
        // The second token (the in-band refresh) is for another user: refused, so the socket
        // expires with 4002; the third (after the close) is good.
        const sub = calls === 2 ? 'someone else' : 'e';
        return signClaims(project.jwtSecret, { sub, exp: nowSeconds() + (calls === 1 ? 2 : 60) });
      },
    });
    const errors: string[] = [];
    client.on('error', (error) => errors.push(error.message));
    const room = client.room('expire');
    const seen = new Received(room);
    await room.join();
    const first = client.connectionId;
    await waitState(client, 'reconnecting');
    await waitState(client, 'open');
    assert.notEqual(client.connectionId, first);
    assert.equal(calls, 3);
    assert.deepEqual(errors, ['Invalid token']);
    await room.send('after expiry');
    await seen.count(1);
    client.close();
  });
});

describe('reconnect backoff', () => {
  it('waits are drawn between minDelayMs and a ceiling that doubles up to maxDelayMs', () => {
    const options = { minDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(
      backoffDelay(0, options, () => 0),
      100,
    );
    assert.equal(
      backoffDelay(0, options, () => 1),
      200,
    );
    assert.equal(
      backoffDelay(2, options, () => 1),
      800,
    );
    assert.equal(
      backoffDelay(3, options, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(50, options, () => 1),
      1000,
    );
    for (let attempt = 0; attempt < 20; attempt++) {
      const delay = backoffDelay(attempt, options);
      assert.ok(delay >= 100 && delay <= 1000, `attempt ${attempt}: ${delay}`);
    }
  });

  it('a server that refuses every connection sees attempts no closer than minDelayMs', async () => {
    const attempts: number[] = [];
    const refuser: Server = createServer((socket) => {
      attempts.push(Date.now());
      socket.destroy();
    });
    await new Promise<void>((resolve) => refuser.listen(0, '127.0.0.1', resolve));
    const { port } = refuser.address() as { port: number };
    const client = sdkClient({
      url: `http://127.0.0.1:${port}`,
      hash: 'h',
      token: 'jwt',
      reconnect: { minDelayMs: 60, maxDelayMs: 150 },
    });
    while (attempts.length < 6) await new Promise((resolve) => setTimeout(resolve, 20));
    client.close();
    await new Promise<void>((resolve) => refuser.close(() => resolve()));
    const gaps = attempts.slice(1).map((at, i) => at - (attempts[i] as number));
    for (const gap of gaps) {
      // Timers fire late, never early; generous above, to catch a stall and not hold a speed.
      assert.ok(gap >= 55 && gap < 150 + 500, `gap ${gap} ms`);
    }
  });
});
