import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { type Frame, TestClient } from '../helpers/client.js';
import {
  assertGapless,
  createProjectAt,
  fullHistory,
  RawClient,
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

const RATE_LIMITED = { type: 'error', message: 'Rate limit exceeded' };
const TOO_MANY_ROOMS = { type: 'error', message: 'Too many rooms' };
const NOT_MEMBER = { type: 'error', message: 'You must join the room first' };

/** One in-process server per describe, with a project and a way to make socket URLs. */
function serverWith(env: Record<string, string>) {
  const context = {
    server: undefined as unknown as TestServer,
    project: undefined as unknown as TestProject,
    url: (sub: string): Promise<string> => memberUrl(context.server, context.project, sub),
    async auth(sub: string): Promise<{ hash: string; token: string }> {
      return { hash: context.project.hash, token: await signToken(context.project.jwtSecret, sub) };
    },
  };
  before(async () => {
    context.server = await startTestServer(env);
    context.project = await context.server.createProject('limits');
  });
  after(() => context.server.close());
  return context;
}

const messagesOf = (client: TestClient): Frame[] =>
  client.frames.filter((frame) => frame.type === 'message');

describe('limits: frame size and broken frames', () => {
  const ctx = serverWith({ MAX_FRAME_BYTES: '1024' });

  it('a frame of exactly MAX_FRAME_BYTES is accepted; one byte more closes the socket with 1009', async () => {
    const alice = await TestClient.connect(await ctx.url('alice'));
    await alice.join('big');
    const envelope = JSON.stringify({ type: 'message', room: 'big', payload: '' });
    const payload = 'x'.repeat(1024 - Buffer.byteLength(envelope));
    const fitting = JSON.stringify({ type: 'message', room: 'big', payload });
    assert.equal(Buffer.byteLength(fitting), 1024);
    alice.send(fitting);
    const [delivered] = await alice.collect('message', 1);
    assert.equal(delivered?.payload, payload);
    alice.drain();
    alice.send(JSON.stringify({ type: 'message', room: 'big', payload: `${payload}y` }));
    const { code } = await alice.waitClosed();
    assert.equal(code, 1009);
    assert.deepEqual(alice.drain(), []);
  });

  it('invalid UTF-8 in a text frame closes the socket with 1007', async () => {
    const raw = await RawClient.connect(await ctx.url('raw'));
    await raw.connected();
    const bytes = Buffer.concat([
      Buffer.from('{"type":"ping","x":"'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('"}'),
    ]);
    raw.send({ opcode: 1, payload: bytes });
    assert.equal(await raw.waitClosed(), 1007);
    assert.deepEqual(
      raw.texts.map((frame) => frame.type),
      ['connected'],
    );
  });

  it('a frame with a reserved (RSV1) bit set closes the socket with 1002', async () => {
    const raw = await RawClient.connect(await ctx.url('raw'));
    await raw.connected();
    raw.send({ opcode: 1, payload: '{"type":"ping"}', rsv: 4 });
    assert.equal(await raw.waitClosed(), 1002);
    assert.deepEqual(
      raw.texts.map((frame) => frame.type),
      ['connected'],
    );
  });

  it('an unmasked client frame closes the socket with 1002, and other sockets go on', async () => {
    const bystander = await TestClient.connect(await ctx.url('bystander'));
    const raw = await RawClient.connect(await ctx.url('raw'));
    await raw.connected();
    raw.send({ opcode: 1, payload: '{"type":"ping"}', mask: false });
    assert.equal(await raw.waitClosed(), 1002);
    assert.deepEqual(await bystander.request({ type: 'ping' }), { type: 'pong' });
    bystander.close();
  });

  it('a well-formed raw client is served like any other (the raw client itself is sound)', async () => {
    const raw = await RawClient.connect(await ctx.url('raw'));
    await raw.connected();
    raw.sendText('{"type":"ping"}');
    await raw.waitFor(() => raw.texts.some((frame) => frame.type === 'pong'), 'pong');
    raw.send({ opcode: 8, payload: Buffer.from([0x03, 0xe8]) });
    assert.equal(await raw.waitClosed(), 1000);
  });
});

describe('limits: rate limit (RATE_LIMIT 5, RATE_BURST 5)', () => {
  const ctx = serverWith({ RATE_LIMIT: '5', RATE_BURST: '5' });

  it('frames past the burst get "Rate limit exceeded", are neither delivered nor stored, and the connection recovers once the bucket refills', async () => {
    const alice = await TestClient.connect(await ctx.url('alice'));
    const bob = await TestClient.connect(await ctx.url('bob'));
    await alice.join('rate');
    await bob.join('rate');
    const before = await scrapeMetrics(ctx.server.url);

    for (let i = 0; i < 20; i++) alice.send({ type: 'message', room: 'rate', payload: `m${i}` });
    const answered = (): Frame[] =>
      alice.frames.filter((frame) => frame.type === 'message' || frame.type === 'error');
    await until(alice, () => answered().length >= 20, '20 answers');
    const errors = alice.drain('error');
    const delivered = messagesOf(alice).map((frame) => frame.payload);
    for (const error of errors) assert.deepEqual(error, RATE_LIMITED);
    assert.ok(errors.length > 0, 'some frames are refused');
    assert.ok(delivered.length > 0, 'the burst lets some through');
    assert.equal(errors.length + delivered.length, 20);

    const atBob = await bob.collect('message', delivered.length);
    assert.deepEqual(
      atBob.map((frame) => frame.payload),
      delivered,
    );
    bob.drain();
    // Nothing refused arrives late. Meanwhile (1 s at 5/s) the bucket refills completely.
    await Promise.all([bob.expectSilence(1000), alice.expectSilence(1000)]);

    const history = await fullHistory(ctx.server.url, await ctx.auth('alice'), 'rate');
    assert.deepEqual(
      history.map((message) => message.payload),
      delivered,
    );
    assertGapless(history, 'history');
    const after = await scrapeMetrics(ctx.server.url);
    assert.equal(
      (after.value('socketbase_rate_limited_total', { via: 'ws' }) ?? 0) -
        (before.value('socketbase_rate_limited_total', { via: 'ws' }) ?? 0),
      errors.length,
    );

    for (let i = 0; i < 5; i++) alice.send({ type: 'message', room: 'rate', payload: `again${i}` });
    const again = await alice.collect('message', 5);
    assert.deepEqual(
      again.map((frame) => [frame.payload, frame.seq]),
      [0, 1, 2, 3, 4].map((i) => [`again${i}`, delivered.length + i + 1]),
    );
    assert.deepEqual(alice.drain('error'), []);
    const againAtBob = await bob.collect('message', 5);
    assert.deepEqual(againAtBob, again);
    alice.close();
    bob.close();
  });
});

describe('limits: rooms per connection (MAX_ROOMS_PER_CONNECTION 3)', () => {
  const ctx = serverWith({ MAX_ROOMS_PER_CONNECTION: '3' });

  it('the join past the limit gets "Too many rooms"; rejoining a joined room still answers joined; leaving one frees a place', async () => {
    const alice = await TestClient.connect(await ctx.url('alice'));
    await alice.join('a');
    await alice.join('b');
    await alice.join('c');
    assert.deepEqual(await alice.request({ type: 'join', room: 'd' }), TOO_MANY_ROOMS);
    assert.deepEqual(
      await alice.request({ type: 'message', room: 'd', payload: 'not a member' }),
      NOT_MEMBER,
    );
    assert.deepEqual(await alice.request({ type: 'join', room: 'a' }), {
      type: 'joined',
      room: 'a',
      seq: 0,
    });
    alice.send({ type: 'message', room: 'a', payload: 'once' });
    const [once] = await alice.collect('message', 1);
    assert.equal(once?.payload, 'once');
    alice.drain();
    await alice.expectSilence();

    assert.deepEqual(await alice.request({ type: 'leave', room: 'b' }), {
      type: 'left',
      room: 'b',
    });
    assert.deepEqual(await alice.request({ type: 'join', room: 'd' }), {
      type: 'joined',
      room: 'd',
      seq: 0,
    });
    assert.deepEqual(await alice.request({ type: 'join', room: 'e' }), TOO_MANY_ROOMS);
    alice.send({ type: 'message', room: 'd', payload: 'in d' });
    const [inD] = await alice.collect('message', 1);
    assert.equal(inD?.room, 'd');
    alice.drain();
    assert.deepEqual(await alice.request({ type: 'ping' }), { type: 'pong' });
    assert.equal(alice.closeCode, undefined);
    alice.close();
  });
});

describe('limits: heartbeat (HEARTBEAT_MS 200)', () => {
  const ctx = serverWith({ HEARTBEAT_MS: '200' });

  it('a client that never answers protocol pings is dropped within two intervals', async () => {
    const raw = await RawClient.connect(await ctx.url('silent'));
    await raw.closed;
    const elapsed = performance.now() - raw.handshakeAt;
    assert.ok(raw.pings >= 1, 'the server pinged');
    assert.ok(elapsed < 600, `dropped after ${Math.round(elapsed)} ms`);
  });

  it('a client that answers pings stays connected over many intervals', async () => {
    const alice = await TestClient.connect(await ctx.url('alice'));
    let pings = 0;
    alice.socket.on('ping', () => pings++);
    await alice.expectSilence(1100);
    assert.equal(alice.closeCode, undefined);
    assert.ok(pings >= 4, `pinged ${pings} times`);
    assert.deepEqual(await alice.request({ type: 'ping' }), { type: 'pong' });
    alice.close();
  });

  it('a client that never answers our pings but sends its own protocol pings stays connected', async () => {
    const bob = await TestClient.connect(await ctx.url('bob'), { autoPong: false });
    let pings = 0;
    bob.socket.on('ping', () => pings++);
    const own = setInterval(() => bob.socket.ping(), 100);
    try {
      await bob.expectSilence(1100);
    } finally {
      clearInterval(own);
    }
    assert.equal(bob.closeCode, undefined, 'alive: bytes came back after every ping');
    assert.ok(pings >= 4, `pinged ${pings} times, never answered`);
    await bob.waitClosed(1000);
    assert.equal(bob.closeCode, 1006, 'once it goes quiet too, it is dropped');
  });
});

/**
 * A member that reads as fast as it can and keeps no frames (the volume here is large): it checks
 * that room messages arrive with seq 1, 2, 3, … and payloads `INDEX:…` in the same order.
 */
class Tally {
  readonly socket: WebSocket;
  received = 0;
  readonly problems: string[] = [];
  readonly #waiters = new Set<() => void>();

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as Frame;
      if (frame.type !== 'message') return;
      const expected = this.received + 1;
      if (frame.seq !== expected || !String(frame.payload).startsWith(`${expected - 1}:`)) {
        this.problems.push(`expected seq ${expected}, got ${frame.seq}`);
      }
      this.received = expected;
      for (const waiter of [...this.#waiters]) waiter();
    });
    this.socket.on('close', () => {
      for (const waiter of [...this.#waiters]) waiter();
    });
  }

  async open(room: string): Promise<void> {
    const joined = new Promise<void>((resolve) => {
      this.socket.on('message', (data: Buffer) => {
        if ((JSON.parse(data.toString('utf8')) as Frame).type === 'joined') resolve();
      });
    });
    if (this.socket.readyState === WebSocket.CONNECTING) await once(this.socket, 'open');
    this.socket.send(JSON.stringify({ type: 'join', room }));
    await joined;
  }

  /** Waits until `count` room messages arrived. */
  reach(count: number, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.received >= count) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          resolve();
        } else if (this.socket.readyState > 1) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          reject(new Error(`closed after ${this.received} of ${count} messages`));
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`got ${this.received} of ${count} messages`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    const closed = once(this.socket, 'close');
    this.socket.close();
    await closed;
  }
}

describe('limits: slow consumer (SLOW_CONSUMER_BYTES 65536)', () => {
  let dir: string;
  let server: ServerProcess;
  const adminToken = ADMIN_TOKEN;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'socket-base-slow-'));
    server = await spawnServer(
      {
        DATABASE_URL: `sqlite:${join(dir, 'slow.db')}`,
        ADMIN_TOKEN: adminToken,
        LOG_LEVEL: 'warn',
        SLOW_CONSUMER_BYTES: '65536',
        RATE_LIMIT: '1000000',
        RATE_BURST: '1000000',
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

  it('a member that stops reading is closed with 4009; the others receive everything in order; server memory stays bounded', async () => {
    const project = await createProjectAt(server.url, adminToken, 'slow');
    const url = (sub: string): Promise<string> => memberUrl(server, project, sub);
    const slow = await RawClient.connect(await url('slow'));
    await slow.connected();
    slow.sendText(JSON.stringify({ type: 'join', room: 'firehose' }));
    await slow.waitFor(() => slow.texts.some((frame) => frame.type === 'joined'), 'joined');
    const sender = new Tally(await url('sender'));
    const reader = new Tally(await url('reader'));
    await sender.open('firehose');
    await reader.open('firehose');
    slow.socket.pause();

    const before = await scrapeMetrics(server.url);
    const rssBefore = before.value('process_resident_memory_bytes') ?? 0;
    assert.ok(rssBefore > 0, 'the server reports its RSS');

    // 5000 messages of 16 KiB: 80 MiB that a server without the limit would queue for `slow`,
    // sent three at a time so that a member that does read never has 64 KiB waiting.
    const total = 5000;
    const chunk = 3;
    const filler = 'p'.repeat(16_384);
    for (let sent = 0; sent < total; sent += chunk) {
      for (let i = sent; i < Math.min(sent + chunk, total); i++) {
        sender.socket.send(
          JSON.stringify({ type: 'message', room: 'firehose', payload: `${i}:${filler}` }),
        );
      }
      // Pace the sender by the reader, so that only the slow member could pile bytes up.
      await reader.reach(Math.min(sent + chunk, total));
    }
    await sender.reach(total);

    const after = await scrapeMetrics(server.url);
    const rssGrowth = (after.value('process_resident_memory_bytes') ?? 0) - rssBefore;
    const bytesSent = total * filler.length;
    assert.ok(
      rssGrowth < bytesSent / 2,
      `server RSS grew ${rssGrowth} bytes while ${bytesSent} bytes were sent`,
    );
    assert.equal(
      (after.value('socketbase_slow_consumer_closes_total') ?? 0) -
        (before.value('socketbase_slow_consumer_closes_total') ?? 0),
      1,
    );
    for (const member of [reader, sender]) {
      assert.deepEqual(member.problems, []);
      assert.equal(member.received, total);
      assert.equal(member.socket.readyState, WebSocket.OPEN);
    }

    slow.socket.resume();
    assert.equal(await slow.waitClosed(), 4009);
    const atSlow = slow.texts.filter((frame) => frame.type === 'message');
    assert.ok(atSlow.length < total, 'the slow member was cut off');
    assertGapless(atSlow, 'the slow member, up to its close');
    await Promise.all([sender.close(), reader.close()]);
  });
});
