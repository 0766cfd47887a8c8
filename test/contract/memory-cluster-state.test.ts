import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryClusterState, MemoryDeployment } from '../../src/cluster/memory-cluster-state.js';
import { clusterStateContract, is, Transitions, transition } from './cluster-state.contract.js';

const TTL_MS = 300;

// One instance alone is the server without Redis (its deployment its own, no lease records what it
// counts); several share a MemoryDeployment, as instances share Redis.
clusterStateContract('MemoryClusterState', async (count) => {
  const deployment = new MemoryDeployment();
  const instances = Array.from({ length: count }, () =>
    count === 1
      ? new MemoryClusterState({ ttlMs: TTL_MS })
      : new MemoryClusterState({ deployment, ttlMs: TTL_MS }),
  );
  await Promise.all(instances.map((s) => s.start()));
  return {
    instances,
    ttlMs: TTL_MS,
    async kill(state) {
      (state as MemoryClusterState).crash();
    },
    async cleanup() {
      await Promise.all(instances.map((s) => s.close()));
    },
  };
});

describe('MemoryClusterState', () => {
  it('reports transitions after the call that caused them, never inside it', async () => {
    const state = new MemoryClusterState();
    await state.start();
    const transitions = new Transitions([state]);
    state.enter('p1', 'lobby', 'alice');
    assert.deepEqual(transitions.seen, []);
    await transitions.waitFor(is(transition('alice', true)));
    await state.close();
  });

  it('a default instance has a deployment of its own', async () => {
    const a = new MemoryClusterState();
    const b = new MemoryClusterState();
    await Promise.all([a.start(), b.start()]);
    a.enter('p1', 'lobby', 'alice');
    assert.equal((await b.presence('p1', 'lobby', undefined, 10)).count, 0);
    assert.equal((await b.totals()).instances, 1);
    await Promise.all([a.close(), b.close()]);
  });

  it('an instance whose lease lapsed while it was stalled counts its connections again', async () => {
    const deployment = new MemoryDeployment();
    const a = new MemoryClusterState({ deployment, ttlMs: TTL_MS });
    const b = new MemoryClusterState({ deployment, ttlMs: TTL_MS });
    await Promise.all([a.start(), b.start()]);
    const transitions = new Transitions([a, b]);
    a.enter('p1', 'lobby', 'alice');
    b.enter('p1', 'lobby', 'bob');
    await transitions.waitFor((t) => t.present, 2);
    // The whole process stalls past both leases: the first to refresh reaps the other, which
    // takes its lease again on its own refresh.
    const until = Date.now() + TTL_MS * 2;
    while (Date.now() < until);
    await transitions.waitFor((t) => !t.present, 1);
    await transitions.waitFor((t) => t.present, 3);
    const [left] = transitions.seen.filter((s) => !s.transition.present);
    const user = left?.transition.user;
    assert.deepEqual(
      transitions.seen.slice(2).map((s) => s.transition),
      [transition(user ?? '', false), transition(user ?? '', true)],
    );
    for (const state of [a, b]) {
      assert.equal((await state.presence('p1', 'lobby', undefined, 10)).count, 2);
      assert.equal((await state.totals()).instances, 2);
    }
    await a.close();
    await b.close();
  });
});
