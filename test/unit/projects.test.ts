import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { signProjectToken } from '../../src/auth/project-jwt.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { parseBusEvent } from '../../src/bus/redis-bus.js';
import { noSettings, type Project } from '../../src/domain.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { MISS_TTL_MS, newProjectHash, Projects } from '../../src/tenancy/projects.js';

/** A real in-memory store that counts project lookups. */
function countingStore() {
  const store = SqliteStore.open(':memory:');
  let lookups = 0;
  const getProject = store.getProject.bind(store);
  store.getProject = (hash: string) => {
    lookups++;
    return getProject(hash);
  };
  return { store, lookups: () => lookups };
}

const outsider: Project = {
  hash: 'created-elsewhere',
  name: 'elsewhere',
  jwtSecret: 'x'.repeat(43),
  createdAt: new Date().toISOString(),
  settings: noSettings(),
};

describe('Projects: the cached lookup by hash', () => {
  let counted: ReturnType<typeof countingStore>;
  let bus: MemoryBus;
  let projects: Projects;

  beforeEach(() => {
    counted = countingStore();
    bus = new MemoryBus();
    projects = new Projects(counted.store, bus);
  });
  afterEach(async () => {
    await counted.store.close();
    await bus.close();
  });

  it('looks an unknown hash up once, then answers it from memory for at most 2 s', async () => {
    for (let i = 0; i < 50; i++) {
      assert.deepEqual(await projects.authenticate('made-up', 'token'), {
        ok: false,
        error: 'unknownProject',
      });
    }
    assert.equal(counted.lookups(), 1);
    assert.ok(MISS_TTL_MS <= 2000);
  });

  it('a project-created event drops the remembered miss at once (the project was created on another instance)', async () => {
    await projects.authenticate(outsider.hash, 'token');
    await counted.store.createProject(outsider);
    projects.apply({ kind: 'project-created', project: outsider.hash });
    const token = signProjectToken(outsider.jwtSecret, 'alice', '1h');
    const auth = await projects.authenticate(outsider.hash, token);
    assert.equal(auth.ok, true);
  });

  it('creating a project here publishes project-created on the control topic, which the Redis bus accepts', async () => {
    const seen: unknown[] = [];
    bus.onEvent((_topic, event) => seen.push(event));
    await bus.subscribe('control');
    const created = await projects.create('new');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, [{ kind: 'project-created', project: created.hash }]);
    assert.deepEqual(parseBusEvent(seen[0]), seen[0]);
  });

  it('refresh applies a rotation and a deletion that no event announced, and reads all hashes in one query', async () => {
    const kept = await projects.create('kept');
    const rotated = await projects.create('rotated');
    const deleted = await projects.create('deleted');
    for (const project of [kept, rotated, deleted]) await projects.get(project.hash);
    const changes: unknown[] = [];
    projects.onChange((event) => changes.push(event));
    await counted.store.setProjectSecret(rotated.hash, 'y'.repeat(43));
    await counted.store.deleteProject(deleted.hash);
    let queries = 0;
    const getProjects = counted.store.getProjects.bind(counted.store);
    counted.store.getProjects = (hashes) => {
      queries++;
      return getProjects(hashes);
    };
    await projects.refresh(['active-elsewhere']);
    assert.equal(queries, 1);
    assert.deepEqual(
      changes.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        { kind: 'project-deleted', project: 'active-elsewhere' },
        { kind: 'project-deleted', project: deleted.hash },
        { kind: 'project-rotated', project: rotated.hash },
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    const oldToken = signProjectToken(rotated.jwtSecret, 'alice', '1h');
    assert.deepEqual(await projects.authenticate(rotated.hash, oldToken), {
      ok: false,
      error: 'invalidToken',
    });
  });

  it('update keeps the values a patch does not name, applies the change here and publishes project-updated', async () => {
    const seen: unknown[] = [];
    bus.onEvent((_topic, event) => seen.push(event));
    await bus.subscribe('control');
    const project = await projects.create('patched');
    await projects.update(project.hash, {
      settings: { retention: { maxAgeSeconds: 60, maxMessagesPerRoom: 10 }, limits: {} },
    });
    assert.equal((await projects.get(project.hash))?.settings.retention.maxAgeSeconds, 60);
    seen.length = 0;
    const updated = await projects.update(project.hash, {
      name: 'renamed',
      settings: { retention: { maxAgeSeconds: null }, limits: { maxConnections: 3 } },
    });
    const expected = {
      retention: { maxAgeSeconds: null, maxMessagesPerRoom: 10 },
      limits: { maxConnections: 3, maxConnectionsPerUser: null, maxMessagesPerSecond: null },
    };
    assert.equal(updated?.name, 'renamed');
    assert.deepEqual(updated?.settings, expected);
    const cached = await projects.get(project.hash);
    assert.equal(cached?.name, 'renamed', 'the cached copy was dropped here');
    assert.deepEqual(cached?.settings, expected);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, [{ kind: 'project-updated', project: project.hash }]);
    assert.deepEqual(parseBusEvent(seen[0]), seen[0]);
    assert.equal(await projects.update('no-such-hash', { name: 'x' }), undefined);
  });

  it('refresh applies a name or settings change that no event announced, and nothing for an unchanged project', async () => {
    const renamed = await projects.create('renamed');
    const reconfigured = await projects.create('reconfigured');
    const unchanged = await projects.create('unchanged');
    for (const project of [renamed, reconfigured, unchanged]) await projects.get(project.hash);
    const changes: unknown[] = [];
    projects.onChange((event) => changes.push(event));
    await counted.store.updateProject(renamed.hash, { name: 'renamed elsewhere' });
    const settings = noSettings();
    settings.limits.maxMessagesPerSecond = 5;
    await counted.store.updateProject(reconfigured.hash, { settings });
    await projects.refresh();
    assert.deepEqual(
      changes.map((event) => JSON.stringify(event)).sort(),
      [
        { kind: 'project-updated', project: renamed.hash },
        { kind: 'project-updated', project: reconfigured.hash },
      ]
        .map((event) => JSON.stringify(event))
        .sort(),
    );
    assert.equal((await projects.get(renamed.hash))?.name, 'renamed elsewhere');
    assert.equal((await projects.get(reconfigured.hash))?.settings.limits.maxMessagesPerSecond, 5);
    changes.length = 0;
    await projects.refresh();
    assert.deepEqual(changes, []);
  });
});

describe('newProjectHash', () => {
  it('is 16 base64url characters and never starts with "-" (a command line would take it for an option)', () => {
    for (let i = 0; i < 2000; i++) {
      const hash = newProjectHash();
      assert.match(hash, /^[A-Za-z0-9_][A-Za-z0-9_-]{15}$/);
    }
  });
});
