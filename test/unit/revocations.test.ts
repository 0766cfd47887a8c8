/**
 * Disconnections and token revocations in Projects (issue 11), on a real in-memory SQLite store and
 * the in-process bus: who is refused after a revocation, from the cache too, whether the event
 * came from here, from another instance, or was lost (the refresh); and the pure merge and check.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { mintProjectToken } from '../../src/auth/project-jwt.js';
import { type BusEvent, CONTROL_TOPIC } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { parseBusEvent } from '../../src/bus/redis-bus.js';
import type { Project } from '../../src/domain.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { type ProjectChange, Projects } from '../../src/tenancy/projects.js';
import { isRevoked, sameRevocations, withRevocation } from '../../src/tenancy/revocations.js';
import { nowSeconds, signClaims } from '../helpers/ws.js';

const INVALID = { ok: false, error: 'invalidToken' };

/** A token of `sub` issued `ago` seconds before this second. */
function issued(project: Project, sub: string, ago: number): string {
  return mintProjectToken(project.jwtSecret, sub, 3600, {}, (nowSeconds() - ago) * 1000).jwt;
}

describe('Projects: disconnect and token revocations', () => {
  let store: SqliteStore;
  let bus: MemoryBus;
  let projects: Projects;
  let project: Project;
  let published: BusEvent[];
  let changes: ProjectChange[];

  const auth = async (token: string) => {
    const result = await projects.authenticate(project.hash, token);
    return result.ok ? { ok: true, sub: result.sub } : result;
  };

  beforeEach(async () => {
    store = SqliteStore.open(':memory:');
    bus = new MemoryBus();
    projects = new Projects(store, bus);
    published = [];
    changes = [];
    bus.onEvent((topic, event) => {
      if (topic === CONTROL_TOPIC) published.push(event);
    });
    await bus.subscribe(CONTROL_TOPIC);
    project = await projects.create('revoking');
    projects.onChange((event) => changes.push(event));
    await new Promise((resolve) => setImmediate(resolve));
    published.length = 0;
  });
  afterEach(async () => {
    await store.close();
    await bus.close();
  });

  it('with revoke, the user’s tokens issued before the second of the call, or without iat, are refused (also once cached); one of that second, and other users’, are not', async () => {
    const old = issued(project, 'alice', 10);
    const noIat = signClaims(project.jwtSecret, { sub: 'alice' });
    const bob = issued(project, 'bob', 10);
    for (const token of [old, noIat, bob]) assert.equal((await auth(token)).ok, true);
    const before = nowSeconds();
    assert.equal(await projects.disconnect(project.hash, 'alice', true), true);
    const stored = (await store.revocations([project.hash])).get(project.hash);
    const notBefore = stored?.users.get('alice') ?? 0;
    assert.ok(notBefore >= before && notBefore <= nowSeconds(), 'the second of the call');
    assert.deepEqual([stored?.all, stored?.users.size], [null, 1]);
    assert.deepEqual(await auth(old), INVALID, 'the cached verified token is refused');
    assert.deepEqual(await auth(noIat), INVALID);
    const at = (second: number) =>
      mintProjectToken(project.jwtSecret, 'alice', 3600, {}, second * 1000).jwt;
    assert.deepEqual(await auth(at(notBefore - 1)), INVALID);
    assert.deepEqual(await auth(at(notBefore)), { ok: true, sub: 'alice' });
    assert.deepEqual(await auth(issued(project, 'alice', 0)), { ok: true, sub: 'alice' });
    assert.deepEqual(await auth(bob), { ok: true, sub: 'bob' });
  });

  it('with all and revoke, every user’s earlier tokens are refused; later ones work', async () => {
    const tokens = ['alice', 'bob'].map((sub) => issued(project, sub, 5));
    assert.equal(await projects.disconnect(project.hash, undefined, true), true);
    for (const token of tokens) assert.deepEqual(await auth(token), INVALID);
    assert.deepEqual(await auth(issued(project, 'carol', 0)), { ok: true, sub: 'carol' });
  });

  it('publishes project-disconnected on the control topic, which the Redis bus accepts, and tells listeners here first', async () => {
    assert.equal(await projects.disconnect(project.hash, 'alice', false), true);
    const before = nowSeconds();
    assert.equal(await projects.disconnect(project.hash, undefined, true), true);
    const notBefore = (await store.revocations([project.hash])).get(project.hash)?.all ?? 0;
    assert.ok(notBefore >= before);
    const expected = [
      { kind: 'project-disconnected', project: project.hash, user: 'alice', notBefore: null },
      { kind: 'project-disconnected', project: project.hash, user: null, notBefore },
    ];
    assert.deepEqual(changes, expected, 'applied here before the bus brought them back');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(published, expected);
    for (const event of published) assert.deepEqual(parseBusEvent(event), event);
  });

  it('without revoke nothing is stored and every token keeps working', async () => {
    const old = issued(project, 'alice', 10);
    assert.equal(await projects.disconnect(project.hash, 'alice', false), true);
    assert.equal(await projects.disconnect(project.hash, undefined, false), true);
    assert.deepEqual(await auth(old), { ok: true, sub: 'alice' });
    assert.equal((await store.revocations([project.hash])).size, 0);
  });

  it('an unknown project answers unknownProject, with or without revoke, and nothing is published', async () => {
    assert.equal(await projects.disconnect('no-such-hash', 'alice', false), 'unknownProject');
    assert.equal(await projects.disconnect('no-such-hash', 'alice', true), 'unknownProject');
    assert.equal(await projects.disconnect('no-such-hash', undefined, true), 'unknownProject');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual([published, changes], [[], []]);
  });

  it('a revocation announced by another instance is in force at once, without reading the store', async () => {
    const old = issued(project, 'alice', 10);
    assert.equal((await auth(old)).ok, true);
    await store.close();
    projects.apply({
      kind: 'project-disconnected',
      project: project.hash,
      user: 'alice',
      notBefore: nowSeconds(),
    });
    assert.deepEqual(await auth(old), INVALID);
    assert.deepEqual(await auth(issued(project, 'bob', 10)), { ok: true, sub: 'bob' });
  });

  it('refresh applies a revocation whose event was lost, reading every hash in one query', async () => {
    const other = await projects.create('other');
    changes.length = 0;
    const alice = issued(project, 'alice', 10);
    const dave = issued(other, 'dave', 10);
    assert.equal((await auth(alice)).ok, true);
    assert.equal((await projects.authenticate(other.hash, dave)).ok, true);
    await store.revokeTokens(project.hash, 'alice', nowSeconds());
    await store.revokeTokens(other.hash, undefined, nowSeconds());
    assert.equal((await auth(alice)).ok, true, 'nothing announced it yet');
    let queries = 0;
    const revocations = store.revocations.bind(store);
    store.revocations = (hashes) => {
      queries++;
      return revocations(hashes);
    };
    await projects.refresh();
    assert.equal(queries, 1);
    assert.deepEqual(await auth(alice), INVALID);
    assert.deepEqual(await projects.authenticate(other.hash, dave), INVALID);
    assert.deepEqual(changes, [], 'a revocation read back is no project change');
  });

  it('a project read for the first time comes with its revocations', async () => {
    await store.revokeTokens(project.hash, 'alice', nowSeconds());
    const fresh = new Projects(store, bus);
    assert.deepEqual(await fresh.authenticate(project.hash, issued(project, 'alice', 10)), INVALID);
  });

  it('a store that does not answer: storeUnavailable, nothing announced', async () => {
    await store.close();
    assert.equal(await projects.disconnect(project.hash, 'alice', true), 'storeUnavailable');
    assert.deepEqual(changes, []);
  });

  it('a bus that does not take the event: notDelivered, but the revocation is stored and in force here', async () => {
    const old = issued(project, 'alice', 10);
    await bus.close();
    assert.equal(await projects.disconnect(project.hash, 'alice', true), 'notDelivered');
    assert.equal(changes.length, 1, 'this instance closed its connections');
    assert.deepEqual(await auth(old), INVALID);
    assert.equal((await store.revocations([project.hash])).get(project.hash)?.users.size, 1);
  });
});

describe('revocations: the check and the merge', () => {
  const users = (entries: [string, number][]) => new Map(entries);

  it('isRevoked: before the later of the user’s and the project’s not-before, or no iat', () => {
    const revocations = { all: 100, users: users([['alice', 200]]) };
    assert.equal(isRevoked(undefined, 'alice', undefined), false);
    assert.equal(isRevoked(revocations, 'alice', 199), true);
    assert.equal(isRevoked(revocations, 'alice', 200), false);
    assert.equal(isRevoked(revocations, 'bob', 99), true);
    assert.equal(isRevoked(revocations, 'bob', 100), false);
    assert.equal(isRevoked(revocations, 'bob', undefined), true);
    assert.equal(isRevoked({ all: null, users: users([['alice', 5]]) }, 'bob', undefined), false);
  });

  it('withRevocation merges as the store does: forward only, the project’s drops the users’ it covers', () => {
    let merged = withRevocation(undefined, 'alice', 100);
    merged = withRevocation(merged, 'alice', 50);
    merged = withRevocation(merged, 'bob', 300);
    assert.ok(
      sameRevocations(merged, {
        all: null,
        users: users([
          ['alice', 100],
          ['bob', 300],
        ]),
      }),
    );
    merged = withRevocation(merged, null, 100);
    assert.ok(sameRevocations(merged, { all: 100, users: users([['bob', 300]]) }));
    merged = withRevocation(merged, 'carol', 100);
    merged = withRevocation(merged, null, 10);
    assert.ok(sameRevocations(merged, { all: 100, users: users([['bob', 300]]) }));
    assert.ok(!sameRevocations(merged, undefined));
    assert.ok(!sameRevocations(merged, { all: 100, users: users([['bob', 301]]) }));
  });
});
