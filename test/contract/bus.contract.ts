import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Bus, BusEvent } from '../../src/bus/bus.js';

export interface BusPair {
  /** Two instances on the same backing; they may be the same object. */
  a: Bus;
  b: Bus;
  cleanup(): Promise<void>;
}

const WAIT_MS = 5000;

export interface Delivery {
  topic: string;
  event: BusEvent;
}

/** Records what a bus hands to its handlers, and lets a test wait for a number of them. */
export class Recorder {
  readonly deliveries: Delivery[] = [];
  #waiters: Array<() => void> = [];

  constructor(bus: Bus) {
    bus.onEvent((topic, event) => {
      this.deliveries.push({ topic, event });
      for (const waiter of this.#waiters) waiter();
    });
  }

  on(topic: string): BusEvent[] {
    return this.deliveries.filter((d) => d.topic === topic).map((d) => d.event);
  }

  /** Resolves once `count` events arrived on `topic`; fails after a bounded wait. */
  waitFor(topic: string, count: number): Promise<BusEvent[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const events = this.on(topic);
        if (events.length < count) return false;
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(events);
        return true;
      };
      const waiter = () => {
        check();
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.on(topic).length} of ${count} events arrived on ${topic}`));
      }, WAIT_MS);
      if (!check()) this.#waiters.push(waiter);
    });
  }
}

export function broadcast(payload: string, project = 'p1'): BusEvent {
  return { kind: 'broadcast', project, payload, from: 'user-1', ts: 1_700_000_000_000 };
}

export function roomMessage(seq: number, payload = `message ${seq}`): BusEvent {
  const message = { id: `m${seq}`, seq, room: 'lobby', payload, from: 'user-1', ts: 1_700_000_000 };
  return { kind: 'message', project: 'p1', message };
}

/**
 * The Bus contract of src/bus/bus.ts, run on every implementation. `factory` gives two instances
 * on one backing. "Nothing arrives" is checked with a later event the same subscriber awaits on
 * another topic, sent by the same publisher after the one that must not arrive.
 */
export function busContract(name: string, factory: () => Promise<BusPair>): void {
  describe(`Bus contract: ${name}`, () => {
    let pair: BusPair | undefined;
    const open = async (): Promise<BusPair> => {
      pair = await factory();
      return pair;
    };
    afterEach(async () => {
      await pair?.cleanup();
      pair = undefined;
    });

    it('delivers an event to every subscriber of its topic, the publisher included', async () => {
      const { a, b } = await open();
      const atA = new Recorder(a);
      const atB = new Recorder(b);
      await a.subscribe('room:p1:lobby');
      await b.subscribe('room:p1:lobby');
      await a.publish('room:p1:lobby', roomMessage(1));
      assert.deepEqual(await atA.waitFor('room:p1:lobby', 1), [roomMessage(1)]);
      assert.deepEqual(await atB.waitFor('room:p1:lobby', 1), [roomMessage(1)]);
    });

    it('delivers nothing from a topic the bus did not subscribe to', async () => {
      const { a, b } = await open();
      const atB = new Recorder(b);
      await b.subscribe('room:p1:lobby');
      await a.publish('room:p1:other', roomMessage(1));
      await a.publish('room:p2:lobby', roomMessage(2));
      await a.publish('room:p1:lobby', roomMessage(3));
      await atB.waitFor('room:p1:lobby', 1);
      assert.deepEqual(atB.deliveries, [{ topic: 'room:p1:lobby', event: roomMessage(3) }]);
    });

    it('stops delivering a topic once it is unsubscribed', async () => {
      const { a, b } = await open();
      const atB = new Recorder(b);
      await b.subscribe('room:p1:lobby');
      await b.subscribe('project:p1');
      await a.publish('room:p1:lobby', roomMessage(1));
      await atB.waitFor('room:p1:lobby', 1);
      await b.unsubscribe('room:p1:lobby');
      await a.publish('room:p1:lobby', roomMessage(2));
      await a.publish('project:p1', broadcast('after'));
      await atB.waitFor('project:p1', 1);
      assert.deepEqual(atB.on('room:p1:lobby'), [roomMessage(1)]);
    });

    it("keeps one publisher's order for 1000 events on one topic", async () => {
      const { a, b } = await open();
      const atB = new Recorder(b);
      await b.subscribe('room:p1:lobby');
      const sent = Array.from({ length: 1000 }, (_, i) => roomMessage(i + 1));
      // Published without awaiting each, so that they overtake nothing only if the bus keeps order.
      await Promise.all(sent.map((event) => a.publish('room:p1:lobby', event)));
      assert.deepEqual(await atB.waitFor('room:p1:lobby', 1000), sent);
    });

    it('delivers events on different topics, each on its own topic', async () => {
      const { a, b } = await open();
      const atB = new Recorder(b);
      await b.subscribe('room:p1:lobby');
      await b.subscribe('project:p1');
      await a.publish('project:p1', broadcast('to everyone'));
      await a.publish('room:p1:lobby', roomMessage(1));
      assert.deepEqual(await atB.waitFor('project:p1', 1), [broadcast('to everyone')]);
      assert.deepEqual(await atB.waitFor('room:p1:lobby', 1), [roomMessage(1)]);
    });

    it('delivers every kind of event field for field', async () => {
      const { a, b } = await open();
      const atB = new Recorder(b);
      await b.subscribe('control');
      const sent: BusEvent[] = [
        roomMessage(7),
        broadcast('hello'),
        { kind: 'project-rotated', project: 'p1' },
        { kind: 'project-deleted', project: 'p1' },
      ];
      for (const event of sent) await a.publish('control', event);
      assert.deepEqual(await atB.waitFor('control', sent.length), sent);
    });

    it('round-trips a payload with NUL, emoji, a lone surrogate and line separators exactly', async () => {
      const { a, b } = await open();
      const atB = new Recorder(b);
      await b.subscribe('room:p1:lobby');
      const payload = 'a\u0000b 😀 é 中文 \u2028\u2029 \ud800 "quoted" \\ \n\r\t end';
      await a.publish('room:p1:lobby', roomMessage(1, payload));
      assert.deepEqual(await atB.waitFor('room:p1:lobby', 1), [roomMessage(1, payload)]);
    });

    it('treats a second subscribe as a no-op: one event is delivered once', async () => {
      const { a, b } = await open();
      const atB = new Recorder(b);
      await b.subscribe('room:p1:lobby');
      await b.subscribe('room:p1:lobby');
      await b.subscribe('project:p1');
      await a.publish('room:p1:lobby', roomMessage(1));
      await a.publish('project:p1', broadcast('after'));
      await atB.waitFor('project:p1', 1);
      assert.deepEqual(atB.on('room:p1:lobby'), [roomMessage(1)]);
    });

    it('treats a second unsubscribe as a no-op, and subscribing again delivers again', async () => {
      const { a, b } = await open();
      const atB = new Recorder(b);
      await b.subscribe('room:p1:lobby');
      await b.subscribe('project:p1');
      await b.unsubscribe('room:p1:lobby');
      await b.unsubscribe('room:p1:lobby');
      await b.unsubscribe('room:p1:never-subscribed');
      await a.publish('room:p1:lobby', roomMessage(1));
      await a.publish('project:p1', broadcast('after'));
      await atB.waitFor('project:p1', 1);
      assert.deepEqual(atB.on('room:p1:lobby'), []);
      await b.subscribe('room:p1:lobby');
      await a.publish('room:p1:lobby', roomMessage(2));
      assert.deepEqual(await atB.waitFor('room:p1:lobby', 1), [roomMessage(2)]);
    });

    it('is healthy while open and not after close', async () => {
      const { a } = await open();
      assert.equal(a.healthy(), true);
      await a.close();
      assert.equal(a.healthy(), false);
    });

    it('closes safely twice, in turn and at once', async () => {
      const { a, b } = await open();
      await a.close();
      await a.close();
      await Promise.all([b.close(), b.close()]);
    });

    it('rejects a publish after close', async () => {
      const { a } = await open();
      await a.close();
      await assert.rejects(a.publish('room:p1:lobby', roomMessage(1)), Error);
    });
  });
}
