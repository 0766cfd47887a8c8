import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { eventually, readyzAnswers } from '../helpers/eventually.js';
import { POSTGRES_URL, type TestSchemas, testSchemas } from '../helpers/postgres.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { memberUrl, wsUrl } from '../helpers/ws.js';

describe('PostgreSQL goes away and comes back', () => {
  let schemas: TestSchemas;
  let proxy: TcpProxy;
  let server: TestServer;
  let project: TestProject;

  before(async () => {
    schemas = await testSchemas();
    proxy = await startTcpProxy(Number(new URL(POSTGRES_URL).port || 5432));
    server = await startTestServer({
      DATABASE_URL: schemas.urlFor(await schemas.create(), proxy.port),
    });
    project = await server.createProject('pg-faults');
  });
  after(async () => {
    await server.close();
    await proxy.close();
    await schemas.dropAll();
  });

  it('creates no demo project and prints no secret on PostgreSQL: only the listening line', () => {
    assert.equal(server.printed.length, 1);
    assert.match(server.printed[0] ?? '', /^socket-base listening on http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('refuses sends with "Message could not be stored", delivers nothing unstored, and recovers by itself', async () => {
    const token = await signToken(project.jwtSecret, 'ann');
    const sender = await TestClient.connect(wsUrl(server, project.hash, token));
    const member = await TestClient.connect(await memberUrl(server, project, 'ben'));
    await sender.join('r');
    await member.join('r');
    sender.send({ type: 'message', room: 'r', payload: 'before' });
    await member.collect('message', 1);
    await sender.collect('message', 1);
    sender.drain();
    member.drain();

    proxy.cut();
    assert.deepEqual(await sender.request({ type: 'message', room: 'r', payload: 'lost?' }), {
      type: 'error',
      message: 'Message could not be stored',
    });
    const refused = await server.api('POST', '/api/message', {
      hash: project.hash,
      token,
      body: { room: 'r', payload: 'lost over http?' },
    });
    assert.equal(refused.status, 503);
    assert.ok(refused.headers.get('retry-after'));
    assert.deepEqual(await refused.json(), {
      success: false,
      error: 'Message could not be stored',
    });
    assert.equal((await fetch(`${server.url}/readyz`)).status, 503);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    await member.expectSilence();

    proxy.restore();
    await eventually('ready again', async () => (await fetch(`${server.url}/readyz`)).ok);
    sender.send({ type: 'message', room: 'r', payload: 'after' });
    const [frame] = await member.collect('message', 1);
    assert.equal(frame?.payload, 'after');
    assert.equal(frame?.seq, 2);
    sender.close();
    member.close();
  });

  it('a room whose last seq could not be read when its first member joined starts once the store is back (issue 8)', async () => {
    const member = await TestClient.connect(await memberUrl(server, project, 'cold'));
    proxy.cut();
    // The room's position cannot be read: the join waits while it is read again and again.
    member.send({ type: 'join', room: 'cold-room' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(member.drain(), [], 'no joined without a position');
    proxy.restore();
    assert.deepEqual(await member.next(), { type: 'joined', room: 'cold-room', seq: 0 });
    await readyzAnswers(server, 200);
    const token = await signToken(project.jwtSecret, 'http');
    const posted = await server.api('POST', '/api/message', {
      hash: project.hash,
      token,
      body: { room: 'cold-room', payload: 'first' },
    });
    assert.equal(posted.status, 200);
    const [frame] = await member.collect('message', 1);
    assert.equal(frame?.payload, 'first');
    assert.equal(frame?.seq, 1);
    member.close();
  });
});
