import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { ExpiryWheel } from '../../src/realtime/expiry-wheel.js';

/** A member that records when it expired (by the mocked clock). */
class Member {
  expiredAt: number | undefined;
  expirations = 0;
  constructor(readonly name: string) {}
  expire(): void {
    this.expirations++;
    this.expiredAt = Date.now();
  }
}

/** Not on a second boundary, so that buckets and the clock's phase differ. */
const START = 1_700_000_000_337;

describe('ExpiryWheel: one timer for every connection whose token expires', () => {
  let armed: number;
  let realSetTimeout: typeof setTimeout;

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
    // Counts the timers the wheel arms, through the mocked setTimeout.
    armed = 0;
    realSetTimeout = globalThis.setTimeout;
    const counting = ((...args: Parameters<typeof setTimeout>) => {
      armed++;
      return realSetTimeout(...args);
    }) as typeof setTimeout;
    globalThis.setTimeout = counting;
  });
  afterEach(() => {
    globalThis.setTimeout = realSetTimeout;
    mock.timers.reset();
  });

  /** Moves the clock 1 ms at a time, firing the timers due on the way. */
  function advance(ms: number): void {
    for (let i = 0; i < ms; i++) mock.timers.tick(1);
  }

  it('expires each member after exp + tolerance has passed and within 1 s of it, never before', () => {
    const wheel = new ExpiryWheel<Member>({ toleranceMs: 2000, now: () => Date.now() });
    const offsets = [0, 1, 250, 663, 999, 1000, 1001, 1663, 2500, 4000, 4999.5];
    const members = offsets.map((offset) => {
      const member = new Member(String(offset));
      wheel.schedule(member, START + offset);
      return { member, deadline: START + offset + 2000 };
    });
    advance(8000);
    for (const { member, deadline } of members) {
      assert.equal(member.expirations, 1, member.name);
      const at = member.expiredAt ?? 0;
      assert.ok(at > deadline, `${member.name} expired at ${at}, deadline ${deadline}`);
      assert.ok(at <= deadline + 1000, `${member.name} expired at ${at}, deadline ${deadline}`);
    }
    assert.equal(wheel.size, 0);
  });

  it('a deadline on a whole second expires within a few milliseconds after it', () => {
    const wheel = new ExpiryWheel<Member>({ toleranceMs: 0, now: () => Date.now() });
    const member = new Member('whole');
    const exp = Math.ceil(START / 1000) * 1000 + 2000;
    wheel.schedule(member, exp);
    advance(exp - START);
    assert.equal(member.expirations, 0, 'not at exp itself');
    advance(20);
    assert.ok(member.expiredAt !== undefined && member.expiredAt - exp <= 20);
  });

  it('arms one timer for many members, none while it holds none, and stops when the last is cancelled', () => {
    const wheel = new ExpiryWheel<Member>({ toleranceMs: 0, now: () => Date.now() });
    const members = Array.from({ length: 10_000 }, (_, i) => new Member(String(i)));
    const tickets = members.map((member, i) => wheel.schedule(member, START + 3600_000 + i * 360));
    assert.equal(armed, 1, 'one timer for 10,000 members');
    assert.equal(wheel.size, 10_000);
    advance(3000);
    // At most one timer at a time, fired about once a second (and once at the start).
    assert.ok(armed <= 5, `one timer a second while members wait, got ${armed}`);
    members.forEach((member, i) => {
      wheel.cancel(member, tickets[i] ?? 0);
    });
    assert.equal(wheel.size, 0);
    const before = armed;
    advance(3000);
    assert.equal(armed, before, 'no timer once empty');
    assert.ok(members.every((member) => member.expirations === 0));
  });

  it('cancel takes a member out; cancelling twice, or after it expired, is harmless', () => {
    const wheel = new ExpiryWheel<Member>({ toleranceMs: 0, now: () => Date.now() });
    const kept = new Member('kept');
    const gone = new Member('gone');
    const keptTicket = wheel.schedule(kept, START + 500);
    const goneTicket = wheel.schedule(gone, START + 500);
    wheel.cancel(gone, goneTicket);
    wheel.cancel(gone, goneTicket);
    advance(2000);
    assert.equal(kept.expirations, 1);
    assert.equal(gone.expirations, 0);
    wheel.cancel(kept, keptTicket);
    assert.equal(wheel.size, 0);
  });

  it('moving a member (cancel, then schedule again) keeps only the new deadline', () => {
    const wheel = new ExpiryWheel<Member>({ toleranceMs: 0, now: () => Date.now() });
    const member = new Member('moved');
    const ticket = wheel.schedule(member, START + 1000);
    wheel.cancel(member, ticket);
    wheel.schedule(member, START + 5000);
    advance(4000);
    assert.equal(member.expirations, 0);
    advance(2000);
    assert.equal(member.expirations, 1);
  });

  it('a deadline already past expires at the next tick, not inside schedule', () => {
    const wheel = new ExpiryWheel<Member>({ toleranceMs: 0, now: () => Date.now() });
    const member = new Member('late');
    wheel.schedule(member, START - 10_000);
    assert.equal(member.expirations, 0);
    advance(1000);
    assert.equal(member.expirations, 1);
  });

  it('a member scheduled after a long idle spell is not held back by the seconds that went by', () => {
    const wheel = new ExpiryWheel<Member>({ toleranceMs: 0, now: () => Date.now() });
    const first = new Member('first');
    wheel.schedule(first, START + 100);
    advance(1000);
    assert.equal(first.expirations, 1);
    mock.timers.tick(3600_000);
    const second = new Member('second');
    const at = Date.now();
    wheel.schedule(second, at + 1500);
    advance(2600);
    assert.ok(second.expiredAt !== undefined && second.expiredAt > at + 1500);
    assert.ok(second.expiredAt <= at + 2500);
  });

  it('close drops every member and the timer; calling it twice is safe', () => {
    const wheel = new ExpiryWheel<Member>({ toleranceMs: 0, now: () => Date.now() });
    const member = new Member('closed');
    wheel.schedule(member, START + 500);
    wheel.close();
    wheel.close();
    advance(2000);
    assert.equal(member.expirations, 0);
    assert.equal(wheel.size, 0);
  });
});
