/**
 * A project's own limits on one instance (issue 10): connections (4029), the message rate shared by
 * WebSocket and HTTP, messages and broadcasts, and the per-project series on /metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { eventually } from '../helpers/eventually.js';
import { scrapeMetrics } from '../helpers/ops.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { connectAs, memberUrl } from '../helpers/ws.js';

describe('project limits on one instance', () => {
  let server: TestServer;
  const clients: TestClient[] = [];
  const connect = async (project: TestProject, sub: string): Promise<TestClient> => {
    const client = await connectAs(server, project, sub);
    clients.push(client);
    return client;
  };
  const limit = async (project: TestProject, limits: Record<string, number | null>) => {
    const response = await server.admin('PATCH', `/admin/projects/${project.hash}`, {
      settings: { limits },
    });
    assert.equal(response.status, 200);
  };

  before(async () => {
    server = await startTestServer({ METRICS_MAX_PROJECTS: '2' });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server.close();
  });

  it('past maxConnections a connection gets Too many connections and close 4029; a closed one frees its slot', async () => {
    const project = await server.createProject('connections');
    await limit(project, { maxConnections: 3 });
    const admitted = [];
    for (let i = 0; i < 3; i++) admitted.push(await connect(project, `u${i}`));
    const refused = new TestClient(await memberUrl(server, project, 'u3'));
    clients.push(refused);
    assert.deepEqual(await refused.next(), { type: 'error', message: 'Too many connections' });
    assert.deepEqual(await refused.waitClosed(), { code: 4029, reason: 'Too many connections' });
    admitted[0]?.close();
    await eventually('the closed connection no longer counts', async () => {
      const next = new TestClient(await memberUrl(server, project, 'u4'));
      clients.push(next);
      return (await next.next()).type === 'connected';
    });
    const metrics = await scrapeMetrics(server.adminUrl);
    assert.ok(
      (metrics.value('socketbase_project_refusals_total', {
        project: project.hash,
        reason: 'too_many_connections',
      }) ?? 0) >= 1,
    );
    assert.equal(metrics.value('socketbase_project_connections', { project: project.hash }), 3);
  });

  it('maxMessagesPerSecond is shared by WebSocket and HTTP, messages and broadcasts; refused ones are not stored', async () => {
    const project = await server.createProject('rate');
    await limit(project, { maxMessagesPerSecond: 10 });
    const client = await connect(project, 'sender');
    await client.join('r');
    const token = await signToken(project.jwtSecret, 'poster');
    // 30 sends at once, far past the rate's burst (10 / 5 = 2 tokens saved up).
    for (let i = 0; i < 10; i++) {
      client.send({ type: 'message', room: 'r', payload: `ws${i}`, ref: `m${i}` });
      client.send({ type: 'broadcast', payload: `b${i}`, ref: `b${i}` });
    }
    const posts = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        server.api('POST', '/api/message', {
          hash: project.hash,
          token,
          body: { room: 'r', payload: `http${i}` },
        }),
      ),
    );
    const refusedPosts = posts.filter((response) => response.status === 429);
    assert.ok(refusedPosts.length > 0, 'some HTTP sends refused');
    for (const response of refusedPosts) {
      assert.equal(response.headers.get('retry-after'), '1');
      assert.deepEqual(await response.json(), { success: false, error: 'Rate limit exceeded' });
    }
    await eventually(
      'every frame answered',
      async () => client.frames.filter((f) => f.type === 'ack' || f.type === 'error').length === 20,
    );
    const answers = client.frames.filter((f) => f.type === 'ack' || f.type === 'error');
    const refusedFrames = answers.filter((f) => f.type === 'error');
    assert.ok(refusedFrames.length > 0, 'some WebSocket sends refused');
    for (const frame of refusedFrames) assert.equal(frame.message, 'Rate limit exceeded');
    const storedWs = answers.filter((f) => f.type === 'ack' && String(f.ref).startsWith('m'));
    const storedHttp = posts.length - refusedPosts.length;
    const history = await server.api('GET', '/api/rooms/r/messages?limit=100', {
      hash: project.hash,
      token,
    });
    const { messages } = (await history.json()) as { messages: unknown[] };
    assert.equal(messages.length, storedWs.length + storedHttp);
    const accepted = answers.length - refusedFrames.length + storedHttp;
    assert.ok(accepted <= 10, `${accepted} accepted within a second at 10/s`);
  });

  it('/metrics carries per-project series for METRICS_MAX_PROJECTS projects, the rest under _other', async () => {
    const metrics = await scrapeMetrics(server.adminUrl);
    const projects = new Set(
      [
        ...metrics.text.matchAll(/^socketbase_project_messages_in_total\{project="([^"]+)"\}/gm),
      ].map((match) => match[1]),
    );
    assert.ok(projects.has('_other'));
    assert.equal(projects.size, 3, 'two projects of their own, and _other');
    const third = await server.createProject('third');
    const client = await connect(third, 'x');
    await client.join('r');
    client.send({ type: 'message', room: 'r', payload: 'p', ref: 1 });
    await client.next('message');
    const after = await scrapeMetrics(server.adminUrl);
    assert.equal(
      after.value('socketbase_project_messages_in_total', { project: third.hash }),
      undefined,
    );
    assert.ok(
      (after.value('socketbase_project_messages_in_total', { project: '_other' }) ?? 0) >= 1,
    );
    assert.ok(
      (after.value('socketbase_project_messages_out_total', { project: '_other' }) ?? 0) >= 1,
    );
  });
});
