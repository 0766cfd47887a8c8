import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoomMessage } from '../../src/protocol/frames.js';
import { GAP_WAIT_MS, RoomStream } from '../../src/realtime/room-stream.js';

function message(seq: number): RoomMessage {
  return { id: String(seq), seq, room: 'r', payload: `p${seq}`, from: 'u', ts: seq };
}

/** A stream over a fake store holding seqs 1..stored, recording what it delivers. */
function harness(stored: number) {
  const delivered: number[] = [];
  const ranges: [number, number][] = [];
  let filled = 0;
  let waiters: (() => void)[] = [];
  const stream = new RoomStream(
    {
      async range(from, to) {
        ranges.push([from, to]);
        const out: RoomMessage[] = [];
        for (let seq = from; seq <= Math.min(to, stored); seq++) out.push(message(seq));
        return out;
      },
    },
    (m) => {
      delivered.push(m.seq);
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },
    (count) => {
      filled += count;
    },
  );
  const until = (count: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${delivered}`)), 10 * GAP_WAIT_MS);
      const check = (): void => {
        if (delivered.length >= count) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { stream, delivered, ranges, until, filled: () => filled };
}

describe('RoomStream: one room, in seq order, each message once', () => {
  it('delivers messages that arrive in order at once', () => {
    const { stream, delivered } = harness(3);
    stream.start(0);
    for (const seq of [1, 2, 3]) stream.accept(message(seq));
    assert.deepEqual(delivered, [1, 2, 3]);
  });

  it('holds a message that arrives early until the missing one comes', () => {
    const { stream, delivered } = harness(3);
    stream.start(0);
    stream.accept(message(2));
    stream.accept(message(3));
    assert.deepEqual(delivered, []);
    stream.accept(message(1));
    assert.deepEqual(delivered, [1, 2, 3]);
    stream.close();
  });

  it('drops duplicates and messages from before the baseline', () => {
    const { stream, delivered } = harness(7);
    stream.start(5);
    stream.accept(message(4));
    stream.accept(message(6));
    stream.accept(message(6));
    stream.accept(message(7));
    stream.accept(message(5));
    assert.deepEqual(delivered, [6, 7]);
  });

  it('fills a gap that does not fill by itself from the store', async () => {
    const { stream, delivered, until, filled } = harness(5);
    stream.start(0);
    stream.accept(message(1));
    stream.accept(message(4));
    stream.accept(message(5));
    await until(5);
    assert.deepEqual(delivered, [1, 2, 3, 4, 5]);
    assert.equal(filled(), 2);
    stream.close();
  });

  it('holds what arrives before its baseline is known, then starts from it', () => {
    const { stream, delivered } = harness(4);
    stream.accept(message(4));
    stream.accept(message(3));
    stream.start(2);
    assert.deepEqual(delivered, [3, 4]);
  });

  it('catches up from the store after a bus outage', async () => {
    const { stream, delivered, until } = harness(4);
    stream.start(0);
    stream.accept(message(1));
    stream.catchUp();
    await until(4);
    assert.deepEqual(delivered, [1, 2, 3, 4]);
    stream.accept(message(3));
    assert.deepEqual(delivered, [1, 2, 3, 4]);
  });

  it('delivers nothing after close', () => {
    const { stream, delivered } = harness(2);
    stream.start(0);
    stream.close();
    stream.accept(message(1));
    assert.deepEqual(delivered, []);
  });
});
