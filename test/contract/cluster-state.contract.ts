import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, it } from 'node:test';
import type { ClusterState, Transition } from '../../src/cluster/cluster-state.js';
import { eventually } from '../helpers/eventually.js';

export interface ClusterFixture {
  /** Started instances on one shared backing. */
  instances: ClusterState[];
  /** The lease time the instances were given. */
  ttlMs: number;
  /** Stops an instance as a killed process would: it neither refreshes nor gives up its lease. */
  kill(instance: ClusterState): Promise<void>;
  cleanup(): Promise<void>;
}

export type ClusterFactory = (instances: number) => Promise<ClusterFixture>;

const WAIT_MS = 5000;
/** Transitions of this room are the suite's own barriers, never asserted on. */
const MARKER_ROOM = '__marker__';

interface Seen {
  instance: number;
  transition: Transition;
}

/** Records every instance's transitions (which instance reported each) and lets a test wait. */
export class Transitions {
  readonly seen: Seen[] = [];
  #waiters: Array<() => void> = [];
  #markers = 0;

  constructor(readonly states: readonly ClusterState[]) {
    for (const [instance, state] of states.entries()) {
      state.onTransition((transition) => {
        this.seen.push({ instance, transition });
        for (const waiter of [...this.#waiters]) waiter();
      });
    }
  }

  /** What was reported, the suite's barriers left out. */
  reported(): Seen[] {
    return this.seen.filter((s) => s.transition.room !== MARKER_ROOM);
  }

  /** Resolves once `count` reported transitions match; fails after a bounded wait. */
  waitFor(match: (t: Transition) => boolean, count = 1, deadlineMs = WAIT_MS): Promise<Seen[]> {
    return new Promise((resolve, reject) => {
      const matching = () => this.seen.filter((s) => match(s.transition));
      const waiter = () => {
        const found = matching();
        if (found.length < count) return;
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(`${matching().length} of ${count} transitions: ${JSON.stringify(this.seen)}`),
        );
      }, deadlineMs);
      this.#waiters.push(waiter);
      waiter();
    });
  }

  /**
   * A barrier: a marker user enters and leaves on `state`, and both transitions are awaited. Every
   * implementation reports an instance's transitions in the order of its calls, so whatever an
   * earlier call of `state` was to report has arrived by then.
   */
  async settle(state: ClusterState, project = 'p1'): Promise<void> {
    const user = `marker-${++this.#markers}`;
    const of = (present: boolean) => (t: Transition) =>
      t.room === MARKER_ROOM && t.user === user && t.present === present && t.project === project;
    state.enter(project, MARKER_ROOM, user);
    await this.waitFor(of(true));
    state.exit(project, MARKER_ROOM, user);
    await this.waitFor(of(false));
  }
}

export function transition(user: string, present: boolean, room = 'lobby', project = 'p1') {
  return { project, room, user, present };
}

export function is(expected: Transition) {
  return (t: Transition) =>
    t.project === expected.project &&
    t.room === expected.room &&
    t.user === expected.user &&
    t.present === expected.present;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function shuffled<T>(values: readonly T[]): T[] {
  const out = [...values];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Code unit order, as the interface sorts. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function walkPresence(state: ClusterState, room: string, limit: number) {
  const users: string[] = [];
  const counts = new Set<number>();
  let after: string | undefined;
  for (;;) {
    const page = await state.presence('p1', room, after, limit);
    assert.equal(page.partial, false);
    assert.ok(page.users.length <= limit);
    counts.add(page.count);
    if (page.users.length === 0) break;
    users.push(...page.users.map((u) => u.user));
    after = page.users.at(-1)?.user;
  }
  return { users, counts: [...counts] };
}

/** Mean time of `call` over `times` runs, in ms. */
async function meanMs(times: number, call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < times; i++) await call();
  return (performance.now() - started) / times;
}

/**
 * The ClusterState contract of src/cluster/cluster-state.ts, run on every implementation.
 * `factory(n)` gives n started instances on one shared backing.
 */
export function clusterStateContract(name: string, factory: ClusterFactory): void {
  describe(`ClusterState contract: ${name}`, () => {
    let fixture: ClusterFixture | undefined;
    const open = async (instances = 2) => {
      fixture = await factory(instances);
      return { ...fixture, transitions: new Transitions(fixture.instances) };
    };
    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    describe('entries are counted per connection', () => {
      it('two connections of one user in a room are one user with connections 2', async () => {
        const { instances } = await open(1);
        const [a] = instances as [ClusterState];
        a.enter('p1', 'lobby', 'alice');
        a.enter('p1', 'lobby', 'alice');
        a.enter('p1', 'lobby', 'bob');
        assert.deepEqual(await a.presence('p1', 'lobby', undefined, 100), {
          users: [
            { user: 'alice', connections: 2 },
            { user: 'bob', connections: 1 },
          ],
          count: 2,
          partial: false,
        });
        a.exit('p1', 'lobby', 'alice');
        const page = await a.presence('p1', 'lobby', undefined, 100);
        assert.deepEqual(page.users, [
          { user: 'alice', connections: 1 },
          { user: 'bob', connections: 1 },
        ]);
      });

      it('sums the connections of a user on every instance, seen from each', async () => {
        const { instances } = await open(3);
        const [a, b, c] = instances as [ClusterState, ClusterState, ClusterState];
        a.enter('p1', 'lobby', 'alice');
        b.enter('p1', 'lobby', 'alice');
        b.enter('p1', 'lobby', 'alice');
        c.enter('p1', 'lobby', 'bob');
        await Promise.all([a, b, c].map((s) => s.presence('p1', 'lobby', undefined, 1)));
        for (const state of [a, b, c]) {
          assert.deepEqual(await state.presence('p1', 'lobby', undefined, 100), {
            users: [
              { user: 'alice', connections: 3 },
              { user: 'bob', connections: 1 },
            ],
            count: 2,
            partial: false,
          });
        }
      });

      it('counts a project scope (room null) in connections and users, not in rooms', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        a.enter('p1', null, 'alice');
        b.enter('p1', null, 'alice');
        a.enter('p1', null, 'bob');
        a.enter('p1', 'lobby', 'alice');
        b.enter('p1', 'kitchen', 'bob');
        a.enter('p2', null, 'alice');
        await b.counts('p1');
        assert.deepEqual(await a.counts('p1'), {
          connections: 3,
          users: 2,
          rooms: 2,
          partial: false,
        });
        assert.deepEqual(await b.counts('p2'), {
          connections: 1,
          users: 1,
          rooms: 0,
          partial: false,
        });
        assert.deepEqual(await a.counts('nobody'), {
          connections: 0,
          users: 0,
          rooms: 0,
          partial: false,
        });
      });

      it('sums totals over projects (a user of two projects counts twice) and counts instances', async () => {
        const { instances } = await open(3);
        const [a, b, c] = instances as [ClusterState, ClusterState, ClusterState];
        a.enter('p1', null, 'alice');
        b.enter('p1', null, 'alice');
        b.enter('p2', null, 'alice');
        c.enter('p2', null, 'bob');
        a.enter('p1', 'lobby', 'alice');
        b.enter('p2', 'lobby', 'bob');
        c.enter('p2', 'kitchen', 'bob');
        await Promise.all([b, c].map((s) => s.counts('p1')));
        assert.deepEqual(await a.totals(), {
          connections: 4,
          users: 3,
          rooms: 3,
          instances: 3,
          partial: false,
        });
      });

      it('ignores an exit with no matching enter: nothing goes below zero', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        b.enter('p1', 'lobby', 'alice');
        b.enter('p1', null, 'alice');
        a.exit('p1', 'lobby', 'alice');
        a.exit('p1', null, 'alice');
        a.exit('p1', 'lobby', 'nobody');
        await a.counts('p1');
        assert.deepEqual((await b.presence('p1', 'lobby', undefined, 10)).users, [
          { user: 'alice', connections: 1 },
        ]);
        assert.equal((await b.counts('p1')).connections, 1);
      });
    });

    describe('order and reads', () => {
      it('a read issued right after an enter or an exit of this instance sees it', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        for (let i = 0; i < 20; i++) {
          a.enter('p1', 'lobby', `user-${i}`);
          a.enter('p1', null, `user-${i}`);
          const [page, counts] = await Promise.all([
            a.presence('p1', 'lobby', undefined, 1000),
            a.counts('p1'),
          ]);
          assert.equal(page.count, i + 1);
          assert.equal(counts.connections, i + 1);
          b.enter('p1', 'lobby', `user-${i}`);
          b.exit('p1', 'lobby', `user-${i}`);
          a.exit('p1', 'lobby', `user-${i}`);
          assert.equal((await a.presence('p1', 'lobby', undefined, 1000)).count, i);
          a.enter('p1', 'lobby', `user-${i}`);
        }
      });

      it('keeps names with any character apart and exact', async () => {
        const { instances, transitions } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        const odd = ['a:b', 'a', 'b', 'a\u0000b', '😀', '\ud800', 'é', '"\\', ' ', 'null'];
        for (const name of odd) a.enter(name, name, name);
        a.enter('a', 'a:b', 'x');
        a.enter('a:b', 'a', 'y');
        // Another instance sees them once this one has (a read here is that barrier).
        await a.counts('a');
        for (const name of odd) {
          assert.deepEqual(await b.presence(name, name, undefined, 10), {
            users: [{ user: name, connections: 1 }],
            count: 1,
            partial: false,
          });
        }
        assert.deepEqual((await b.presence('a', 'a:b', undefined, 10)).users, [
          { user: 'x', connections: 1 },
        ]);
        await transitions.waitFor(() => true, odd.length + 2);
        for (const name of odd) {
          const of = transitions.reported().filter((s) => s.transition.project === name);
          assert.ok(
            of.some((s) => is(transition(name, true, name, name))(s.transition)),
            name,
          );
        }
      });
    });

    describe('transitions', () => {
      it('first in and last out are reported once, on exactly one instance', async () => {
        const { instances, transitions } = await open(3);
        const [a, b, c] = instances as [ClusterState, ClusterState, ClusterState];
        a.enter('p1', 'lobby', 'alice');
        await transitions.waitFor(is(transition('alice', true)));
        b.enter('p1', 'lobby', 'alice');
        c.enter('p1', 'lobby', 'alice');
        // Calls of different instances have no order: these must be in before a's exit.
        await Promise.all([b, c].map((s) => s.counts('p1')));
        a.exit('p1', 'lobby', 'alice');
        b.exit('p1', 'lobby', 'alice');
        await Promise.all([a, b, c].map((s) => transitions.settle(s)));
        assert.equal(transitions.reported().length, 1, 'only the first connection is reported');
        c.exit('p1', 'lobby', 'alice');
        await transitions.waitFor(is(transition('alice', false)));
        await Promise.all([a, b, c].map((s) => transitions.settle(s)));
        const seen = transitions.reported();
        assert.deepEqual(
          seen.map((s) => s.transition),
          [transition('alice', true), transition('alice', false)],
        );
      });

      it('reports each room and each project of a user on its own', async () => {
        const { instances, transitions } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        a.enter('p1', 'lobby', 'alice');
        b.enter('p1', 'kitchen', 'alice');
        b.enter('p2', 'lobby', 'alice');
        await transitions.waitFor(
          (t) => t.user === 'alice' && t.present && t.room !== MARKER_ROOM,
          3,
        );
        await Promise.all([a, b].map((s) => transitions.settle(s)));
        const seen = transitions.reported().map((s) => s.transition);
        assert.equal(seen.length, 3);
        for (const expected of [
          transition('alice', true),
          transition('alice', true, 'kitchen'),
          transition('alice', true, 'lobby', 'p2'),
        ]) {
          assert.equal(seen.filter(is(expected)).length, 1);
        }
      });

      it('reports nothing for project scopes', async () => {
        const { instances, transitions } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        a.enter('p1', null, 'alice');
        b.enter('p1', null, 'bob');
        a.exit('p1', null, 'alice');
        await Promise.all([a, b].map((s) => transitions.settle(s)));
        assert.deepEqual(transitions.reported(), []);
      });

      it('many users entering on many instances at once: each join reported exactly once', async () => {
        const { instances, transitions } = await open(3);
        const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
        for (const user of users) for (const state of instances) state.enter('p1', 'lobby', user);
        await transitions.waitFor((t) => t.room === 'lobby' && t.present, users.length);
        for (const user of users) for (const state of instances) state.exit('p1', 'lobby', user);
        await transitions.waitFor((t) => t.room === 'lobby' && !t.present, users.length);
        await Promise.all(instances.map((s) => transitions.settle(s)));
        const seen = transitions.reported();
        assert.equal(seen.length, 2 * users.length);
        for (const user of users) {
          assert.equal(seen.filter((s) => is(transition(user, true))(s.transition)).length, 1);
          assert.equal(seen.filter((s) => is(transition(user, false))(s.transition)).length, 1);
        }
      });
    });

    describe('paging', () => {
      it('walks 2,500 users of a room exactly once, sorted by code units, with limit and after', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        const names = Array.from({ length: 2490 }, (_, i) => `user-${i}`);
        // Code unit order differs from UTF-8 byte order between these two, and from case order.
        names.push('\ufffd', '😀', 'Z', 'a', 'é', 'user-1\u0000', '', ' ', 'ü', '中');
        for (const [i, user] of shuffled(names).entries())
          (i % 2 ? a : b).enter('p1', 'lobby', user);
        await b.presence('p1', 'lobby', undefined, 1);
        for (const limit of [100, 7, 1000]) {
          const walk = await walkPresence(a, 'lobby', limit);
          assert.deepEqual(walk.counts, [2500]);
          assert.deepEqual(walk.users, [...names].sort(byCodeUnits));
        }
        const page = await a.presence('p1', 'lobby', 'user-999', 3);
        assert.deepEqual(
          page.users.map((u) => u.user),
          [...names]
            .sort(byCodeUnits)
            .filter((n) => n > 'user-999')
            .slice(0, 3),
        );
        const beyond = await a.presence('p1', 'lobby', '\uffff', 10);
        assert.deepEqual(beyond.users, []);
        assert.equal(beyond.count, 2500);
        assert.deepEqual(await a.presence('p1', 'empty', undefined, 10), {
          users: [],
          count: 0,
          partial: false,
        });
      });

      it('pages the rooms with a user present, sorted by name, with their present counts', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        const rooms = Array.from({ length: 250 }, (_, i) => `room-${i}`);
        const present = new Map<string, number>();
        shuffled(rooms).forEach((room, i) => {
          (i % 2 ? a : b).enter('p1', room, 'alice');
          if (i % 3 === 0) a.enter('p1', room, 'bob');
          present.set(room, i % 3 === 0 ? 2 : 1);
        });
        a.enter('p1', 'gone', 'carol');
        a.exit('p1', 'gone', 'carol');
        b.enter('p2', 'other-project', 'alice');
        await b.rooms('p1', undefined, 1);
        const listed: Array<{ room: string; present: number }> = [];
        let after: string | undefined;
        for (;;) {
          const page = await a.rooms('p1', after, 40);
          assert.equal(page.partial, false);
          assert.ok(page.rooms.length <= 40);
          if (page.rooms.length === 0) break;
          listed.push(...page.rooms);
          after = page.rooms.at(-1)?.room;
        }
        assert.deepEqual(
          listed,
          [...rooms].sort(byCodeUnits).map((room) => ({ room, present: present.get(room) })),
        );
        assert.equal((await a.counts('p1')).rooms, 250);
        for (const room of rooms) {
          a.exit('p1', room, 'alice');
          b.exit('p1', room, 'alice');
          a.exit('p1', room, 'bob');
        }
        await b.rooms('p1', undefined, 1);
        assert.deepEqual(await a.rooms('p1', undefined, 100), { rooms: [], partial: false });
        assert.equal((await a.counts('p1')).rooms, 0);
      });

      it('a count and a page cost no scan: 100,000 users in a room answer as fast as 100', async () => {
        const { instances } = await open(1);
        const [a] = instances as [ClusterState];
        const big = Array.from({ length: 100_000 }, (_, i) => `user-${String(i).padStart(6, '0')}`);
        for (const user of shuffled(big)) {
          a.enter('p1', 'big', user);
          a.enter('p1', null, user);
        }
        for (const user of big.slice(0, 100)) a.enter('p1', 'small', user);
        assert.equal((await a.presence('p1', 'big', undefined, 1)).count, 100_000);
        const times = 20;
        const measure = async (room: string) => ({
          first: await meanMs(times, () => a.presence('p1', room, undefined, 100)),
          middle: await meanMs(times, () => a.presence('p1', room, 'user-000050', 100)),
          counts: await meanMs(times, () => a.counts('p1')),
        });
        const small = await measure('small');
        const large = await measure('big');
        for (const key of ['first', 'middle', 'counts'] as const) {
          assert.ok(large[key] < 50, `${key}: ${large[key]} ms with 100,000 users`);
          assert.ok(
            large[key] < small[key] * 10 + 2,
            `${key}: ${large[key]} ms with 100,000 users, ${small[key]} ms with 100`,
          );
        }
        const page = await a.presence('p1', 'big', 'user-049999', 100);
        assert.equal(page.users[0]?.user, 'user-050000');
        assert.equal(page.users.length, 100);
        assert.equal((await a.totals()).connections, 100_000);
      });
    });

    describe('admission', () => {
      it('admits up to maxConnections over every instance, then answers projectFull', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        const limits = { maxConnections: 3, maxConnectionsPerUser: null };
        assert.equal(await a.admit('p1', 'alice', limits), 'admitted');
        assert.equal(await b.admit('p1', 'bob', limits), 'admitted');
        assert.equal(await a.admit('p1', 'carol', limits), 'admitted');
        assert.equal(await b.admit('p1', 'dave', limits), 'projectFull');
        assert.equal(await a.admit('p1', 'dave', limits), 'projectFull');
        assert.equal(await a.admit('p2', 'dave', limits), 'admitted', 'another project is apart');
        assert.deepEqual(await b.counts('p1'), {
          connections: 3,
          users: 3,
          rooms: 0,
          partial: false,
        });
        a.exit('p1', null, 'alice');
        await a.counts('p1');
        assert.equal(await b.admit('p1', 'dave', limits), 'admitted', 'an exit frees a slot');
      });

      it('admits up to maxConnectionsPerUser of one user over every instance', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        const limits = { maxConnections: null, maxConnectionsPerUser: 2 };
        assert.equal(await a.admit('p1', 'alice', limits), 'admitted');
        assert.equal(await b.admit('p1', 'alice', limits), 'admitted');
        assert.equal(await a.admit('p1', 'alice', limits), 'userFull');
        assert.equal(await b.admit('p1', 'alice', limits), 'userFull');
        assert.equal(await b.admit('p1', 'bob', limits), 'admitted');
        b.enter('p1', null, 'carol');
        b.enter('p1', null, 'carol');
        await b.counts('p1');
        assert.equal(await a.admit('p1', 'carol', limits), 'userFull', 'enter counts as admit');
        b.exit('p1', null, 'alice');
        await b.counts('p1');
        assert.equal(await a.admit('p1', 'alice', limits), 'admitted');
      });

      it('with no limits admits everything and counts it', async () => {
        const { instances } = await open(1);
        const [a] = instances as [ClusterState];
        const none = { maxConnections: null, maxConnectionsPerUser: null };
        const verdicts = await Promise.all(
          Array.from({ length: 50 }, () => a.admit('p1', 'alice', none)),
        );
        assert.ok(verdicts.every((v) => v === 'admitted'));
        assert.equal((await a.counts('p1')).connections, 50);
      });

      it('concurrent admissions never overshoot the limits', async () => {
        const { instances } = await open(3);
        const limits = { maxConnections: 10, maxConnectionsPerUser: 4 };
        const verdicts = await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            (instances[i % 3] as ClusterState).admit('p1', `user-${i % 5}`, limits),
          ),
        );
        assert.equal(verdicts.filter((v) => v === 'admitted').length, 10);
        assert.equal((await (instances[0] as ClusterState).counts('p1')).connections, 10);
      });

      it("closing an instance frees its connections' slots at once", async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        const limits = { maxConnections: 2, maxConnectionsPerUser: null };
        assert.equal(await a.admit('p1', 'alice', limits), 'admitted');
        assert.equal(await a.admit('p1', 'bob', limits), 'admitted');
        assert.equal(await b.admit('p1', 'carol', limits), 'projectFull');
        await a.close();
        assert.equal(await b.admit('p1', 'carol', limits), 'admitted');
      });
    });

    describe('budgets and rates', () => {
      it('grants at most want, from one bucket of burst shared by every instance', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        assert.equal(await a.takeBudget('p1', 1, 10, 4), 4);
        assert.equal(await b.takeBudget('p1', 1, 10, 100), 6);
        assert.equal(await a.takeBudget('p1', 1, 10, 5), 0, 'spent');
        assert.equal(await b.takeBudget('p2', 1, 10, 3), 3, 'another project has its own');
      });

      it('never grants more than burst + perSecond × t over a window, and does refill', async () => {
        const { instances } = await open(2);
        const perSecond = 50;
        const burst = 20;
        let granted = 0;
        const started = performance.now();
        while (performance.now() - started < 2000) {
          const grants = await Promise.all(
            instances.map((s) => s.takeBudget('p1', perSecond, burst, 3)),
          );
          for (const g of grants) {
            assert.ok(g >= 0 && g <= 3);
            granted += g;
          }
          await sleep(10);
        }
        const seconds = (performance.now() - started) / 1000;
        assert.ok(granted <= burst + perSecond * seconds, `${granted} in ${seconds} s`);
        assert.ok(granted >= burst + perSecond * seconds * 0.5, `only ${granted} in ${seconds} s`);
      });

      it('storedPerSecond is what every instance recorded over the last 10 seconds, a second', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        a.recordStored('p1', 50);
        b.recordStored('p1', 30);
        a.recordStored('p2', 20);
        await eventually(
          'the rates to be seen everywhere',
          async () => {
            const rates = await Promise.all(
              [a, b].flatMap((s) => [s.storedPerSecond('p1'), s.storedPerSecond(undefined)]),
            );
            return rates.join() === '8,10,8,10';
          },
          WAIT_MS,
        );
        assert.equal(await a.storedPerSecond('p3'), 0);
      });
    });

    describe('leases', () => {
      it('an instance that dies: its users leave within ttlMs, reported once by a survivor', async () => {
        const { instances, transitions, kill, ttlMs } = await open(3);
        const [a, b, c] = instances as [ClusterState, ClusterState, ClusterState];
        a.enter('p1', 'lobby', 'alice');
        a.enter('p1', 'lobby', 'bob');
        b.enter('p1', 'lobby', 'bob');
        a.enter('p1', null, 'alice');
        await transitions.waitFor((t) => t.present && t.room === 'lobby', 2);
        await Promise.all([a, b, c].map((s) => s.counts('p1')));
        const killed = performance.now();
        await kill(a);
        const [left] = await transitions.waitFor(is(transition('alice', false)), 1, ttlMs * 3);
        const after = performance.now() - killed;
        // Within ttlMs of its death, plus time for a call or two on a busy machine.
        assert.ok(after < ttlMs + 400, `left after ${after} ms`);
        assert.notEqual(left?.instance, 0, 'a survivor reports it');
        await Promise.all([b, c].map((s) => transitions.settle(s)));
        const seen = transitions.reported().map((s) => s.transition);
        assert.deepEqual(
          seen.filter((t) => !t.present),
          [transition('alice', false)],
        );
        assert.deepEqual((await c.presence('p1', 'lobby', undefined, 10)).users, [
          { user: 'bob', connections: 1 },
        ]);
        assert.equal((await c.counts('p1')).connections, 0);
        assert.equal((await b.totals()).instances, 2);
      });

      it('close gives up the lease at once: its users leave without waiting for ttlMs', async () => {
        const { instances, transitions, ttlMs } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        a.enter('p1', 'lobby', 'alice');
        a.enter('p1', null, 'alice');
        b.enter('p1', 'lobby', 'bob');
        await transitions.waitFor((t) => t.present && t.room === 'lobby', 2);
        await a.counts('p1');
        const closing = performance.now();
        await a.close();
        assert.deepEqual((await b.presence('p1', 'lobby', undefined, 10)).users, [
          { user: 'bob', connections: 1 },
        ]);
        assert.deepEqual(await b.totals(), {
          connections: 0,
          users: 0,
          rooms: 1,
          instances: 1,
          partial: false,
        });
        await transitions.waitFor(is(transition('alice', false)), 1, ttlMs / 2);
        assert.ok(performance.now() - closing < ttlMs, 'released before the lease would lapse');
        await transitions.settle(b);
        assert.equal(transitions.reported().filter((s) => !s.transition.present).length, 1);
      });

      it('is healthy while open, and closes safely twice, in turn and at once', async () => {
        const { instances } = await open(2);
        const [a, b] = instances as [ClusterState, ClusterState];
        assert.equal(a.healthy(), true);
        await a.close();
        await a.close();
        await Promise.all([b.close(), b.close()]);
        a.enter('p1', 'lobby', 'alice');
        a.exit('p1', 'lobby', 'alice');
      });
    });
  });
}
