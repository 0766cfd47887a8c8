/**
 * The SDK's promise under faults: every message sent by every client reaches every member once,
 * in seq order, and is stored once — across a server restart on the same database, and across the
 * death of one of two instances. And a gap too long to replay ends in one `reset`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SocketBase } from '@socket-base/client';
import WebSocket from 'ws';
import {
  assertGapless,
  createProjectAt,
  fullHistory,
  type ServerProcess,
  spawnServer,
} from '../helpers/ops.js';
import { type TestSchemas, testSchemas } from '../helpers/postgres.js';
import { Received, sdkClient, waitState } from '../helpers/sdk.js';
import { signToken, startTestServer } from '../helpers/server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const ADMIN_TOKEN = 'sdk-recovery-admin-token';
const PER_CLIENT = 30;
const SEND_EVERY_MS = 8;

interface Member {
  client: SocketBase;
  user: string;
  received: Received;
  /** Its states from the start, to show that the fault really reached it. */
  states: string[];
  /** Sends made while it was not connected (they waited for the rejoin). */
  sentWhileDown: number;
}

function member(client: SocketBase, user: string, room: string): Member {
  const states: string[] = [];
  client.on('state', (state) => states.push(state));
  return { client, user, received: new Received(client.room(room)), states, sentWhileDown: 0 };
}

/**
 * Each member sends PER_CLIENT numbered messages, one every few ms without waiting for answers;
 * `fault` runs once every member has sent a third of them. Resolves with what the sends answered.
 */
async function chatThrough(
  members: readonly Member[],
  room: string,
  fault: () => Promise<void>,
): Promise<{ id: string; seq: number }[]> {
  let faulted: Promise<void> | undefined;
  const sends = members.map(async (member) => {
    const results: Promise<{ id: string; seq: number }>[] = [];
    for (let i = 0; i < PER_CLIENT; i++) {
      if (member.client.state !== 'open') member.sentWhileDown++;
      results.push(member.client.room(room).send(`${member.user}:${i}`));
      if (i === Math.floor(PER_CLIENT / 3) && member === members[0]) faulted = fault();
      await new Promise((resolve) => setTimeout(resolve, SEND_EVERY_MS));
    }
    return Promise.all(results);
  });
  const answered = (await Promise.all(sends)).flat();
  await faulted;
  return answered;
}

function assertEveryoneGotEverything(members: readonly Member[]): void {
  const expected = members
    .flatMap((member) => Array.from({ length: PER_CLIENT }, (_, i) => `${member.user}:${i}`))
    .sort();
  for (const member of members) {
    member.received.assertInOrderOnce();
    assertGapless(member.received.messages, `${member.user}'s deliveries`);
    assert.deepEqual(
      member.received.messages.map((m) => m.payload).sort(),
      expected,
      `${member.user} got every message once`,
    );
    // One sender's messages in the order it sent them.
    for (const sender of members) {
      const own = member.received.messages
        .filter((m) => m.from === sender.user)
        .map((m) => Number(m.payload.split(':')[1]));
      assert.deepEqual(
        own,
        own.slice().sort((a, b) => a - b),
        `${sender.user}'s order as ${member.user} saw it`,
      );
    }
  }
}

describe('the SDK across a server restart (SQLite, same database)', () => {
  let cwd: string;
  let server: ServerProcess;
  let env: Record<string, string>;

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'sb-sdk-restart-'));
    env = {
      DATABASE_URL: `sqlite:${join(cwd, 'db.sqlite')}`,
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      SHUTDOWN_DELAY_MS: '0',
    };
    server = await spawnServer(env, cwd);
  });
  after(async () => {
    await server.stop('SIGTERM');
    rmSync(cwd, { recursive: true, force: true });
  });

  it('every message of every client reaches every member once, in seq order, stored once', async () => {
    const project = await createProjectAt(server.url, ADMIN_TOKEN, 'restart');
    const url = server.url;
    const members: Member[] = [];
    for (const user of ['ann', 'ben', 'cy']) {
      const client = sdkClient({
        url,
        hash: project.hash,
        token: () => signToken(project.jwtSecret, user),
      });
      members.push(member(client, user, 'chat'));
      await client.room('chat', { presence: true }).join();
    }
    const answered = await chatThrough(members, 'chat', async () => {
      await server.stop('SIGTERM');
      server = await spawnServer({ ...env, PORT: new URL(url).port }, cwd);
    });
    const total = members.length * PER_CLIENT;
    for (const { user, states } of members) assert.ok(states.includes('reconnecting'), user);
    assert.ok(
      members.some((m) => m.sentWhileDown > 0),
      'some sends were made while the server was down',
    );
    assert.equal(new Set(answered.map((a) => a.seq)).size, total, 'each send has its own seq');
    for (const member of members) await member.received.count(total);
    assertEveryoneGotEverything(members);
    const token = await signToken(project.jwtSecret, 'reader');
    const stored = await fullHistory(server.url, { hash: project.hash, token }, 'chat');
    assertGapless(stored, 'the stored room');
    assert.equal(stored.length, total, 'stored once each');
    for (const member of members) member.client.close();
  });
});

describe('the SDK across the death of one of two instances (Redis + PostgreSQL)', () => {
  let schemas: TestSchemas;
  let cwd: string;
  const instances: ServerProcess[] = [];

  before(async () => {
    schemas = await testSchemas();
    cwd = mkdtempSync(join(tmpdir(), 'sb-sdk-death-'));
    const env = {
      DATABASE_URL: schemas.urlFor(await schemas.create()),
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `sb-test-${randomBytes(6).toString('hex')}:`,
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      SHUTDOWN_DELAY_MS: '0',
    };
    for (let i = 0; i < 2; i++) instances.push(await spawnServer(env, cwd));
  });
  after(async () => {
    await Promise.all(instances.map((instance) => instance.stop('SIGTERM')));
    await schemas.dropAll();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('clients given both URLs move to the live one; nothing lost, repeated or reordered', async () => {
    const [a, b] = instances as [ServerProcess, ServerProcess];
    const project = await createProjectAt(a.url, ADMIN_TOKEN, 'death');
    const members: Member[] = [];
    const placement: [string, string[]][] = [
      ['ann', [a.url, b.url]],
      ['ben', [b.url, a.url]],
      ['cy', [a.url, b.url]],
    ];
    for (const [user, urls] of placement) {
      const client = sdkClient({
        url: urls,
        hash: project.hash,
        token: () => signToken(project.jwtSecret, user),
      });
      members.push(member(client, user, 'chat'));
      await client.room('chat').join();
    }
    const answered = await chatThrough(members, 'chat', async () => {
      await a.stop('SIGKILL');
    });
    const total = members.length * PER_CLIENT;
    const moved = members.filter((m) => m.user !== 'ben');
    for (const { user, states } of moved) assert.ok(states.includes('reconnecting'), user);
    assert.deepEqual(members[1]?.states, ['connecting', 'open'], 'ben, on b, was not disturbed');
    assert.equal(new Set(answered.map((x) => x.seq)).size, total, 'each send has its own seq');
    for (const member of members) await member.received.count(total);
    assertEveryoneGotEverything(members);
    const token = await signToken(project.jwtSecret, 'reader');
    const stored = await fullHistory(b.url, { hash: project.hash, token }, 'chat');
    assertGapless(stored, 'the stored room');
    assert.equal(stored.length, total, 'stored once each');
    for (const member of members) member.client.close();
  });
});

describe('the SDK when recovery is impossible', () => {
  it('a short gap is replayed; one past RECOVERY_MAX_MESSAGES emits reset once and goes on live', async () => {
    const server = await startTestServer({ RECOVERY_MAX_MESSAGES: '5' });
    const proxy = await startTcpProxy(Number(new URL(server.url).port));
    try {
      const project = await server.createProject('reset');
      const publisher = await signToken(project.jwtSecret, 'pub');
      const publish = async (payload: string): Promise<void> => {
        const response = await server.api('POST', '/api/message', {
          hash: project.hash,
          token: publisher,
          body: { room: 'r', payload },
        });
        assert.equal(response.status, 200);
      };
      const client = sdkClient({
        url: `http://127.0.0.1:${proxy.port}`,
        hash: project.hash,
        token: await signToken(project.jwtSecret, 'reader'),
      });
      const room = client.room('r');
      const received = new Received(room);
      let resets = 0;
      room.on('reset', () => resets++);
      await room.join();
      await publish('m1');
      await received.count(1);

      proxy.cut();
      await waitState(client, 'reconnecting');
      for (const n of [2, 3, 4]) await publish(`m${n}`);
      proxy.restore();
      await received.count(4);
      assert.equal(resets, 0, 'three missed messages are replayed, no reset');

      proxy.cut();
      await waitState(client, 'reconnecting');
      for (let n = 5; n <= 14; n++) await publish(`m${n}`);
      const reset = new Promise<void>((resolve) => room.on('reset', () => resolve()));
      proxy.restore();
      await reset;
      await waitState(client, 'open');
      await publish('m15');
      await received.count(5);
      assert.deepEqual(
        received.messages.map((m) => m.payload),
        ['m1', 'm2', 'm3', 'm4', 'm15'],
      );
      assert.equal(resets, 1);
      assert.equal(room.lastSeq, 15);
      const reloaded = await room.history({ since: 4 });
      assert.equal(reloaded.messages.length, 11, 'what the reset skipped is in history');
      client.close();
    } finally {
      await proxy.close();
      await server.close();
    }
  });
});

describe('the SDK when the network fails under it', () => {
  it('a send whose answer was lost is sent again with its key: stored once, answered duplicate', async () => {
    const server = await startTestServer();
    const proxy = await startTcpProxy(Number(new URL(server.url).port));
    try {
      const project = await server.createProject('lost-ack');
      const token = await signToken(project.jwtSecret, 'sender');
      const client = sdkClient({
        url: `http://127.0.0.1:${proxy.port}`,
        hash: project.hash,
        token,
        // An all-zero mask leaves the client's frames readable, so the proxy can spot the send.
        WebSocket: class extends WebSocket {
          constructor(url: string) {
            super(url, { generateMask: (mask: Buffer) => void mask.fill(0) });
          }
        },
      });
      const room = client.room('r');
      const received = new Received(room);
      await room.join();
      proxy.holdRepliesAfter(Buffer.from('"type":"message"'));
      const sent = room.send('exactly once');
      const stored = async (): Promise<number> => {
        const response = await server.api('GET', '/api/rooms/r/messages', {
          hash: project.hash,
          token,
        });
        return ((await response.json()) as { messages: unknown[] }).messages.length;
      };
      while ((await stored()) === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      proxy.cut();
      proxy.restore();
      const result = await sent;
      assert.equal(result.duplicate, true, 'the retry found the first copy');
      assert.equal(result.seq, 1);
      assert.equal(await stored(), 1);
      await received.count(1);
      assert.deepEqual(
        received.messages.map((m) => m.payload),
        ['exactly once'],
      );
      client.close();
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  it('a silent network (no close, no bytes) is found by the ping and left for a new connection', async () => {
    const server = await startTestServer();
    const proxy = await startTcpProxy(Number(new URL(server.url).port));
    try {
      const project = await server.createProject('silent');
      const client = sdkClient({
        url: `http://127.0.0.1:${proxy.port}`,
        hash: project.hash,
        token: await signToken(project.jwtSecret, 'quiet'),
        pingIntervalMs: 100,
        pongTimeoutMs: 100,
        connectTimeoutMs: 300,
      });
      await waitState(client, 'open');
      const first = client.connectionId;
      proxy.freeze();
      await waitState(client, 'reconnecting', 3000);
      proxy.restore();
      await waitState(client, 'open', 5000);
      assert.notEqual(client.connectionId, first);
      client.close();
    } finally {
      await proxy.close();
      await server.close();
    }
  });
});
