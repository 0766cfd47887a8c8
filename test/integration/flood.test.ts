/**
 * Issue 8, "done when": a flood of anonymous upgrades with unknown hashes and of half-open sockets
 * neither stalls an admitted client nor leaves the server holding memory. The bounds are generous:
 * they catch a stall or a leak, never a speed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RawWs } from '../../bench/load/raw-ws.js';
import { TestClient } from '../helpers/client.js';
import { createProjectAt, type ServerProcess, scrapeMetrics, spawnServer } from '../helpers/ops.js';
import { ADMIN_TOKEN } from '../helpers/server.js';
import { type LingeringSocket, lingeringSocket, within } from '../helpers/upgrade.js';
import { memberUrl } from '../helpers/ws.js';

const ATTEMPTS = 10_000;
const CONCURRENCY = 200;
const HALF_OPEN = 1000;
const HANDSHAKE_TIMEOUT_MS = 1000;
const MAX_RTT_MS = 500;
const MAX_RSS_GROWTH = 64 * 1024 * 1024;

/** Attackers come from 127.0.0.2 to 127.0.0.250; the admitted client from 127.0.0.1. */
const attacker = (index: number): string => `127.0.0.${2 + (index % 249)}`;

/** One upgrade with an unknown hash, to its end: the close code, or why the handshake failed. */
function attempt(port: number, index: number): Promise<string> {
  return new Promise((resolve) => {
    const ws = new RawWs(
      {
        host: '127.0.0.1',
        port,
        path: `/ws/no-such-project-${index}`,
        localAddress: attacker(index),
      },
      {
        onOpen: () => undefined,
        onText: () => undefined,
        onClose: (code, handshakeFailed) => {
          resolve(handshakeFailed ?? String(code));
          ws.destroy();
        },
      },
    );
  });
}

/** Runs the attempts, `CONCURRENCY` at a time; counts the outcomes. */
async function flood(port: number): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < ATTEMPTS) {
      const outcome = await attempt(port, next++);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return outcomes;
}

/** Pings every 100 ms until `stop` resolves; returns every round trip, in ms. */
async function pingAlong(client: TestClient, stop: Promise<unknown>): Promise<number[]> {
  let stopped = false;
  void stop.finally(() => {
    stopped = true;
  });
  const rtts: number[] = [];
  while (!stopped) {
    const sent = performance.now();
    assert.deepEqual(await client.request({ type: 'ping' }), { type: 'pong' });
    const rtt = performance.now() - sent;
    rtts.push(rtt);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 100 - rtt)));
  }
  return rtts;
}

async function rssOf(server: ServerProcess): Promise<number> {
  const rss = (await scrapeMetrics(server.url)).value('process_resident_memory_bytes');
  assert.ok(rss !== undefined && rss > 0, 'the server reports its RSS');
  return rss;
}

describe('flood: 10,000 unknown-hash upgrades and 1,000 half-open sockets', () => {
  let dir: string;
  let server: ServerProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'socket-base-flood-'));
    server = await spawnServer(
      {
        DATABASE_URL: `sqlite:${join(dir, 'flood.db')}`,
        ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        MAX_CONNECTIONS_PER_IP: '100',
        HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_TIMEOUT_MS),
        // A small V8 heap, so that RSS follows what the server keeps, not how lazily it collects.
        NODE_OPTIONS: '--max-old-space-size=64 --max-semi-space-size=1',
      },
      dir,
    );
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an admitted client’s pings all come back within 500 ms, and the server’s RSS is back within 64 MiB', async (t) => {
    const port = Number(new URL(server.url).port);
    const project = await createProjectAt(server.url, ADMIN_TOKEN, 'flood');
    const client = await TestClient.connect(await memberUrl(server, project, 'steady'), {
      localAddress: '127.0.0.1',
    });
    const rssBefore = await rssOf(server);
    const started = performance.now();

    const halfOpen: LingeringSocket[] = [];
    for (let i = 0; i < HALF_OPEN; i++) {
      halfOpen.push(await lingeringSocket(port, `GET /ws/${project.hash}?jwt=`, attacker(i)));
    }
    const attacks = flood(port);
    const rtts = await pingAlong(client, attacks);
    const outcomes = await attacks;
    const dropped = await within(
      Promise.all(halfOpen.map((socket) => socket.dropped)),
      HANDSHAKE_TIMEOUT_MS + 5000,
      'the server drops the half-open sockets',
    );
    const floodMs = performance.now() - started;
    const rssAfter = await rssOf(server);

    const maxRtt = Math.max(...rtts);
    const growth = rssAfter - rssBefore;
    t.diagnostic(
      `flood ${Math.round(floodMs)} ms; ${rtts.length} pings, max RTT ${maxRtt.toFixed(1)} ms; ` +
        `RSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MiB ` +
        `(${(growth / 2 ** 20).toFixed(1)} MiB); half-open dropped after at most ` +
        `${Math.round(Math.max(...dropped))} ms`,
    );
    assert.deepEqual(Object.fromEntries(outcomes), { '4004': ATTEMPTS });
    assert.ok(rtts.length >= 5, `only ${rtts.length} pings during the flood`);
    assert.ok(maxRtt < MAX_RTT_MS, `a ping took ${Math.round(maxRtt)} ms`);
    assert.ok(growth < MAX_RSS_GROWTH, `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB`);
    const metrics = await scrapeMetrics(server.url);
    const refused = (reason: string): number | undefined =>
      metrics.value('socketbase_connections_refused_total', { reason });
    assert.equal(refused('unknownProject'), ATTEMPTS);
    assert.equal(refused('handshake_timeout'), HALF_OPEN);
    assert.deepEqual(await client.request({ type: 'ping' }), { type: 'pong' });
    client.close();
  });
});
