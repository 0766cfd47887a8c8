import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Frame, TestClient } from '../helpers/client.js';
import {
  assertGapless,
  createProjectAt,
  fullHistory,
  type Scrape,
  type ServerProcess,
  scrapeMetrics,
  spawnServer,
  until,
} from '../helpers/ops.js';
import {
  ADMIN_TOKEN,
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl } from '../helpers/ws.js';

/** Re-reads /metrics until `ready` holds (a gauge the server updates when it sees a close). */
async function scrapeUntil(
  baseUrl: string,
  ready: (scrape: Scrape) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<Scrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const scrape = await scrapeMetrics(baseUrl);
    if (ready(scrape)) return scrape;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('operations: /healthz, /readyz, /metrics', () => {
  let server: TestServer;
  let project: TestProject;
  const url = (sub: string): Promise<string> => memberUrl(server, project, sub);

  before(async () => {
    server = await startTestServer();
    project = await server.createProject('operations');
  });
  after(() => server.close());

  it('GET /healthz answers 200 while the process runs', async () => {
    const response = await fetch(`${server.url}/healthz`);
    assert.equal(response.status, 200);
    await response.arrayBuffer();
  });

  it('GET /readyz answers 200 when the database answers and the server is not shutting down', async () => {
    const response = await fetch(`${server.url}/readyz`);
    assert.equal(response.status, 200);
    await response.arrayBuffer();
  });

  it('GET /metrics is Prometheus text naming connections, rooms, frames, messages, deliveries, store batches and latency, bus, slow consumers, rate limits and errors', async () => {
    const scrape = await scrapeMetrics(server.url);
    assert.match(scrape.contentType, /^text\/plain/);
    const expected: [string, string][] = [
      ['socketbase_connections', 'gauge'],
      ['socketbase_rooms', 'gauge'],
      ['socketbase_frames_in_total', 'counter'],
      ['socketbase_frames_out_total', 'counter'],
      ['socketbase_messages_in_total', 'counter'],
      ['socketbase_deliveries_total', 'counter'],
      ['socketbase_store_batch_size', 'histogram'],
      ['socketbase_store_commit_seconds', 'histogram'],
      ['socketbase_bus_published_total', 'counter'],
      ['socketbase_bus_received_total', 'counter'],
      ['socketbase_bus_reconnects_total', 'counter'],
      ['socketbase_slow_consumer_closes_total', 'counter'],
      ['socketbase_rate_limited_total', 'counter'],
      ['socketbase_errors_total', 'counter'],
    ];
    for (const [name, type] of expected) {
      const lines = scrape.text.split('\n');
      assert.ok(
        lines.some((line) => line.startsWith(`# HELP ${name} `)),
        `${name} has HELP`,
      );
      assert.ok(lines.includes(`# TYPE ${name} ${type}`), `${name} is a ${type}`);
    }
  });

  it('the counters move with traffic: connections, frames in, messages in, deliveries, bus traffic, store batches, errors by message', async () => {
    const before = await scrapeMetrics(server.url);
    const delta = (scrape: Scrape, name: string, labels?: Record<string, string>): number =>
      (scrape.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);

    const alice = await TestClient.connect(await url('alice'));
    const bob = await TestClient.connect(await url('bob'));
    await alice.join('metered');
    await bob.join('metered');
    for (const payload of ['one', 'two', 'three']) {
      alice.send({ type: 'message', room: 'metered', payload });
    }
    await bob.collect('message', 3);
    await alice.collect('message', 3);
    alice.send({ type: 'broadcast', payload: 'all' });
    await bob.collect('broadcast', 1);
    await alice.collect('broadcast', 1);
    alice.drain();
    bob.drain();
    assert.deepEqual(await alice.request('not json', 'error'), {
      type: 'error',
      message: 'Invalid JSON',
    });
    assert.deepEqual(await alice.request({ type: 'nope' }, 'error'), {
      type: 'error',
      message: 'Unknown message type',
    });

    const during = await scrapeMetrics(server.url);
    assert.equal(delta(during, 'socketbase_connections'), 2);
    assert.equal(delta(during, 'socketbase_rooms'), 1);
    // 2 joins, 3 messages, 1 broadcast, 2 invalid frames.
    assert.equal(delta(during, 'socketbase_frames_in_total'), 8);
    assert.ok(delta(during, 'socketbase_frames_out_total') >= 2 + 2 + 6 + 2 + 2);
    assert.equal(delta(during, 'socketbase_messages_in_total', { kind: 'message', via: 'ws' }), 3);
    assert.equal(
      delta(during, 'socketbase_messages_in_total', { kind: 'broadcast', via: 'ws' }),
      1,
    );
    assert.equal(delta(during, 'socketbase_deliveries_total', { kind: 'message' }), 6);
    assert.equal(delta(during, 'socketbase_deliveries_total', { kind: 'broadcast' }), 2);
    assert.ok(delta(during, 'socketbase_bus_published_total') >= 4, 'bus publications counted');
    assert.ok(delta(during, 'socketbase_bus_received_total') >= 4, 'bus receptions counted');
    assert.equal(delta(during, 'socketbase_store_batch_size_sum'), 3);
    assert.ok(delta(during, 'socketbase_store_commit_seconds_count') >= 1);
    assert.equal(delta(during, 'socketbase_errors_total', { message: 'Invalid JSON' }), 1);
    assert.equal(delta(during, 'socketbase_errors_total', { message: 'Unknown message type' }), 1);

    alice.close();
    bob.close();
    await Promise.all([alice.closed, bob.closed]);
    await scrapeUntil(
      server.url,
      (scrape) => delta(scrape, 'socketbase_connections') === 0,
      'the connections gauge to come back',
    );
  });
});

describe('operations: graceful shutdown of `socket-base serve`', () => {
  const CLIENTS = 3;
  const PER_CLIENT = 300;
  let dir: string;
  let databaseUrl: string;
  const running: ServerProcess[] = [];
  const start = async (env: Record<string, string> = {}): Promise<ServerProcess> => {
    const server = await spawnServer(
      { DATABASE_URL: databaseUrl, ADMIN_TOKEN, LOG_LEVEL: 'warn', ...env },
      dir,
    );
    running.push(server);
    return server;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'socket-base-shutdown-'));
    databaseUrl = `sqlite:${join(dir, 'shutdown.db')}`;
  });
  after(async () => {
    for (const server of running) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGTERM during a burst: every client is closed with 1001, the process exits 0, and after a restart history holds every message a client received, seq 1..N without gaps', async () => {
    // No readiness delay: the burst must still be running when the server stops accepting.
    const server = await start({ SHUTDOWN_DELAY_MS: '0' });
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const project = await createProjectAt(server.url, ADMIN_TOKEN, 'shutdown');
    const url = (sub: string): Promise<string> => memberUrl(server, project, sub);
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => TestClient.connect(await url(`c${c}`))),
    );
    for (const client of clients) await client.join('last-words');

    // Each client keeps WINDOW messages in flight until it has sent PER_CLIENT: the burst is still
    // going when SIGTERM arrives.
    const WINDOW = 20;
    for (const [c, client] of clients.entries()) {
      let sent = 0;
      const sendNext = (): void => {
        if (sent < PER_CLIENT && client.socket.readyState === client.socket.OPEN) {
          client.send({ type: 'message', room: 'last-words', payload: `c${c}-${sent++}` });
        }
      };
      client.socket.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString('utf8')) as Frame;
        if (frame.type === 'message' && frame.from === `c${c}`) sendNext();
      });
      for (let i = 0; i < WINDOW; i++) sendNext();
    }
    const first = clients[0] as TestClient;
    await until(first, () => first.frames.some((frame) => frame.seq === 100), 'the 100th message');
    const exit = server.stop('SIGTERM');

    const closes = await Promise.all(clients.map((client) => client.waitClosed()));
    for (const close of closes) assert.equal(close.code, 1001);
    assert.deepEqual(await exit, { code: 0, signal: null });

    const delivered = clients.map((client) => client.frames.filter((f) => f.type === 'message'));
    for (const [c, client] of clients.entries()) {
      assertGapless(delivered[c] ?? [], `client c${c}`);
      const errors = client.frames.filter((frame: Frame) => frame.type === 'error');
      for (const error of errors) {
        assert.deepEqual(error, { type: 'error', message: 'Server is shutting down' });
      }
    }

    const restarted = await start();
    const token = await signToken(project.jwtSecret, 'auditor');
    const history = await fullHistory(restarted.url, { hash: project.hash, token }, 'last-words');
    assertGapless(history, 'history after the restart');
    assert.ok(history.length < CLIENTS * PER_CLIENT, 'SIGTERM came during the burst');
    const stored = new Map(history.map((message) => [message.id, message]));
    for (const frames of delivered) {
      assert.ok(frames.length <= history.length);
      for (const frame of frames) {
        const { type, ...message } = frame;
        assert.deepEqual(stored.get(frame.id as string), message, `message ${frame.seq} stored`);
      }
    }
    assert.deepEqual(await restarted.stop('SIGTERM'), { code: 0, signal: null });
  });

  it('after SIGTERM, /readyz answers 503 before the server stops accepting connections', async () => {
    const server = await start();
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    await ready.arrayBuffer();
    const exit = server.stop('SIGTERM');
    const statuses: (number | string)[] = [];
    for (;;) {
      try {
        const response = await fetch(`${server.url}/readyz`);
        await response.arrayBuffer();
        statuses.push(response.status);
        if (response.status === 503) break;
      } catch (error) {
        statuses.push(error instanceof Error ? String(error.cause ?? error.message) : 'error');
        break;
      }
    }
    assert.deepEqual(await exit, { code: 0, signal: null });
    assert.equal(statuses.at(-1), 503, `after SIGTERM /readyz gave: ${statuses.join(', ')}`);
  });
});
