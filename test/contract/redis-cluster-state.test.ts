import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { ClusterState } from '../../src/cluster/cluster-state.js';
import {
  RedisClusterState,
  type RedisClusterStateOptions,
} from '../../src/cluster/redis-cluster-state.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { clusterStateContract, is, Transitions, transition } from './cluster-state.contract.js';

const REDIS_PORT = 6379;
const SHARED_URL = `redis://127.0.0.1:${REDIS_PORT}`;
const TTL_MS = 500;

function testPrefix(): string {
  return `socket-base-test:${randomUUID()}:`;
}

/** Deletes what a test left under its own prefix, and nothing else. */
async function dropPrefix(prefix: string): Promise<void> {
  const admin = new Redis(SHARED_URL);
  try {
    let cursor = '0';
    do {
      // Buffers: names in keys are UTF-16 bytes (redis-scripts.ts), which a string would mangle.
      const [next, keys] = await admin.scanBuffer(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next.toString();
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    await admin.quit();
  }
}

interface Node {
  state: RedisClusterState;
  proxy: TcpProxy;
}

/** Instances each behind a TCP proxy of its own, so that one can be cut off from Redis. */
class Cluster {
  readonly prefix = testPrefix();
  readonly nodes: Node[] = [];

  /** Starts an instance; `before` runs first (to listen from its very first call). */
  async add(
    options: Partial<RedisClusterStateOptions> = {},
    before?: (state: RedisClusterState) => void,
  ): Promise<Node> {
    const proxy = await startTcpProxy(REDIS_PORT);
    const state = new RedisClusterState({
      url: `redis://127.0.0.1:${proxy.port}`,
      prefix: this.prefix,
      ttlMs: TTL_MS,
      commandTimeoutMs: 1000,
      onLinkError() {},
      ...options,
    });
    const node = { state, proxy };
    this.nodes.push(node);
    before?.(state);
    await state.start();
    return node;
  }

  proxyOf(state: ClusterState): TcpProxy {
    const node = this.nodes.find((n) => n.state === state);
    if (!node) throw new Error('not an instance of this cluster');
    return node.proxy;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.state.close()));
    await Promise.all(this.nodes.map((n) => n.proxy.close()));
    await dropPrefix(this.prefix);
  }
}

clusterStateContract('RedisClusterState', async (count) => {
  const cluster = new Cluster();
  for (let i = 0; i < count; i++) await cluster.add();
  return {
    instances: cluster.nodes.map((n) => n.state),
    ttlMs: TTL_MS,
    // Cut off from Redis for good, it can neither refresh nor give up its lease: dead to the others.
    async kill(state) {
      cluster.proxyOf(state).cut();
    },
    cleanup: () => cluster.cleanup(),
  };
});

/** For states no event announces, such as a link noticing it is gone. */
function until(what: string, check: () => boolean): Promise<void> {
  return eventually(what, async () => check(), 5000);
}

describe('RedisClusterState', () => {
  let cluster: Cluster;
  afterEach(async () => {
    await cluster.cleanup();
  });

  /** Two instances whose leases outlast a short outage. */
  async function pair(ttlMs = 10_000) {
    cluster = new Cluster();
    const a = await cluster.add({ ttlMs });
    const b = await cluster.add({ ttlMs });
    const transitions = new Transitions([a.state, b.state]);
    // A call of a after b started: a knows there are two instances.
    await transitions.settle(a.state);
    return { a: a.state, b: b.state, proxy: a.proxy, transitions };
  }

  async function outage(state: ClusterState, proxy: TcpProxy): Promise<void> {
    proxy.cut();
    await until('the instance to notice', () => !state.healthy());
  }

  async function back(state: ClusterState, proxy: TcpProxy): Promise<void> {
    proxy.restore();
    await until('the instance to be healthy again', () => state.healthy());
  }

  it('while Redis is away, reads answer from the local view with partial: true', async () => {
    const { a, b, proxy } = await pair();
    a.enter('p1', 'lobby', 'alice');
    a.enter('p1', null, 'alice');
    b.enter('p1', 'lobby', 'bob');
    await Promise.all([a.counts('p1'), b.counts('p1')]);
    await outage(a, proxy);
    assert.equal(a.healthy(), false);
    assert.deepEqual(await a.presence('p1', 'lobby', undefined, 10), {
      users: [{ user: 'alice', connections: 1 }],
      count: 1,
      partial: true,
    });
    assert.deepEqual(await a.rooms('p1', undefined, 10), {
      rooms: [{ room: 'lobby', present: 1 }],
      partial: true,
    });
    assert.deepEqual(await a.counts('p1'), { connections: 1, users: 1, rooms: 1, partial: true });
    assert.deepEqual(await a.totals(), {
      connections: 1,
      users: 1,
      rooms: 1,
      instances: 2,
      partial: true,
    });
    a.enter('p1', 'lobby', 'carol');
    assert.equal((await a.presence('p1', 'lobby', undefined, 10)).count, 2, 'sees its own');
    assert.equal((await b.presence('p1', 'lobby', undefined, 10)).partial, false);
    await back(a, proxy);
    assert.equal((await a.presence('p1', 'lobby', undefined, 10)).count, 3);
  });

  it('enters and exits made while Redis is away reach it when it is back, their transitions once', async () => {
    const { a, b, proxy, transitions } = await pair();
    a.enter('p1', 'lobby', 'alice');
    b.enter('p1', 'lobby', 'bob');
    await transitions.waitFor((t) => t.present, 2);
    await outage(a, proxy);
    a.exit('p1', 'lobby', 'alice');
    a.enter('p1', 'lobby', 'carol');
    a.enter('p1', 'lobby', 'bob');
    a.enter('p1', 'lobby', 'dave');
    a.exit('p1', 'lobby', 'dave');
    await a.presence('p1', 'lobby', undefined, 10);
    assert.equal(transitions.reported().length, 2, 'nothing is reported while away');
    await back(a, proxy);
    await transitions.waitFor(is(transition('carol', true)));
    await Promise.all([a, b].map((s) => transitions.settle(s)));
    assert.deepEqual(
      transitions
        .reported()
        .slice(2)
        .map((s) => [s.instance, s.transition]),
      [
        [0, transition('alice', false)],
        [0, transition('carol', true)],
      ],
    );
    assert.deepEqual((await b.presence('p1', 'lobby', undefined, 10)).users, [
      { user: 'bob', connections: 2 },
      { user: 'carol', connections: 1 },
    ]);
  });

  it('while Redis is away, admit enforces this instance’s share of each limit', async () => {
    const { a, b, proxy } = await pair();
    const project = { maxConnections: 4, maxConnectionsPerUser: null };
    const perUser = { maxConnections: null, maxConnectionsPerUser: 3 };
    assert.equal(await a.admit('p1', 'x', project), 'admitted');
    assert.equal(await b.admit('p1', 'y', project), 'admitted');
    await outage(a, proxy);
    // Two instances alive when last known: a share of ceil(4 / 2) = 2, against a's own.
    assert.equal(await a.admit('p1', 'z', project), 'admitted');
    assert.equal(await a.admit('p1', 'w', project), 'projectFull');
    // ceil(3 / 2) = 2 connections of one user here.
    assert.equal(await a.admit('p2', 'x', perUser), 'admitted');
    assert.equal(await a.admit('p2', 'x', perUser), 'admitted');
    assert.equal(await a.admit('p2', 'x', perUser), 'userFull');
    await back(a, proxy);
    await a.counts('p1');
    assert.equal((await b.counts('p1')).connections, 3);
    assert.equal((await b.counts('p2')).connections, 2);
    assert.equal(await b.admit('p1', 'v', project), 'admitted');
    assert.equal(await a.admit('p1', 'v', project), 'projectFull');
  });

  it('while Redis is away, takeBudget draws from a bucket of this instance’s share, starting empty', async () => {
    const { a, proxy } = await pair();
    assert.equal(await a.takeBudget('p1', 100, 10, 10), 10);
    await outage(a, proxy);
    const started = performance.now();
    assert.equal(await a.takeBudget('p1', 100, 10, 100), 0);
    let granted = 0;
    while (performance.now() - started < 1000) {
      granted += await a.takeBudget('p1', 100, 10, 100);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const seconds = (performance.now() - started) / 1000;
    // Half the rate (two instances), at most half the burst held at once.
    assert.ok(granted <= 50 * seconds + 1, `${granted} in ${seconds} s`);
    assert.ok(granted >= 25 * seconds, `only ${granted} in ${seconds} s`);
    await back(a, proxy);
  });

  it('an outage longer than ttlMs: a survivor reaps it, and its users come back with it', async () => {
    cluster = new Cluster();
    const a = await cluster.add();
    const b = await cluster.add();
    const transitions = new Transitions([a.state, b.state]);
    a.state.enter('p1', 'lobby', 'alice');
    b.state.enter('p1', 'lobby', 'bob');
    await transitions.waitFor((t) => t.present, 2);
    a.proxy.cut();
    const [left] = await transitions.waitFor(is(transition('alice', false)));
    assert.equal(left?.instance, 1, 'reported by the survivor');
    assert.equal((await b.state.totals()).instances, 1);
    a.proxy.restore();
    const [, again] = await transitions.waitFor(is(transition('alice', true)), 2);
    assert.equal(again?.instance, 0, 'reported by the instance that came back');
    await Promise.all([a.state, b.state].map((s) => transitions.settle(s)));
    assert.equal(transitions.reported().length, 4);
    assert.equal((await b.state.presence('p1', 'lobby', undefined, 10)).count, 2);
    assert.equal((await b.state.totals()).instances, 2);
  });

  it('Redis losing every key: each instance restores its own entries, reporting them again', async () => {
    const { a, b, transitions } = await pair(TTL_MS);
    a.enter('p1', 'lobby', 'alice');
    a.enter('p1', null, 'alice');
    b.enter('p1', 'lobby', 'bob');
    b.enter('p1', null, 'bob');
    await transitions.waitFor((t) => t.present, 2);
    await dropPrefix(cluster.prefix);
    await transitions.waitFor((t) => t.present, 4);
    await Promise.all([a, b].map((s) => transitions.settle(s)));
    const again = transitions.reported().slice(2);
    assert.deepEqual(
      again.map((s) => [s.instance, s.transition]).sort((x, y) => Number(x[0]) - Number(y[0])),
      [
        [0, transition('alice', true)],
        [1, transition('bob', true)],
      ],
    );
    assert.deepEqual((await a.presence('p1', 'lobby', undefined, 10)).users, [
      { user: 'alice', connections: 1 },
      { user: 'bob', connections: 1 },
    ]);
    assert.deepEqual(await b.totals(), {
      connections: 2,
      users: 2,
      rooms: 1,
      instances: 2,
      partial: false,
    });
  });

  it('a silent network (calls time out) counts as away; what was held back applies once, on return', async () => {
    const { a, b, proxy, transitions } = await pair();
    a.enter('p1', 'lobby', 'alice');
    await transitions.waitFor(is(transition('alice', true)));
    proxy.freeze();
    a.enter('p1', 'lobby', 'carol');
    a.exit('p1', 'lobby', 'alice');
    // Answered from the local view once the call holding the changes has timed out.
    assert.deepEqual(await a.presence('p1', 'lobby', undefined, 10), {
      users: [{ user: 'carol', connections: 1 }],
      count: 1,
      partial: true,
    });
    assert.equal(a.healthy(), false);
    await back(a, proxy);
    await transitions.waitFor(is(transition('carol', true)));
    await Promise.all([a, b].map((s) => transitions.settle(s)));
    assert.deepEqual(
      transitions.reported().map((s) => [s.instance, s.transition]),
      [
        [0, transition('alice', true)],
        [0, transition('carol', true)],
        [0, transition('alice', false)],
      ],
    );
    assert.deepEqual((await b.presence('p1', 'lobby', undefined, 10)).users, [
      { user: 'carol', connections: 1 },
    ]);
  });

  it('Redis restarted empty: scripts are loaded again and each instance restores its entries', async () => {
    cluster = new Cluster();
    const server = await startRedisServer();
    try {
      const options = { url: server.url, prefix: cluster.prefix, ttlMs: 10_000, onLinkError() {} };
      const a = new RedisClusterState(options);
      const b = new RedisClusterState(options);
      const transitions = new Transitions([a, b]);
      try {
        await Promise.all([a.start(), b.start()]);
        a.enter('p1', 'lobby', 'alice');
        b.enter('p1', 'lobby', 'bob');
        b.enter('p1', null, 'bob');
        await transitions.waitFor((t) => t.present, 2);
        await server.restart();
        await transitions.waitFor((t) => t.present, 4);
        await until('both to be healthy', () => a.healthy() && b.healthy());
        assert.deepEqual((await a.presence('p1', 'lobby', undefined, 10)).users, [
          { user: 'alice', connections: 1 },
          { user: 'bob', connections: 1 },
        ]);
        assert.deepEqual(await a.totals(), {
          connections: 1,
          users: 1,
          rooms: 1,
          instances: 2,
          partial: false,
        });
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    } finally {
      await server.stop();
    }
  });

  it('a transition whose answer was lost is reported once, with the next answer', async () => {
    const { a, b, proxy, transitions } = await pair();
    proxy.holdRepliesAfter(Buffer.from('lost-answer', 'utf16le').swap16());
    a.enter('p1', 'lobby', 'lost-answer');
    await eventually('Redis to have it', async () => {
      return (await b.presence('p1', 'lobby', undefined, 10)).count === 1;
    });
    assert.deepEqual(transitions.reported(), []);
    proxy.cut();
    await until('the instance to notice', () => !a.healthy());
    await back(a, proxy);
    await transitions.waitFor(is(transition('lost-answer', true)));
    await Promise.all([a, b].map((s) => transitions.settle(s)));
    assert.deepEqual(
      transitions.reported().map((s) => [s.instance, s.transition]),
      [[0, transition('lost-answer', true)]],
    );
  });

  it('starts while Redis is away without rejecting, and takes its lease once Redis answers', async () => {
    cluster = new Cluster();
    const b = await cluster.add();
    const proxy = await startTcpProxy(REDIS_PORT);
    proxy.cut();
    const state = new RedisClusterState({
      url: `redis://127.0.0.1:${proxy.port}`,
      prefix: cluster.prefix,
      ttlMs: TTL_MS,
      connectTimeoutMs: 200,
      onLinkError() {},
    });
    cluster.nodes.push({ state, proxy });
    await state.start();
    assert.equal(state.healthy(), false);
    state.enter('p1', 'lobby', 'alice');
    assert.equal((await state.presence('p1', 'lobby', undefined, 10)).partial, true);
    proxy.restore();
    await until('the instance to be healthy', () => state.healthy());
    await state.counts('p1');
    assert.equal((await b.state.presence('p1', 'lobby', undefined, 10)).count, 1);
    assert.equal((await b.state.totals()).instances, 2);
  });

  it('an instance started under the id of a dead one takes its lease over, and its users leave', async () => {
    cluster = new Cluster();
    const old = await cluster.add({ instanceId: 'instance-1', ttlMs: 60_000 });
    old.state.enter('p1', 'lobby', 'alice');
    await old.state.counts('p1');
    old.proxy.cut();
    let transitions: Transitions | undefined;
    const next = await cluster.add({ instanceId: 'instance-1' }, (state) => {
      transitions = new Transitions([state]);
    });
    assert.ok(transitions);
    await transitions.waitFor(is(transition('alice', false)));
    assert.equal((await next.state.presence('p1', 'lobby', undefined, 10)).count, 0);
    assert.equal((await next.state.totals()).instances, 1);
  });

  it('closes promptly while Redis is away, leaving the lease to lapse', async () => {
    const { a, b, proxy, transitions } = await pair(TTL_MS);
    a.enter('p1', 'lobby', 'alice');
    await transitions.waitFor(is(transition('alice', true)));
    await outage(a, proxy);
    const started = performance.now();
    await a.close();
    assert.ok(performance.now() - started < 500, 'close waited for Redis');
    const [left] = await transitions.waitFor(is(transition('alice', false)));
    assert.equal(left?.instance, 1);
    assert.equal((await b.presence('p1', 'lobby', undefined, 10)).count, 0);
  });

  it('a call made while an answer is on its way goes out at once, not at the next refresh', {
    timeout: 15_000,
  }, async () => {
    // Refreshes every 20 s: any call left waiting for one would blow the bound below.
    const { a } = await pair(60_000);
    const none = { maxConnections: null, maxConnectionsPerUser: null };
    const started = performance.now();
    for (let i = 0; i < 50; i++) {
      assert.equal(await a.admit('p1', `user-${i}`, none), 'admitted');
      a.enter('p1', 'lobby', `user-${i}`);
      assert.equal((await a.presence('p1', 'lobby', undefined, 1)).count, i + 1);
      const verdicts = await Promise.all([a.admit('p1', 'x', none), a.admit('p2', 'x', none)]);
      assert.deepEqual(verdicts, ['admitted', 'admitted']);
    }
    assert.ok(performance.now() - started < 5000, `${performance.now() - started} ms`);
  });

  it('keeps two prefixes apart on one Redis', async () => {
    cluster = new Cluster();
    const a = await cluster.add();
    const other = new Cluster();
    try {
      const b = await other.add();
      a.state.enter('p1', 'lobby', 'alice');
      b.state.enter('p1', null, 'bob');
      await Promise.all([a.state.counts('p1'), b.state.counts('p1')]);
      assert.deepEqual(await a.state.totals(), {
        connections: 0,
        users: 0,
        rooms: 1,
        instances: 1,
        partial: false,
      });
      assert.equal((await b.state.presence('p1', 'lobby', undefined, 10)).count, 0);
      assert.equal((await b.state.counts('p1')).connections, 1);
    } finally {
      await other.cleanup();
    }
  });
});
