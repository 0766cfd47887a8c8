import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { busContract, Recorder, roomMessage } from './bus.contract.js';

// One process has one bus: both sides of the pair are the same instance.
busContract('MemoryBus', async () => {
  const bus = new MemoryBus();
  return { a: bus, b: bus, cleanup: () => bus.close() };
});

describe('MemoryBus', () => {
  it('delivers after publish has returned, never inside the call', async () => {
    const bus = new MemoryBus();
    const at = new Recorder(bus);
    await bus.subscribe('room:p1:lobby');
    const published = bus.publish('room:p1:lobby', roomMessage(1));
    assert.deepEqual(at.deliveries, []);
    await published;
    assert.deepEqual(await at.waitFor('room:p1:lobby', 1), [roomMessage(1)]);
    await bus.close();
  });

  it('keeps publish order across topics', async () => {
    const bus = new MemoryBus();
    const at = new Recorder(bus);
    await bus.subscribe('room:p1:a');
    await bus.subscribe('room:p1:b');
    const topics = Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? 'room:p1:a' : 'room:p1:b'));
    await Promise.all(topics.map((topic, i) => bus.publish(topic, roomMessage(i + 1))));
    await at.waitFor('room:p1:b', topics.filter((t) => t === 'room:p1:b').length);
    assert.deepEqual(
      at.deliveries,
      topics.map((topic, i) => ({ topic, event: roomMessage(i + 1) })),
    );
    await bus.close();
  });

  it('delivers the events taken before close, and none after', async () => {
    const bus = new MemoryBus();
    const at = new Recorder(bus);
    await bus.subscribe('room:p1:lobby');
    const taken = bus.publish('room:p1:lobby', roomMessage(1));
    await bus.close();
    await taken;
    assert.deepEqual(at.on('room:p1:lobby'), [roomMessage(1)]);
    await assert.rejects(bus.subscribe('room:p1:lobby'), /closed/);
  });

  it('stops delivering an event already queued when its topic is unsubscribed', async () => {
    const bus = new MemoryBus();
    const at = new Recorder(bus);
    await bus.subscribe('room:p1:lobby');
    await bus.subscribe('project:p1');
    const queued = bus.publish('room:p1:lobby', roomMessage(1));
    const unsubscribed = bus.unsubscribe('room:p1:lobby');
    await bus.publish('project:p1', roomMessage(2));
    await Promise.all([queued, unsubscribed]);
    await at.waitFor('project:p1', 1);
    assert.deepEqual(at.on('room:p1:lobby'), []);
    await bus.close();
  });
});
