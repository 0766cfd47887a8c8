import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { maskedFrame } from '../../bench/load/raw-ws.js';
import { type TransportRefusal, WsTransport } from '../../src/transport/ws-transport.js';
import { TestClient } from '../helpers/client.js';
import { RawClient, scrapeMetrics } from '../helpers/ops.js';
import { startTestServer, type TestProject, type TestServer } from '../helpers/server.js';
import { eventually, lingeringSocket, refusedUpgrade, within } from '../helpers/upgrade.js';
import { expectAlive, memberUrl } from '../helpers/ws.js';

const AT_CAPACITY = '{"success":false,"error":"Server at capacity"}';
const TOO_MANY = '{"success":false,"error":"Too many connections"}';

/** One in-process server per describe, with a project. */
function serverWith(env: Record<string, string>) {
  const context = {
    server: undefined as unknown as TestServer,
    project: undefined as unknown as TestProject,
    url: (sub: string): Promise<string> => memberUrl(context.server, context.project, sub),
    async refused(reason: TransportRefusal): Promise<number> {
      const metrics = await scrapeMetrics(context.server.url);
      return metrics.value('socketbase_connections_refused_total', { reason }) ?? 0;
    },
  };
  before(async () => {
    context.server = await startTestServer(env);
    context.project = await context.server.createProject('connection-limits');
  });
  after(() => context.server.close());
  return context;
}

describe('limits: MAX_CONNECTIONS 3', () => {
  const ctx = serverWith({ MAX_CONNECTIONS: '3' });

  it('the 4th upgrade gets 503 Server at capacity with Retry-After: 1; after one closes, a new one is admitted', async () => {
    const clients = await Promise.all(
      ['a', 'b', 'c'].map(async (sub) => TestClient.connect(await ctx.url(sub))),
    );
    assert.deepEqual(await refusedUpgrade(await ctx.url('d')), {
      status: 503,
      retryAfter: '1',
      text: AT_CAPACITY,
    });
    assert.equal(await ctx.refused('capacity'), 1);
    for (const client of clients) await expectAlive(client);

    const [first, ...others] = clients;
    first?.close();
    await first?.closed;
    const again = await eventually(async () => TestClient.connect(await ctx.url('d')));
    await expectAlive(again);
    for (const client of [...others, again]) client.close();
  });
});

describe('limits: MAX_CONNECTIONS_PER_IP 2', () => {
  const ctx = serverWith({ MAX_CONNECTIONS_PER_IP: '2' });
  const from = (localAddress: string) => ({ localAddress });

  it('the third socket from 127.0.0.2 gets 429 Too many connections; 127.0.0.3 is still admitted; after a close 127.0.0.2 connects again', async () => {
    const first = await TestClient.connect(await ctx.url('a'), from('127.0.0.2'));
    const second = await TestClient.connect(await ctx.url('b'), from('127.0.0.2'));
    assert.deepEqual(await refusedUpgrade(await ctx.url('c'), from('127.0.0.2')), {
      status: 429,
      retryAfter: '1',
      text: TOO_MANY,
    });
    assert.equal(await ctx.refused('per_ip'), 1);
    const elsewhere = await TestClient.connect(await ctx.url('d'), from('127.0.0.3'));
    await expectAlive(elsewhere);

    first.close();
    await first.closed;
    const again = await eventually(async () =>
      TestClient.connect(await ctx.url('e'), from('127.0.0.2')),
    );
    await expectAlive(again);
    await expectAlive(second);
    for (const client of [second, elsewhere, again]) client.close();
  });
});

describe('limits: MAX_CONNECTIONS_PER_IP 2 behind TRUST_PROXY 127.0.0.1', () => {
  const ctx = serverWith({ MAX_CONNECTIONS_PER_IP: '2', TRUST_PROXY: '127.0.0.1' });
  // All from the proxy's address; the last X-Forwarded-For hop is the client it saw.
  const via = (client: string) => ({
    localAddress: '127.0.0.1',
    headers: { 'x-forwarded-for': `203.0.113.9, ${client}` },
  });

  it('the forwarded address is what counts, not the proxy’s', async () => {
    const clients = [
      await TestClient.connect(await ctx.url('a'), via('198.51.100.1')),
      await TestClient.connect(await ctx.url('b'), via('198.51.100.1')),
      // A third socket from the proxy: admitted, since it is another client's.
      await TestClient.connect(await ctx.url('c'), via('198.51.100.2')),
    ];
    assert.deepEqual(await refusedUpgrade(await ctx.url('d'), via('198.51.100.1')), {
      status: 429,
      retryAfter: '1',
      text: TOO_MANY,
    });
    for (const client of clients) {
      await expectAlive(client);
      client.close();
    }
  });
});

describe('limits: HANDSHAKE_TIMEOUT_MS 300', () => {
  const ctx = serverWith({ HANDSHAKE_TIMEOUT_MS: '300' });

  it('a TCP connection that sends nothing, half a request line, or half the upgrade headers is dropped; an admitted client stays', async () => {
    const alice = await TestClient.connect(await ctx.url('alice'));
    const { port } = ctx.server;
    const path = `/ws/${ctx.project.hash}`;
    const sockets = await Promise.all([
      lingeringSocket(port, ''),
      lingeringSocket(port, `GET ${path} HT`),
      lingeringSocket(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n`),
    ]);
    const times = await within(
      Promise.all(sockets.map((socket) => socket.dropped)),
      3000,
      'the server drops the sockets',
    );
    for (const ms of times)
      assert.ok(ms >= 250, `dropped after ${Math.round(ms)} ms, before the timeout`);
    assert.equal(await ctx.refused('handshake_timeout'), 3);
    await expectAlive(alice);
    assert.equal(alice.closeCode, undefined);
    alice.close();
  });

  it('plain HTTP keep-alive requests go on over one socket across the timeout', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const healthz = (): Promise<{ status: number; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const request = get(`${ctx.server.url}/healthz`, { agent }, (response) => {
          response.resume();
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, reused: request.reusedSocket }),
          );
        });
        request.on('error', reject);
      });
    try {
      assert.deepEqual(await healthz(), { status: 200, reused: false });
      await new Promise((resolve) => setTimeout(resolve, 800));
      assert.deepEqual(await healthz(), { status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  });
});

describe('limits: HANDSHAKE_TIMEOUT_MS 300 with an admission that never ends', () => {
  const refusals: TransportRefusal[] = [];
  const httpServer = createServer((_request, response) => response.end());
  let transport: WsTransport;
  before(async () => {
    transport = new WsTransport(httpServer, () => new Promise(() => undefined), {
      maxFrameBytes: 65536,
      heartbeatMs: 30000,
      trustProxy: [],
      addresses: false,
      maxConnections: 100,
      maxConnectionsPerIp: 1,
      handshakeTimeoutMs: 300,
      maxEarlyFrames: 10,
      errorFrame: (message) => message,
      counts: { framesIn: 0, framesOut: 0 },
      onError: () => undefined,
      onRefused: (reason) => refusals.push(reason),
    });
    httpServer.listen(0, '127.0.0.1');
    await once(httpServer, 'listening');
  });
  after(async () => {
    await transport.close(1001, 'bye');
    httpServer.close();
  });

  it('the upgrade is dropped at the deadline, and its address may connect again', async () => {
    const { port } = httpServer.address() as AddressInfo;
    const url = `ws://127.0.0.1:${port}/ws/slow`;
    for (let attempt = 0; attempt < 2; attempt++) {
      const socket = new WebSocket(url, { localAddress: '127.0.0.2' });
      socket.on('error', () => undefined);
      const closed = new Promise((resolve) => socket.on('close', resolve));
      const started = performance.now();
      await within(closed, 3000, 'the server drops the upgrade');
      assert.ok(performance.now() - started >= 250, 'not before the timeout');
    }
    assert.deepEqual(refusals, ['handshake_timeout', 'handshake_timeout']);
  });
});

describe('limits: frames before admission (RATE_BURST 5)', () => {
  const ctx = serverWith({ RATE_LIMIT: '5', RATE_BURST: '5' });
  const pings = (count: number): Buffer =>
    Buffer.concat(
      Array.from({ length: count }, () => maskedFrame(1, Buffer.from('{"type":"ping"}'))),
    );

  it('RATE_BURST frames sent with the upgrade request wait for admission and are all answered', async () => {
    const raw = await RawClient.connect(await ctx.url('alice'), { head: pings(5) });
    await raw.waitFor(() => raw.texts.length === 6, 'connected and 5 pongs');
    assert.deepEqual(
      raw.texts.map((frame) => frame.type),
      ['connected', 'pong', 'pong', 'pong', 'pong', 'pong'],
    );
    assert.equal(raw.closeCode, undefined);
    raw.destroy();
  });

  it('one frame more closes the socket with 1008 before admission, and none of them is handled', async () => {
    const raw = await RawClient.connect(await ctx.url('bob'), { head: pings(6) });
    assert.equal(await raw.waitClosed(), 1008);
    assert.deepEqual(raw.texts, []);
    assert.equal(await ctx.refused('early_frames'), 1);
    const next = await TestClient.connect(await ctx.url('bob'));
    await expectAlive(next);
    next.close();
  });
});

describe('limits: the upgrade path', () => {
  const ctx = serverWith({});

  it('a malformed % escape in /ws/:hash → 400 Invalid path', async () => {
    assert.deepEqual(await refusedUpgrade(`${ctx.server.wsUrl}/ws/%E0%A4%A`), {
      status: 400,
      retryAfter: undefined,
      text: '{"success":false,"error":"Invalid path"}',
    });
  });
});
