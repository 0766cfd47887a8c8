import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { STORED_WINDOW_S, StoredRates } from '../../src/cluster/local-counters.js';

describe('StoredRates: messages stored per second over the last window', () => {
  it('averages a project and all projects over the window, and forgets what is older', () => {
    const rates = new StoredRates();
    rates.record('a', 30, 1000);
    rates.record('b', 10, 1005);
    assert.equal(rates.perSecond('a', 1005), 30 / STORED_WINDOW_S);
    assert.equal(rates.perSecond(undefined, 1005), 40 / STORED_WINDOW_S);
    assert.equal(rates.perSecond('a', 1000 + STORED_WINDOW_S), 0);
    assert.equal(rates.perSecond(undefined, 1000 + STORED_WINDOW_S), 10 / STORED_WINDOW_S);
  });

  it('drops the ring of a project quiet for a whole window, so projects that come and go leave nothing behind', () => {
    const rates = new StoredRates();
    for (let i = 0; i < 100; i++) rates.record(`gone-${i}`, 1, 2000);
    assert.equal(rates.tracked, 100);
    rates.record('busy', 1, 2000 + STORED_WINDOW_S - 1);
    assert.equal(rates.tracked, 101, 'within the window they are still counted');
    rates.record('busy', 1, 2000 + STORED_WINDOW_S + 1);
    assert.equal(rates.tracked, 1);
    assert.equal(rates.perSecond('gone-3', 2000 + STORED_WINDOW_S + 1), 0);
    assert.equal(rates.perSecond('busy', 2000 + STORED_WINDOW_S + 1), 2 / STORED_WINDOW_S);
  });
});
