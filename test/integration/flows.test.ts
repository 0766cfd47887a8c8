import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl } from '../helpers/ws.js';

describe('seed usage flows', () => {
  let server: TestServer;
  let project: TestProject;
  const url = (sub: string): Promise<string> => memberUrl(server, project, sub);

  before(async () => {
    server = await startTestServer();
    project = await server.createProject('flows');
  });
  after(() => server.close());

  it('flow 1: room chat — join, send, every member receives, leave stops delivery', async () => {
    const alice = await TestClient.connect(await url('alice'));
    const bob = await TestClient.connect(await url('bob'));
    await alice.join('general');
    await bob.join('general');
    alice.send({ type: 'message', room: 'general', payload: 'Hello' });
    const [atAlice] = await alice.collect('message', 1);
    const [atBob] = await bob.collect('message', 1);
    assert.deepEqual(atBob, atAlice);
    assert.equal(atBob?.payload, 'Hello');
    assert.equal(atBob?.from, 'alice');
    assert.equal(atBob?.room, 'general');
    assert.equal(atBob?.seq, 1);
    assert.equal(typeof atBob?.id, 'string');
    assert.equal(typeof atBob?.ts, 'number');
    alice.drain();
    bob.drain();
    assert.deepEqual(await bob.request({ type: 'leave', room: 'general' }), {
      type: 'left',
      room: 'general',
    });
    alice.send({ type: 'message', room: 'general', payload: 'after leave' });
    await alice.collect('message', 1);
    await bob.expectSilence();
    alice.close();
    bob.close();
  });

  it('flow 2: HTTP publish reaches a WebSocket member', async () => {
    const alice = await TestClient.connect(await url('alice'));
    await alice.join('notifications');
    const response = await server.api('POST', '/api/message', {
      hash: project.hash,
      token: await signToken(project.jwtSecret, 'bob'),
      body: { room: 'notifications', payload: 'Hello' },
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { success: boolean; id: string; seq: number };
    assert.equal(body.success, true);
    const [frame] = await alice.collect('message', 1);
    assert.deepEqual(frame, {
      type: 'message',
      room: 'notifications',
      payload: 'Hello',
      from: 'bob',
      id: body.id,
      seq: body.seq,
      ts: frame?.ts,
    });
    alice.close();
  });

  it('flow 3: a broadcast over WebSocket or HTTP reaches every connection, in no room too', async () => {
    const alice = await TestClient.connect(await url('alice'));
    const bob = await TestClient.connect(await url('bob'));
    await alice.join('somewhere');
    alice.send({ type: 'broadcast', payload: 'Alert' });
    for (const client of [alice, bob]) {
      const [frame] = await client.collect('broadcast', 1);
      assert.equal(frame?.payload, 'Alert');
      assert.equal(frame?.from, 'alice');
      client.drain();
    }
    const response = await server.api('POST', '/api/broadcast', {
      hash: project.hash,
      token: await signToken(project.jwtSecret, 'ops'),
      body: { room: 'chat-room-1', payload: 'System message' },
    });
    assert.deepEqual(await response.json(), { success: true });
    for (const client of [alice, bob]) {
      const [frame] = await client.collect('broadcast', 1);
      assert.deepEqual(Object.keys(frame ?? {}), ['type', 'payload', 'from', 'ts']);
      assert.equal(frame?.payload, 'System message');
      client.close();
    }
  });
});
