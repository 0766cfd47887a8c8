/**
 * Project settings (issue 9): `GET` and `PATCH /admin/projects/:hash` on a real server, and a change
 * made on one instance in force on another within 2 s, whether its control event arrives or not.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../helpers/eventually.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.js';
import {
  BAD_SETTINGS,
  NO_SETTINGS as NONE,
  type ProjectView,
  type SettingsView as Settings,
} from '../helpers/settings.js';

async function view(server: TestServer, hash: string): Promise<ProjectView> {
  const response = await server.admin('GET', `/admin/projects/${hash}`);
  assert.equal(response.status, 200);
  return (await response.json()) as ProjectView;
}

/** A PATCH with a raw body, so that the test sends exactly the JSON text it means. */
function patchText(server: TestServer, hash: string, body: string): Promise<Response> {
  return fetch(`${server.adminUrl}/admin/projects/${hash}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body,
  });
}

async function patch(server: TestServer, hash: string, body: unknown): Promise<ProjectView> {
  const response = await server.admin('PATCH', `/admin/projects/${hash}`, body);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text) as ProjectView;
}

async function expectError(response: Response, status: number, error: string): Promise<void> {
  assert.equal(response.status, status);
  assert.equal(await response.text(), JSON.stringify({ success: false, error }));
}

describe('project settings: GET and PATCH /admin/projects/:hash', () => {
  let server: TestServer;
  let withDefaults: TestServer;

  before(async () => {
    server = await startTestServer();
    withDefaults = await startTestServer({
      RETENTION_MAX_AGE_S: '86400',
      RETENTION_MAX_MESSAGES: '1000',
      PROJECT_MAX_CONNECTIONS: '500',
      PROJECT_MAX_CONNECTIONS_PER_USER: '5',
      PROJECT_MAX_MESSAGES_PER_SECOND: '50',
    });
  });
  after(async () => {
    await server.close();
    await withDefaults.close();
  });

  it('GET answers exactly hash, name, createdAt, settings and effective; a new project on a server without defaults has null everywhere', async () => {
    const project = await server.createProject('plain');
    const response = await server.admin('GET', `/admin/projects/${project.hash}`);
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.ok(!text.includes(project.jwtSecret), 'the secret leaked');
    const body = JSON.parse(text) as ProjectView;
    assert.deepEqual(Object.keys(body), ['hash', 'name', 'createdAt', 'settings', 'effective']);
    assert.deepEqual(body, {
      hash: project.hash,
      name: 'plain',
      createdAt: project.createdAt,
      settings: NONE,
      effective: NONE,
    });
  });

  it('effective holds the server-wide defaults where the project has no value, and the project’s own value over them', async () => {
    const project = await withDefaults.createProject('defaulted');
    const defaults: Settings = {
      retention: { maxAgeSeconds: 86400, maxMessagesPerRoom: 1000 },
      limits: { maxConnections: 500, maxConnectionsPerUser: 5, maxMessagesPerSecond: 50 },
    };
    const fresh = await view(withDefaults, project.hash);
    assert.deepEqual(fresh.settings, NONE);
    assert.deepEqual(fresh.effective, defaults);

    const changed = await patch(withDefaults, project.hash, {
      settings: { retention: { maxMessagesPerRoom: 20 }, limits: { maxConnections: 9000 } },
    });
    const own: Settings = {
      retention: { maxAgeSeconds: null, maxMessagesPerRoom: 20 },
      limits: { maxConnections: 9000, maxConnectionsPerUser: null, maxMessagesPerSecond: null },
    };
    assert.deepEqual(changed.settings, own);
    assert.deepEqual(changed.effective, {
      retention: { maxAgeSeconds: 86400, maxMessagesPerRoom: 20 },
      limits: { maxConnections: 9000, maxConnectionsPerUser: 5, maxMessagesPerSecond: 50 },
    });
    assert.deepEqual(await view(withDefaults, project.hash), changed);

    const cleared = await patch(withDefaults, project.hash, {
      settings: { retention: { maxMessagesPerRoom: null }, limits: { maxConnections: null } },
    });
    assert.deepEqual(cleared.settings, NONE);
    assert.deepEqual(cleared.effective, defaults, 'a cleared value falls back to the default');
  });

  it('PATCH takes any subset, answers 200 with the whole project as GET does, and keeps every value it does not name', async () => {
    const project = await server.createProject('subset');
    const all = await patch(server, project.hash, {
      settings: {
        retention: { maxAgeSeconds: 3600, maxMessagesPerRoom: 100 },
        limits: { maxConnections: 10, maxConnectionsPerUser: 2, maxMessagesPerSecond: 30 },
      },
    });
    assert.deepEqual(Object.keys(all), ['hash', 'name', 'createdAt', 'settings', 'effective']);
    assert.equal(all.hash, project.hash);
    assert.equal(all.createdAt, project.createdAt);

    const one = await patch(server, project.hash, { settings: { limits: { maxConnections: 11 } } });
    const expected: Settings = {
      retention: { maxAgeSeconds: 3600, maxMessagesPerRoom: 100 },
      limits: { maxConnections: 11, maxConnectionsPerUser: 2, maxMessagesPerSecond: 30 },
    };
    assert.deepEqual(one.settings, expected);
    assert.deepEqual(one.effective, expected);
    assert.deepEqual(await view(server, project.hash), one);

    const cleared = await patch(server, project.hash, {
      settings: { retention: { maxAgeSeconds: null } },
    });
    assert.deepEqual(cleared.settings.retention, { maxAgeSeconds: null, maxMessagesPerRoom: 100 });
    assert.deepEqual(cleared.settings.limits, expected.limits);

    for (const unchanged of [{}, { settings: {} }, { settings: { retention: {}, limits: {} } }]) {
      assert.deepEqual(await patch(server, project.hash, unchanged), cleared);
    }
    const largest = await patch(server, project.hash, {
      settings: { limits: { maxMessagesPerSecond: Number.MAX_SAFE_INTEGER } },
    });
    assert.equal(largest.settings.limits.maxMessagesPerSecond, Number.MAX_SAFE_INTEGER);
  });

  it('PATCH {"name"} renames, alone or with settings; a bad name answers Name required / Name too long and changes nothing', async () => {
    const project = await server.createProject('before');
    const renamed = await patch(server, project.hash, { name: 'Équipe 🚀' });
    assert.equal(renamed.name, 'Équipe 🚀');
    const both = await patch(server, project.hash, {
      name: 'after',
      settings: { retention: { maxMessagesPerRoom: 5 } },
    });
    assert.equal(both.name, 'after');
    assert.equal(both.settings.retention.maxMessagesPerRoom, 5);
    const list = (await (await server.admin('GET', '/admin/projects')).json()) as {
      projects: { hash: string; name: string }[];
    };
    assert.equal(list.projects.find((p) => p.hash === project.hash)?.name, 'after');

    const cases: [unknown, string][] = [
      [{ name: '' }, 'Name required'],
      [{ name: '   ' }, 'Name required'],
      [{ name: 5 }, 'Name required'],
      [{ name: ['x'] }, 'Name required'],
      [
        { name: 'x'.repeat(201), settings: { retention: { maxMessagesPerRoom: 6 } } },
        'Name too long',
      ],
    ];
    for (const [body, error] of cases) {
      await expectError(
        await server.admin('PATCH', `/admin/projects/${project.hash}`, body),
        400,
        error,
      );
    }
    assert.deepEqual(await view(server, project.hash), both);
  });

  it('every bad shape answers 400 Invalid settings and changes nothing', async () => {
    const project = await server.createProject('guarded');
    const before = await patch(server, project.hash, {
      settings: { retention: { maxAgeSeconds: 60 }, limits: { maxConnections: 3 } },
    });
    for (const [what, body] of BAD_SETTINGS) {
      const response = await patchText(server, project.hash, body);
      assert.equal(response.status, 400, what);
      assert.equal(
        await response.text(),
        JSON.stringify({ success: false, error: 'Invalid settings' }),
        what,
      );
      assert.deepEqual(await view(server, project.hash), before, `${what} changed something`);
    }
  });

  it('a body that is not JSON, or not a JSON object, answers 400 Invalid JSON; one over MAX_BODY_BYTES 413; nothing changes', async () => {
    const project = await server.createProject('json');
    const before = await view(server, project.hash);
    for (const body of ['', 'not json', '[]', '"x"', 'null', '5', '{"settings":']) {
      await expectError(await patchText(server, project.hash, body), 400, 'Invalid JSON');
    }
    const huge = JSON.stringify({ name: 'x'.repeat(server.config.maxBodyBytes) });
    await expectError(await patchText(server, project.hash, huge), 413, 'Payload too large');
    assert.deepEqual(await view(server, project.hash), before);
  });

  it('PATCH on an unknown hash answers 404 Unknown project; without the admin token 401, and nothing changes', async () => {
    await expectError(
      await server.admin('PATCH', '/admin/projects/no-such-hash', { name: 'x' }),
      404,
      'Unknown project',
    );
    const project = await server.createProject('locked');
    const before = await view(server, project.hash);
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789']) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== undefined) headers.authorization = authorization;
      const response = await fetch(`${server.adminUrl}/admin/projects/${project.hash}`, {
        method: 'PATCH',
        headers,
        body: JSON.stringify({ name: 'taken', settings: { limits: { maxConnections: 1 } } }),
      });
      await expectError(response, 401, 'Unauthorized');
    }
    assert.deepEqual(await view(server, project.hash), before);
  });
});

describe('project settings on several instances (one SQLite file)', () => {
  let dir: string;
  let databaseUrl: string;
  const servers: TestServer[] = [];
  const start = async (env: Record<string, string>): Promise<TestServer> => {
    const server = await startTestServer({ DATABASE_URL: databaseUrl, ...env });
    servers.push(server);
    return server;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sb-settings-'));
    databaseUrl = `sqlite:${join(dir, 'shared.db')}`;
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** PATCHes on `changer` and resolves how long until `reader` showed the change. */
  const propagation = async (changer: TestServer, reader: TestServer): Promise<number> => {
    const project = await changer.createProject('spread');
    // The reader caches the project first, so that only the change's own path can update it.
    assert.deepEqual((await view(reader, project.hash)).settings, NONE);
    const changed = await patch(changer, project.hash, {
      name: 'spread out',
      settings: { retention: { maxMessagesPerRoom: 42 }, limits: { maxMessagesPerSecond: 7 } },
    });
    const startedAt = Date.now();
    await eventually(
      'the other instance shows the change',
      async () => JSON.stringify(await view(reader, project.hash)) === JSON.stringify(changed),
      2000,
    );
    return Date.now() - startedAt;
  };

  it('a PATCH on A is in force on B within 2 s, through the control topic (Redis)', async () => {
    const env = {
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `sb-test-${randomBytes(6).toString('hex')}:`,
    };
    const changer = await start(env);
    // A refresh is a minute away: only the project-updated event can bring the change in time.
    const reader = await start({ ...env, PROJECT_REFRESH_MS: '60000' });
    assert.ok((await propagation(changer, reader)) < 2000);
  });

  it('a PATCH whose control event never reaches B is in force there within 2 s (PROJECT_REFRESH_MS)', async () => {
    // No shared bus at all: B learns of the change only by reading its cached projects again.
    const changer = await start({});
    const reader = await start({});
    assert.equal(reader.config.projectRefreshMs, 1000);
    assert.ok((await propagation(changer, reader)) < 2000);
  });
});
