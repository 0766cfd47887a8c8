import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PurgeOptions } from '../../src/store/store.js';
import { PURGE_BATCH_SIZE, Retention, type RetentionOptions } from '../../src/tenancy/retention.js';

const defaults = { maxAgeSeconds: 60, maxMessagesPerRoom: null };

/**
 * A store whose purgeExpired removes rows from a pile of `rows`, records each call, and can be told
 * to fail or to wait until released.
 */
function pile(rows: number) {
  const calls: PurgeOptions[] = [];
  let left = rows;
  let inFlight = 0;
  let mostInFlight = 0;
  let failWith: Error | undefined;
  let gate: Promise<void> | undefined;
  const store = {
    async purgeExpired(options: PurgeOptions): Promise<number> {
      calls.push(options);
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      try {
        await gate;
        if (failWith !== undefined) throw failWith;
        const removed = Math.min(left, options.limit);
        left -= removed;
        return removed;
      } finally {
        inFlight--;
      }
    },
  };
  return {
    store,
    calls,
    left: () => left,
    mostInFlight: () => mostInFlight,
    fail: (error: Error | undefined) => {
      failWith = error;
    },
    hold: () => {
      let release = (): void => undefined;
      gate = new Promise((resolve) => {
        release = resolve;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

/** A Retention over the pile, with these tests' settings unless told otherwise. */
function retentionOver(
  rows: ReturnType<typeof pile>,
  options: Partial<RetentionOptions> = {},
): Retention {
  return new Retention(rows.store, {
    intervalMs: 60_000,
    defaults,
    idempotencyWindowMs: 1000,
    batchSize: 100,
    onFailed: (error) => assert.fail(String(error)),
    ...options,
  });
}

describe('Retention: the background purge', () => {
  it('calls the store again and again, one batch each, until a call removes fewer than the batch', async () => {
    const rows = pile(1234);
    const purged: number[] = [];
    const retention = retentionOver(rows, {
      idempotencyWindowMs: 86_400_000,
      onPurged: (removed) => purged.push(removed),
    });
    await retention.run();
    assert.equal(rows.left(), 0);
    assert.equal(rows.calls.length, 13, '12 full batches, then one of 34');
    assert.deepEqual(purged, [1234]);
    for (const call of rows.calls) {
      assert.equal(call.limit, 100);
      assert.deepEqual(call.defaults, defaults);
      assert.equal(call.idempotencyWindowMs, 86_400_000);
      assert.ok(Math.abs(call.now - Date.now()) < 5000);
    }
    await retention.close();
  });

  it('batches of PURGE_BATCH_SIZE (500) by default, with a turn of the event loop between two', async () => {
    const rows = pile(PURGE_BATCH_SIZE * 3);
    const retention = retentionOver(rows, { batchSize: undefined });
    assert.equal(PURGE_BATCH_SIZE, 500);
    // An immediate queued now runs before the second batch only if the run yields between them.
    const order: string[] = [];
    const running = retention.run();
    setImmediate(() => order.push(`immediate after ${rows.calls.length} calls`));
    await running;
    assert.equal(rows.calls.length, 4);
    assert.ok(rows.calls.every((call) => call.limit === 500));
    assert.deepEqual(order, ['immediate after 1 calls']);
    await retention.close();
  });

  it('never runs twice at once: a run asked for during one joins it', async () => {
    const rows = pile(250);
    const retention = retentionOver(rows);
    const release = rows.hold();
    const first = retention.run();
    const second = retention.run();
    assert.equal(first, second);
    release();
    await Promise.all([first, second]);
    assert.equal(rows.mostInFlight(), 1);
    assert.equal(rows.calls.length, 3);
    await retention.close();
  });

  it('the interval never starts a run while one is going', async () => {
    const rows = pile(1000);
    const retention = retentionOver(rows, {
      intervalMs: 10,
    });
    const release = rows.hold();
    retention.start();
    // Many intervals pass while the first call is held.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(rows.calls.length, 1);
    release();
    await retention.close();
    assert.equal(rows.mostInFlight(), 1);
  });

  it('a failing call is reported once per run and the next run tries again', async () => {
    const rows = pile(300);
    const failures: unknown[] = [];
    const retention = retentionOver(rows, {
      onFailed: (error) => failures.push(error),
    });
    const fault = new Error('database is away');
    rows.fail(fault);
    await retention.run();
    assert.deepEqual(failures, [fault]);
    assert.equal(rows.calls.length, 1, 'a run stops at its first failure');
    rows.fail(undefined);
    await retention.run();
    assert.equal(failures.length, 1);
    assert.equal(rows.left(), 0);
    await retention.close();
  });

  it('close stops the timer and waits for the batch in progress; nothing runs after it, and closing twice is safe', async () => {
    const rows = pile(10_000);
    const retention = retentionOver(rows, {
      intervalMs: 10,
    });
    const release = rows.hold();
    retention.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    let closed = false;
    const closing = retention.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, false, 'close waits for the call in progress');
    release();
    await closing;
    const calls = rows.calls.length;
    assert.equal(calls, 1, 'the run ends after its current batch');
    await retention.run();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(rows.calls.length, calls);
    await retention.close();
  });
});
