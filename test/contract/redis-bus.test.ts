import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Bus } from '../../src/bus/bus.js';
import { RedisBus, type RedisBusOptions } from '../../src/bus/redis-bus.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { broadcast, busContract, Recorder, roomMessage } from './bus.contract.js';

const SHARED_URL = 'redis://127.0.0.1:6379';
const DEADLINE_MS = 5000;

function testPrefix(): string {
  return `socket-base-test:${randomUUID()}:`;
}

// Link errors are expected while a test has Redis down; they must not reach the console.
const quiet = { onLinkError() {} };

busContract('RedisBus', async () => {
  const prefix = testPrefix();
  const a = await RedisBus.connect({ url: SHARED_URL, prefix, hooks: quiet });
  const b = await RedisBus.connect({ url: SHARED_URL, prefix, hooks: quiet });
  return { a, b, cleanup: () => closeAll([a, b]) };
});

/** Clients first, then the servers they talk to. */
async function closeAll(closables: Array<Bus | Redis | RedisServer>): Promise<void> {
  const clients = closables.filter((c) => !('stop' in c));
  await Promise.all(
    clients.map((c) => (c instanceof Redis ? closeRaw(c) : 'close' in c ? c.close() : undefined)),
  );
  await Promise.all(closables.map((c) => ('stop' in c ? c.stop() : undefined)));
}

function closeRaw(redis: Redis): Promise<void> {
  if (redis.status === 'end') return Promise.resolve();
  if (redis.status === 'reconnecting') {
    // No socket between attempts, so no 'end' will come: clearing the timer is enough.
    redis.disconnect();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    redis.once('end', () => resolve());
    redis.quit().catch(() => redis.disconnect());
  });
}

/** For states no event announces, such as a link noticing it is gone: bounded polling. */
async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function nextReconnect(bus: Bus): Promise<void> {
  return new Promise((resolve) => bus.onReconnect(resolve));
}

describe('RedisBus', () => {
  const open: Array<Bus | Redis | RedisServer> = [];
  afterEach(async () => {
    await closeAll(open.splice(0));
  });

  async function privatePair(options: Partial<RedisBusOptions> = {}) {
    const server = await startRedisServer();
    open.push(server);
    const prefix = testPrefix();
    const settings = { url: server.url, prefix, hooks: quiet, ...options };
    const a = await RedisBus.connect(settings);
    open.push(a);
    const b = await RedisBus.connect(settings);
    open.push(b);
    return { server, a, b, prefix };
  }

  async function outage(server: RedisServer, buses: Bus[]): Promise<void> {
    await server.stop();
    await waitUntil(() => buses.every((bus) => !bus.healthy()), 'the buses to notice');
  }

  it('is not healthy while Redis is down, and rejects a publish at once', async () => {
    const { server, a } = await privatePair();
    await outage(server, [a]);
    const started = performance.now();
    await assert.rejects(a.publish('room:p1:lobby', roomMessage(1)), Error);
    assert.ok(performance.now() - started < 100, 'publish took too long to reject');
    await server.restart();
    await waitUntil(() => a.healthy(), 'the bus to be healthy again');
  });

  it('rejects a publish in flight when the link drops, and never resends it', async () => {
    const { server, a, b } = await privatePair();
    const atB = new Recorder(b);
    await b.subscribe('room:p1:lobby');
    const admin = new Redis(server.url);
    open.push(admin);
    // Holds the publish in Redis, unanswered, until the server dies.
    await admin.call('CLIENT', 'PAUSE', '60000', 'ALL');
    const inFlight = a.publish('room:p1:lobby', roomMessage(1));
    const lost = assert.rejects(inFlight, /connection lost/);
    const stopped = performance.now();
    await server.stop();
    await lost;
    assert.ok(performance.now() - stopped < 1000, 'publish took too long to reject');
    await server.restart();
    await waitUntil(() => a.healthy() && b.healthy(), 'the buses to be healthy again');
    await a.publish('room:p1:lobby', roomMessage(2));
    assert.deepEqual(await atB.waitFor('room:p1:lobby', 1), [roomMessage(2)]);
  });

  it('subscribes a topic subscribed during the outage as soon as Redis is back', async () => {
    const { server, a, b } = await privatePair();
    const atB = new Recorder(b);
    await outage(server, [a, b]);
    await b.subscribe('room:p1:lobby');
    const reconnected = nextReconnect(b);
    await server.restart();
    await reconnected;
    await waitUntil(() => a.healthy(), 'the publisher to be back');
    await a.publish('room:p1:lobby', roomMessage(1));
    assert.deepEqual(await atB.waitFor('room:p1:lobby', 1), [roomMessage(1)]);
  });

  it('receives again on a topic subscribed before the outage, with no call from the user', async () => {
    const { server, a, b } = await privatePair();
    const atB = new Recorder(b);
    await b.subscribe('room:p1:lobby');
    await a.publish('room:p1:lobby', roomMessage(1));
    await atB.waitFor('room:p1:lobby', 1);
    await outage(server, [a, b]);
    await server.restart();
    await waitUntil(() => a.healthy() && b.healthy(), 'the buses to be healthy again');
    await a.publish('room:p1:lobby', roomMessage(2));
    assert.deepEqual(await atB.waitFor('room:p1:lobby', 2), [roomMessage(1), roomMessage(2)]);
  });

  it('does not subscribe again a topic unsubscribed during the outage', async () => {
    const { server, a, b } = await privatePair();
    const atB = new Recorder(b);
    await b.subscribe('room:p1:lobby');
    await b.subscribe('project:p1');
    await outage(server, [a, b]);
    await b.unsubscribe('room:p1:lobby');
    await server.restart();
    await waitUntil(() => a.healthy() && b.healthy(), 'the buses to be healthy again');
    await a.publish('room:p1:lobby', roomMessage(1));
    await a.publish('project:p1', broadcast('after'));
    await atB.waitFor('project:p1', 1);
    assert.deepEqual(atB.on('room:p1:lobby'), []);
  });

  it('calls onReconnect once per outage, after the topics are subscribed again', async () => {
    const { server, b, prefix } = await privatePair();
    let calls = 0;
    b.onReconnect(() => {
      calls += 1;
    });
    await b.subscribe('room:p1:lobby');
    const admin = new Redis(server.url, { lazyConnect: true });
    open.push(admin);
    const subscribers = new Promise<unknown>((resolve) =>
      b.onReconnect(() => resolve(admin.pubsub('NUMSUB', `${prefix}room:p1:lobby`))),
    );
    assert.equal(calls, 0, 'onReconnect must not fire on the first connection');
    await outage(server, [b]);
    await server.restart();
    assert.deepEqual(await subscribers, [`${prefix}room:p1:lobby`, 1]);
    await waitUntil(() => b.healthy(), 'the bus to be healthy again');
    assert.equal(calls, 1);
  });

  it('fails to connect within connectTimeoutMs when nothing listens, leaving nothing open', async () => {
    const server = await startRedisServer();
    await server.stop();
    const url = server.url;
    await assert.rejects(
      RedisBus.connect({ url, prefix: testPrefix(), hooks: quiet, connectTimeoutMs: 300 }),
      /did not answer within 300 ms/,
    );
  });

  it('keeps two prefixes apart on one Redis', async () => {
    const topic = 'room:p1:lobby';
    const first = await RedisBus.connect({ url: SHARED_URL, prefix: testPrefix(), hooks: quiet });
    open.push(first);
    const second = await RedisBus.connect({ url: SHARED_URL, prefix: testPrefix(), hooks: quiet });
    open.push(second);
    const atFirst = new Recorder(first);
    const atSecond = new Recorder(second);
    await first.subscribe(topic);
    await second.subscribe(topic);
    await first.publish(topic, roomMessage(1));
    await second.publish(topic, roomMessage(2));
    // Each bus hears its own event; had it heard the other's, that one would have come first.
    assert.deepEqual(await atFirst.waitFor(topic, 1), [roomMessage(1)]);
    assert.deepEqual(await atSecond.waitFor(topic, 1), [roomMessage(2)]);
    await first.publish(topic, roomMessage(3));
    await atFirst.waitFor(topic, 2);
    assert.deepEqual(atSecond.deliveries, [{ topic, event: roomMessage(2) }]);
  });

  it('drops and counts what arrives on its channel but is not an event, and keeps delivering', async () => {
    const prefix = testPrefix();
    let malformed = 0;
    const hooks = { ...quiet, onMalformed: () => malformed++ };
    const bus = await RedisBus.connect({ url: SHARED_URL, prefix, hooks });
    open.push(bus);
    const raw = new Redis(SHARED_URL);
    open.push(raw);
    const at = new Recorder(bus);
    await bus.subscribe('room:p1:lobby');
    const channel = `${prefix}room:p1:lobby`;
    const garbage: Array<string | Buffer> = [
      'not json',
      '',
      'null',
      '[1,2]',
      '{"kind":"message","project":"p1"}',
      '{"kind":"unknown","project":"p1"}',
      JSON.stringify({ ...roomMessage(1), message: { ...roomMessage(1), seq: 1.5 } }),
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
    ];
    for (const message of garbage) await raw.publish(channel, message);
    await raw.publish(channel, JSON.stringify(roomMessage(2)));
    assert.deepEqual(await at.waitFor('room:p1:lobby', 1), [roomMessage(2)]);
    assert.equal(malformed, garbage.length);
  });
});
