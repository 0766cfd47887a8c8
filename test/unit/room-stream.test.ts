import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoomMessage } from '../../src/domain.js';
import { RoomStream, type RoomStreamOptions } from '../../src/realtime/room-stream.js';

const OPTIONS: RoomStreamOptions = { gapWaitMs: 10, pageSize: 500, retryMs: 5, maxRetryMs: 20 };

function message(seq: number): RoomMessage {
  return { id: String(seq), seq, room: 'r', payload: `p${seq}`, from: 'u', ts: seq };
}

interface HarnessOptions {
  /** Seqs the fake store holds: 1..stored, minus `removed`. */
  stored: number;
  removed?: number[];
  /** What `lastSeq` answers; each Error in the list fails one call, in turn, before it. */
  baseline?: number;
  baselineFailures?: number;
  /** `range` calls that fail before the store answers. */
  rangeFailures?: number;
  /** Holds every `range` call until the returned `release` is called. */
  gatedRanges?: boolean;
}

/** A stream over a fake store, recording what it delivers and what it reads. */
function harness(options: HarnessOptions) {
  const delivered: number[] = [];
  const ranges: [number, number][] = [];
  let filled = 0;
  let baselineFailures = options.baselineFailures ?? 0;
  let rangeFailures = options.rangeFailures ?? 0;
  let lastSeqCalls = 0;
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => undefined;
  if (options.gatedRanges) {
    gate = new Promise((resolve) => {
      open = resolve;
    });
  }
  let waiters: (() => void)[] = [];
  const removed = new Set(options.removed ?? []);
  const stream = new RoomStream(
    {
      async lastSeq() {
        lastSeqCalls++;
        if (baselineFailures > 0) {
          baselineFailures--;
          throw new Error('store away');
        }
        return options.baseline ?? 0;
      },
      async range(from, to) {
        ranges.push([from, to]);
        await gate;
        if (rangeFailures > 0) {
          rangeFailures--;
          throw new Error('store away');
        }
        const out: RoomMessage[] = [];
        for (let seq = from; seq <= Math.min(to, options.stored); seq++) {
          if (!removed.has(seq)) out.push(message(seq));
        }
        return out;
      },
    },
    {
      deliver: (m) => {
        delivered.push(m.seq);
        const woken = waiters;
        waiters = [];
        for (const wake of woken) wake();
      },
      onGapFilled: (count) => {
        filled += count;
      },
    },
    OPTIONS,
  );
  const until = (count: number, withinMs = 2000): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`got ${delivered.length}: ${delivered.slice(-10)}`)),
        withinMs,
      );
      const check = (): void => {
        if (delivered.length >= count) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return {
    stream,
    delivered,
    ranges,
    until,
    filled: () => filled,
    lastSeqCalls: () => lastSeqCalls,
    release: () => open(),
  };
}

function sequence(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('RoomStream: one room, in seq order, each message once', () => {
  it('delivers messages that arrive in order at once', async () => {
    const { stream, delivered } = harness({ stored: 3 });
    await stream.start();
    for (const seq of [1, 2, 3]) stream.accept(message(seq));
    assert.deepEqual(delivered, [1, 2, 3]);
  });

  it('holds a message that arrives early until the missing one comes', async () => {
    const { stream, delivered } = harness({ stored: 3 });
    await stream.start();
    stream.accept(message(2));
    stream.accept(message(3));
    assert.deepEqual(delivered, []);
    stream.accept(message(1));
    assert.deepEqual(delivered, [1, 2, 3]);
    stream.close();
  });

  it('drops duplicates and messages from before the baseline', async () => {
    const { stream, delivered } = harness({ stored: 7, baseline: 5 });
    await stream.start();
    stream.accept(message(4));
    stream.accept(message(6));
    stream.accept(message(6));
    stream.accept(message(7));
    stream.accept(message(5));
    assert.deepEqual(delivered, [6, 7]);
  });

  it('fills a gap that does not fill by itself from the store', async () => {
    const { stream, delivered, until, filled } = harness({ stored: 5 });
    await stream.start();
    stream.accept(message(1));
    stream.accept(message(4));
    stream.accept(message(5));
    await until(5);
    assert.deepEqual(delivered, [1, 2, 3, 4, 5]);
    assert.equal(filled(), 2);
    stream.close();
  });

  it('holds what arrives before its baseline is known, then starts from it', async () => {
    const { stream, delivered } = harness({ stored: 4, baseline: 2 });
    stream.accept(message(4));
    stream.accept(message(3));
    await stream.start();
    assert.deepEqual(delivered, [3, 4]);
  });

  it('catches up from the store after a bus outage', async () => {
    const { stream, delivered, until } = harness({ stored: 4 });
    await stream.start();
    stream.accept(message(1));
    stream.catchUp();
    await until(4);
    assert.deepEqual(delivered, [1, 2, 3, 4]);
    stream.accept(message(3));
    assert.deepEqual(delivered, [1, 2, 3, 4]);
  });

  it('delivers nothing after close', async () => {
    const { stream, delivered } = harness({ stored: 2 });
    await stream.start();
    stream.close();
    stream.accept(message(1));
    assert.deepEqual(delivered, []);
  });
});

describe('RoomStream: nothing it is asked to do is dropped (issue 8)', () => {
  it('reads a baseline that failed again until it is known, then delivers what was held, in order', async () => {
    const h = harness({ stored: 3, baseline: 0, baselineFailures: 3 });
    await h.stream.start();
    assert.equal(h.stream.started, false, 'the first read failed');
    h.stream.accept(message(2));
    h.stream.accept(message(1));
    h.stream.accept(message(3));
    await h.until(3);
    assert.deepEqual(h.delivered, [1, 2, 3]);
    assert.equal(h.lastSeqCalls(), 4);
    h.stream.accept(message(4));
    assert.deepEqual(h.delivered, [1, 2, 3, 4], 'the stream flows once started');
    h.stream.close();
  });

  it('a baseline read back after messages were held starts at the oldest held message', async () => {
    // The read came back late, after 5 and 6 were stored and published: they are still delivered.
    const h = harness({ stored: 6, baseline: 6, baselineFailures: 1 });
    await h.stream.start();
    h.stream.accept(message(5));
    h.stream.accept(message(6));
    await h.until(2);
    assert.deepEqual(h.delivered, [5, 6]);
    h.stream.close();
  });

  it('holds and then delivers 200,000 messages without throwing (no spread of the held keys)', async () => {
    const count = 200_000;
    const h = harness({ stored: count, baseline: 0, baselineFailures: 1 });
    await h.stream.start();
    for (let seq = count; seq >= 2; seq--) h.stream.accept(message(seq));
    await h.until(count, 10_000);
    assert.equal(h.delivered.length, count);
    assert.equal(h.delivered[0], 1);
    assert.equal(h.delivered[count - 1], count);
    h.stream.close();
  });

  it('fills a gap below 200,000 held messages from the store', async () => {
    const count = 200_000;
    const h = harness({ stored: count });
    await h.stream.start();
    for (let seq = 2; seq <= count; seq++) h.stream.accept(message(seq));
    await h.until(count, 10_000);
    assert.deepEqual(h.delivered.slice(0, 3), [1, 2, 3]);
    assert.equal(h.filled(), 1);
    h.stream.close();
  });

  it('catches up in pages, never the whole room in one read', async () => {
    const h = harness({ stored: 1250 });
    await h.stream.start();
    h.stream.catchUp();
    await h.until(1250);
    assert.deepEqual(h.delivered, sequence(1, 1250));
    assert.deepEqual(
      h.ranges.map(([from, to]) => [from, to - from + 1]),
      [
        [1, 500],
        [501, 500],
        [1001, 500],
      ],
    );
    h.stream.close();
  });

  it('a catch-up asked for while a gap fill runs is carried out after it', async () => {
    const h = harness({ stored: 10, gatedRanges: true });
    await h.stream.start();
    h.stream.accept(message(3));
    // The gap fill for 1..2 starts and waits on the store; then the bus comes back.
    await new Promise((resolve) => setTimeout(resolve, 3 * OPTIONS.gapWaitMs));
    assert.equal(h.ranges.length, 1);
    h.stream.catchUp();
    h.release();
    await h.until(10);
    assert.deepEqual(h.delivered, sequence(1, 10));
    h.stream.close();
  });

  it('a store read that fails is tried again, also in a quiet room', async () => {
    const h = harness({ stored: 3, rangeFailures: 2 });
    await h.stream.start();
    h.stream.accept(message(3));
    await h.until(3);
    assert.deepEqual(h.delivered, [1, 2, 3]);
    assert.ok(h.ranges.length >= 3);
    h.stream.close();
  });

  it('settle(seq) resolves once seq is delivered, reading the store for what the bus did not bring', async () => {
    const h = harness({ stored: 4 });
    await h.stream.start();
    h.stream.accept(message(1));
    await h.stream.settle(4);
    assert.deepEqual(h.delivered, [1, 2, 3, 4]);
    h.stream.close();
  });

  it('skips a seq the store no longer has when a later one is held', async () => {
    const h = harness({ stored: 5, removed: [2, 3] });
    await h.stream.start();
    h.stream.accept(message(1));
    h.stream.accept(message(5));
    await h.until(3);
    assert.deepEqual(h.delivered, [1, 4, 5]);
    h.stream.close();
  });
});
