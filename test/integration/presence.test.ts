/**
 * Presence on one instance (issue 10): the `presence` frame and HTTP read, the snapshot after a
 * join with `presence: true`, and the events, once per user, to watchers only, never about their
 * own user.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Frame, TestClient } from '../helpers/client.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { connectAs } from '../helpers/ws.js';

describe('presence', () => {
  let server: TestServer;
  let project: TestProject;
  const open: TestClient[] = [];
  const as = async (sub: string): Promise<TestClient> => {
    const client = await connectAs(server, project, sub);
    open.push(client);
    return client;
  };
  const presenceOver = async (room: string, query = '', sub = 'reader') =>
    server.api('GET', `/api/rooms/${encodeURIComponent(room)}/presence${query}`, {
      hash: project.hash,
      token: await signToken(project.jwtSecret, sub),
    });

  before(async () => {
    server = await startTestServer();
    project = await server.createProject('presence');
  });
  after(async () => {
    for (const client of open) client.close();
    await server.close();
  });

  it('the presence frame lists users sorted, with their connections, to members only', async () => {
    const bob = await as('bob');
    assert.deepEqual(await bob.request({ type: 'presence', room: 'lobby', ref: 1 }), {
      type: 'error',
      message: 'You must join the room first',
      ref: 1,
    });
    await bob.join('lobby');
    const ann1 = await as('ann');
    await ann1.join('lobby');
    const ann2 = await as('ann');
    await ann2.join('lobby');
    assert.deepEqual(await bob.request({ type: 'presence', room: 'lobby', ref: 'p' }), {
      type: 'presence',
      room: 'lobby',
      users: [
        { user: 'ann', connections: 2 },
        { user: 'bob', connections: 1 },
      ],
      count: 2,
      ref: 'p',
    });
    ann2.close();
    await ann2.closed;
    ann1.send({ type: 'leave', room: 'lobby' });
    await ann1.next('left');
    assert.deepEqual(await bob.request({ type: 'presence', room: 'lobby' }), {
      type: 'presence',
      room: 'lobby',
      users: [{ user: 'bob', connections: 1 }],
      count: 1,
    });
  });

  it('a presence frame is checked like the others: room required, Invalid presence on join', async () => {
    const client = await as('checker');
    assert.deepEqual(await client.request({ type: 'presence', ref: 2 }), {
      type: 'error',
      message: 'Room required',
      ref: 2,
    });
    assert.deepEqual(await client.request({ type: 'join', room: 'x', presence: 'yes', ref: 3 }), {
      type: 'error',
      message: 'Invalid presence',
      ref: 3,
    });
    assert.deepEqual(await client.request({ type: 'presence', room: 7 }), {
      type: 'error',
      message: 'Room must be a string',
    });
  });

  it('a join with presence: true gets joined, then the list, then the replayed messages', async () => {
    const writer = await as('writer');
    await writer.join('replayed');
    for (let i = 0; i < 3; i++)
      writer.send({ type: 'message', room: 'replayed', payload: `m${i}` });
    await writer.exactly('message', 3);
    const late = await as('late');
    late.send({ type: 'join', room: 'replayed', since: 0, presence: true, ref: 'j' });
    const frames: Frame[] = [];
    for (let i = 0; i < 5; i++) frames.push(await late.next());
    assert.deepEqual(frames[0], {
      type: 'joined',
      room: 'replayed',
      seq: 3,
      recovered: true,
      ref: 'j',
    });
    assert.deepEqual(frames[1], {
      type: 'presence',
      room: 'replayed',
      users: [
        { user: 'late', connections: 1 },
        { user: 'writer', connections: 1 },
      ],
      count: 2,
    });
    assert.deepEqual(
      frames.slice(2).map((frame) => [frame.type, frame.seq]),
      [
        ['message', 1],
        ['message', 2],
        ['message', 3],
      ],
    );
  });

  it('events: once per user, to watchers only, never about their own user', async () => {
    const watcher = await as('wanda');
    watcher.send({ type: 'join', room: 'events', presence: true });
    await watcher.next('joined');
    assert.equal((await watcher.next('presence')).count, 1);
    const ownTab = await as('wanda');
    ownTab.send({ type: 'join', room: 'events', presence: true });
    await ownTab.next('joined');
    assert.equal((await ownTab.next('presence')).count, 1);
    const silent = await as('sid');
    await silent.join('events');
    assert.deepEqual(await watcher.next(), { type: 'presence_join', room: 'events', user: 'sid' });
    assert.deepEqual(await ownTab.next(), { type: 'presence_join', room: 'events', user: 'sid' });
    // A second tab of a present user, and the first tab leaving while the second stays: no event.
    const secondTab = await as('sid');
    await secondTab.join('events');
    silent.send({ type: 'leave', room: 'events' });
    await silent.next('left');
    await watcher.expectSilence();
    // The last connection out: one leave event; the one who left hears nothing of itself.
    secondTab.close();
    assert.deepEqual(await watcher.next(), { type: 'presence_leave', room: 'events', user: 'sid' });
    assert.deepEqual(await ownTab.next(), { type: 'presence_leave', room: 'events', user: 'sid' });
    await silent.expectSilence();
    // Wanda's own tabs never hear about wanda.
    ownTab.close();
    await watcher.expectSilence();
  });

  it('the latest join of a room decides: a join without presence stops the events', async () => {
    const watcher = await as('quitter');
    watcher.send({ type: 'join', room: 'decides', presence: true });
    await watcher.next('joined');
    await watcher.next('presence');
    const first = await as('first');
    await first.join('decides');
    assert.deepEqual(await watcher.next(), {
      type: 'presence_join',
      room: 'decides',
      user: 'first',
    });
    await watcher.join('decides');
    const second = await as('second');
    await second.join('decides');
    await watcher.expectSilence();
  });

  it('GET /api/rooms/:room/presence pages users in order; count is the whole room', async () => {
    const subs = Array.from({ length: 7 }, (_, i) => `user-${i}`);
    for (const sub of subs) await (await as(sub)).join('paged');
    const first = await presenceOver('paged', '?limit=3');
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), {
      users: subs.slice(0, 3).map((user) => ({ user, connections: 1 })),
      count: 7,
    });
    const rest = await presenceOver('paged', '?limit=100&after=user-2');
    assert.deepEqual(await rest.json(), {
      users: subs.slice(3).map((user) => ({ user, connections: 1 })),
      count: 7,
    });
    const empty = await presenceOver('nobody-here');
    assert.deepEqual(await empty.json(), { users: [], count: 0 });
    const bad = await presenceOver('paged', '?limit=0');
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), {
      success: false,
      error: 'Limit must be a positive integer',
    });
  });
});
