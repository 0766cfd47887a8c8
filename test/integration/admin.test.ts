import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { ADMIN_TOKEN, signToken, startTestServer, type TestServer } from '../helpers/server.js';

interface Created {
  hash: string;
  jwtSecret: string;
  name: string;
  createdAt: string;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** 32 random bytes in base64url are 43 characters. */
const STRONG_SECRET = /^[A-Za-z0-9_-]{43,}$/;

describe('admin API: /admin/projects', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  const create = async (name: string): Promise<Created> => {
    const response = await server.admin('POST', '/admin/projects', { name });
    assert.equal(response.status, 201);
    return (await response.json()) as Created;
  };

  const call = (method: string, path: string, authorization?: string, body?: string) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    return fetch(`${server.adminUrl}${path}`, { method, headers, body });
  };

  it('POST /admin/projects {"name":"demo"} answers 201 with exactly hash, jwtSecret, name, createdAt', async () => {
    const startedAt = Date.now();
    const response = await server.admin('POST', '/admin/projects', { name: 'demo' });
    assert.equal(response.status, 201);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['createdAt', 'hash', 'jwtSecret', 'name']);
    assert.equal(body.name, 'demo');
    assert.equal(typeof body.hash, 'string');
    assert.match(body.hash as string, /^[A-Za-z0-9_-]+$/);
    assert.equal(encodeURIComponent(body.hash as string), body.hash);
    assert.match(body.jwtSecret as string, STRONG_SECRET);
    assert.match(body.createdAt as string, ISO_8601);
    const createdAt = Date.parse(body.createdAt as string);
    assert.ok(createdAt >= startedAt - 1000 && createdAt <= Date.now() + 1000, `${createdAt}`);
  });

  it('every project gets its own hash and secret, even with an equal name', async () => {
    const first = await create('twin');
    const second = await create('twin');
    assert.notEqual(first.hash, second.hash);
    assert.notEqual(first.jwtSecret, second.jwtSecret);
  });

  it('a name is kept exactly, Unicode included', async () => {
    const project = await create('Équipe 🚀 "quotes"');
    assert.equal(project.name, 'Équipe 🚀 "quotes"');
    const response = await server.admin('GET', `/admin/projects/${project.hash}`);
    assert.equal(((await response.json()) as Created).name, 'Équipe 🚀 "quotes"');
  });

  it('GET /admin/projects answers {"projects":[…]} with hash, name, createdAt and no secret anywhere', async () => {
    const project = await create('listed');
    const response = await server.admin('GET', '/admin/projects');
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.ok(!text.includes('jwtSecret'), text);
    assert.ok(!text.includes(project.jwtSecret), 'the secret leaked into the list');
    const body = JSON.parse(text) as { projects: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(body), ['projects']);
    assert.ok(Array.isArray(body.projects));
    const entry = body.projects.find((p) => p.hash === project.hash);
    assert.deepEqual(entry, {
      hash: project.hash,
      name: 'listed',
      createdAt: project.createdAt,
    });
    for (const p of body.projects) {
      assert.deepEqual(Object.keys(p).sort(), ['createdAt', 'hash', 'name']);
    }
  });

  it('GET /admin/projects/:hash answers the project without its secret', async () => {
    const project = await create('one');
    const response = await server.admin('GET', `/admin/projects/${project.hash}`);
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.ok(!text.includes(project.jwtSecret), 'the secret leaked');
    assert.ok(!text.includes('jwtSecret'), text);
    const { settings, effective, ...rest } = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(rest, {
      hash: project.hash,
      name: 'one',
      createdAt: project.createdAt,
    });
    // Their values: integration/project-settings.
    assert.equal(typeof settings, 'object');
    assert.equal(typeof effective, 'object');
  });

  /** Each route answers exactly `{"success":false,"error":ERROR}` with that status. */
  const expectRefused = async (
    routes: readonly (readonly [string, string])[],
    status: number,
    error: string,
  ): Promise<void> => {
    for (const [method, path] of routes) {
      const response = await server.admin(method, path);
      assert.equal(response.status, status, `${method} ${path}`);
      assert.equal(await response.text(), JSON.stringify({ success: false, error }), path);
    }
  };

  it('an unknown hash answers 404 on GET, DELETE and rotate-secret', async () => {
    await expectRefused(
      [
        ['GET', '/admin/projects/no-such-hash'],
        ['DELETE', '/admin/projects/no-such-hash'],
        ['POST', '/admin/projects/no-such-hash/rotate-secret'],
      ],
      404,
      'Unknown project',
    );
  });

  it('a malformed % escape in the hash answers 400 Invalid path on GET, DELETE and rotate-secret, never 500', async () => {
    const before = await (await server.admin('GET', '/admin/projects')).text();
    await expectRefused(
      [
        ['GET', '/admin/projects/%zz'],
        ['DELETE', '/admin/projects/%zz'],
        ['GET', '/admin/projects/%E0%A4%A'],
        ['POST', '/admin/projects/%E0/rotate-secret'],
        ['POST', '/admin/projects/%/rotate-secret'],
      ],
      400,
      'Invalid path',
    );
    assert.equal(await (await server.admin('GET', '/admin/projects')).text(), before);
  });

  it('DELETE /admin/projects/:hash answers 204 with no body; its sockets get Unknown project and close 4004; then the project is gone (404, not listed, its tokens refused)', async () => {
    const project = await create('doomed');
    const token = await signToken(project.jwtSecret, 'alice');
    const socket = await TestClient.connect(`${server.wsUrl}/ws/${project.hash}?jwt=${token}`);
    const response = await server.admin('DELETE', `/admin/projects/${project.hash}`);
    assert.equal(response.status, 204);
    assert.equal(await response.text(), '');
    assert.deepEqual(await socket.next('error'), { type: 'error', message: 'Unknown project' });
    assert.equal((await socket.waitClosed()).code, 4004);
    assert.equal((await server.admin('GET', `/admin/projects/${project.hash}`)).status, 404);
    assert.equal((await server.admin('DELETE', `/admin/projects/${project.hash}`)).status, 404);
    const list = (await (await server.admin('GET', '/admin/projects')).json()) as {
      projects: Created[];
    };
    assert.equal(
      list.projects.some((p) => p.hash === project.hash),
      false,
    );
    const publish = await server.api('POST', '/api/message', {
      hash: project.hash,
      token,
      body: { room: 'r', payload: 'p' },
    });
    assert.equal(publish.status, 404);
    assert.deepEqual(await publish.json(), { success: false, error: 'Unknown project' });
  });

  it('POST /admin/projects/:hash/rotate-secret answers 200 {"hash","jwtSecret"} with a new secret that replaces the old one', async () => {
    const project = await create('rotating');
    const oldToken = await signToken(project.jwtSecret, 'alice');
    const response = await server.admin('POST', `/admin/projects/${project.hash}/rotate-secret`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['hash', 'jwtSecret']);
    assert.equal(body.hash, project.hash);
    assert.match(body.jwtSecret as string, STRONG_SECRET);
    assert.notEqual(body.jwtSecret, project.jwtSecret);

    const publish = (token: string) =>
      server.api('POST', '/api/message', {
        hash: project.hash,
        token,
        body: { room: 'r', payload: 'p' },
      });
    const refused = await publish(oldToken);
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), { success: false, error: 'Invalid token' });
    assert.equal((await publish(await signToken(body.jwtSecret as string, 'alice'))).status, 200);

    const again = (await (
      await server.admin('POST', `/admin/projects/${project.hash}/rotate-secret`)
    ).json()) as { jwtSecret: string };
    assert.notEqual(again.jwtSecret, body.jwtSecret);
    const shown = await (await server.admin('GET', `/admin/projects/${project.hash}`)).text();
    assert.ok(!shown.includes(again.jwtSecret), 'GET shows the rotated secret');
  });

  it('a missing or wrong admin token answers 401 on every admin route, and changes nothing', async () => {
    const project = await create('guarded');
    const before = await (await server.admin('GET', '/admin/projects')).text();
    const routes: [string, string, string?][] = [
      ['GET', '/admin/projects'],
      ['POST', '/admin/projects', '{"name":"intruder"}'],
      ['GET', `/admin/projects/${project.hash}`],
      ['PATCH', `/admin/projects/${project.hash}`, '{"name":"intruder"}'],
      ['DELETE', `/admin/projects/${project.hash}`],
      ['POST', `/admin/projects/${project.hash}/rotate-secret`],
      ['GET', '/admin/projects/no-such-hash'],
    ];
    const wrong: (string | undefined)[] = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Bearer wrong-token',
      `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
      `Bearer ${ADMIN_TOKEN.slice(0, 4)}`,
      `Bearer ${ADMIN_TOKEN}x`,
      `Bearer ${ADMIN_TOKEN}${ADMIN_TOKEN}`,
      `Bearer ${ADMIN_TOKEN.toUpperCase()}`,
      ADMIN_TOKEN,
      `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`,
      `Token ${ADMIN_TOKEN}`,
    ];
    for (const [method, path, body] of routes) {
      for (const authorization of wrong) {
        const response = await call(method, path, authorization, body);
        const what = `${method} ${path} with ${JSON.stringify(authorization)}`;
        assert.equal(response.status, 401, what);
        assert.deepEqual(await response.json(), { success: false, error: 'Unauthorized' }, what);
      }
    }
    assert.equal(await (await server.admin('GET', '/admin/projects')).text(), before);
    const token = await signToken(project.jwtSecret, 'alice');
    const publish = await server.api('POST', '/api/message', {
      hash: project.hash,
      token,
      body: { room: 'r', payload: 'still here' },
    });
    assert.equal(publish.status, 200);
  });

  it('a project token is not an admin token', async () => {
    const project = await create('not-admin');
    const token = await signToken(project.jwtSecret, 'alice');
    const response = await call('GET', '/admin/projects', `Bearer ${token}`);
    assert.equal(response.status, 401);
  });

  it('a missing, empty or non-string name answers 400 and creates nothing', async () => {
    const before = await (await server.admin('GET', '/admin/projects')).text();
    const cases: [string, string][] = [
      ['{}', 'Name required'],
      ['{"name":""}', 'Name required'],
      ['{"name":null}', 'Name required'],
      ['{"name":5}', 'Name required'],
      ['{"name":["demo"]}', 'Name required'],
      ['{"name":{"first":"demo"}}', 'Name required'],
      ['{"title":"demo"}', 'Name required'],
      ['', 'Invalid JSON'],
      ['not json', 'Invalid JSON'],
      ['["demo"]', 'Invalid JSON'],
      ['"demo"', 'Invalid JSON'],
    ];
    for (const [body, error] of cases) {
      const response = await call('POST', '/admin/projects', `Bearer ${ADMIN_TOKEN}`, body);
      assert.equal(response.status, 400, body);
      assert.deepEqual(await response.json(), { success: false, error }, body);
    }
    assert.equal(await (await server.admin('GET', '/admin/projects')).text(), before);
  });
});
