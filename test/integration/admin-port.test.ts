import assert from 'node:assert/strict';
import { type IncomingHttpHeaders, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/http.js';
import {
  ADMIN_TOKEN,
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';

const NOT_FOUND = { success: false, error: 'Not found' };

/**
 * A WebSocket handshake sent by hand, so that a refusal's HTTP status and body can be read; an
 * accepted one answers 101 and its socket is dropped at once.
 */
function upgrade(
  url: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: '' });
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('ADMIN_PORT=0: /admin and /metrics on their own listener', () => {
  let server: TestServer;
  let project: TestProject;
  let token: string;

  before(async () => {
    server = await startTestServer({ ADMIN_PORT: '0' });
    project = await server.createProject('doors');
    token = await signToken(project.jwtSecret, 'alice');
  });
  after(() => server.close());

  const asAdmin = (base: string, method: string, path: string, body?: string) =>
    rawRequest(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      ...(body === undefined ? {} : { body }),
    });

  it('adminUrl is another port than url', () => {
    assert.match(server.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(server.adminUrl, server.url);
  });

  it('/admin/projects and /metrics answer on adminUrl, and 404 Not found on the main url', async () => {
    const listed = await asAdmin(server.adminUrl, 'GET', '/admin/projects');
    assert.equal(listed.status, 200);
    assert.ok(listed.text.includes(project.hash), listed.text);
    const scrape = await rawRequest(`${server.adminUrl}/metrics`);
    assert.equal(scrape.status, 200);
    assert.match(scrape.text, /^# HELP /m);

    const before = listed.text;
    for (const [method, path, body] of [
      ['GET', '/admin/projects'],
      ['POST', '/admin/projects', '{"name":"sneaked-in"}'],
      ['GET', `/admin/projects/${project.hash}`],
      ['DELETE', `/admin/projects/${project.hash}`],
      ['POST', `/admin/projects/${project.hash}/rotate-secret`],
      ['GET', '/admin'],
      ['GET', '/metrics'],
    ] as const) {
      const response = await asAdmin(server.url, method, path, body);
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.deepEqual(response.json(), NOT_FOUND, `${method} ${path}`);
    }
    assert.equal((await asAdmin(server.adminUrl, 'GET', '/admin/projects')).text, before);
  });

  it('/api and /ws answer on the main url only: the admin port answers 404 Not found for them', async () => {
    const send = (base: string) =>
      rawRequest(`${base}/api/message`, {
        method: 'POST',
        headers: { 'x-hash': project.hash, authorization: `Bearer ${token}` },
        body: JSON.stringify({ room: 'doors', payload: 'hi' }),
      });
    assert.equal((await send(server.url)).status, 200);
    const refused = await send(server.adminUrl);
    assert.equal(refused.status, 404);
    assert.deepEqual(refused.json(), NOT_FOUND);
    const history = await rawRequest(`${server.adminUrl}/api/rooms/doors/messages`, {
      headers: { 'x-hash': project.hash, authorization: `Bearer ${token}` },
    });
    assert.deepEqual([history.status, history.json()], [404, NOT_FOUND]);

    const wsPath = `/ws/${project.hash}?jwt=${token}`;
    assert.equal((await upgrade(`${server.url}${wsPath}`)).status, 101);
    const handshake = await upgrade(`${server.adminUrl}${wsPath}`);
    assert.deepEqual([handshake.status, JSON.parse(handshake.text)], [404, NOT_FOUND]);
  });

  it('/healthz and /readyz answer 200 on both ports', async () => {
    for (const base of [server.url, server.adminUrl]) {
      for (const path of ['/healthz', '/readyz']) {
        assert.equal((await rawRequest(`${base}${path}`)).status, 200, `${base}${path}`);
      }
    }
  });

  it('the admin listener is bound to ADMIN_HOST, 127.0.0.1 by default', () => {
    assert.equal(server.config.adminHost, '127.0.0.1');
    assert.equal(new URL(server.adminUrl).hostname, '127.0.0.1');
  });

  it('the start prints `socket-base admin listening on ADMIN_URL` after the main listening line', () => {
    const main = server.printed.indexOf(`socket-base listening on ${server.url}`);
    const admin = server.printed.indexOf(`socket-base admin listening on ${server.adminUrl}`);
    assert.ok(main >= 0, server.printed.join('\n'));
    assert.ok(admin > main, server.printed.join('\n'));
  });
});

describe('ADMIN_PORT: without it, and closing', () => {
  it('unset: adminUrl equals url, and /admin, /metrics and /api all answer there; no admin line is printed', async () => {
    const server = await startTestServer();
    try {
      assert.equal(server.adminUrl, server.url);
      assert.equal((await server.admin('GET', '/admin/projects')).status, 200);
      assert.equal((await rawRequest(`${server.url}/metrics`)).status, 200);
      const project = await server.createProject('one-port');
      const sent = await server.api('POST', '/api/message', {
        hash: project.hash,
        token: await signToken(project.jwtSecret, 'alice'),
        body: { room: 'r', payload: 'p' },
      });
      assert.equal(sent.status, 200);
      assert.ok(!server.printed.some((line) => line.includes('admin listening')));
    } finally {
      await server.close();
    }
  });

  it('close() stops both listeners and is safe to call twice', async () => {
    const server = await startTestServer({ ADMIN_PORT: '0' });
    // Not kept alive: a pooled socket that the server closes would fail with a hang-up instead.
    const probe = { headers: { connection: 'close' } };
    assert.equal((await rawRequest(`${server.adminUrl}/healthz`, probe)).status, 200);
    await Promise.all([server.close(), server.close()]);
    await server.close();
    for (const base of [server.url, server.adminUrl]) {
      await assert.rejects(rawRequest(`${base}/healthz`, probe), /ECONNREFUSED/, base);
    }
  });
});

describe('PUBLIC_URL: the demo banner', () => {
  const bannerUrl = (server: TestServer): string =>
    /WebSocket:\s+(\S+)/.exec(server.printed.join('\n'))?.[1] ?? '';

  for (const [publicUrl, expected] of [
    ['https://chat.example.com', 'wss://chat.example.com/ws/'],
    ['http://chat.example.com:8000/', 'ws://chat.example.com:8000/ws/'],
  ] as const) {
    it(`with PUBLIC_URL=${publicUrl} the banner's WebSocket URL starts ${expected}`, async () => {
      const server = await startTestServer({ PUBLIC_URL: publicUrl });
      try {
        const shown = bannerUrl(server);
        assert.ok(shown.startsWith(expected), shown);
        assert.match(shown, /\/ws\/[A-Za-z0-9_-]+\?jwt=[\w-]+\.[\w-]+\.[\w-]+$/);
      } finally {
        await server.close();
      }
    });
  }

  it('without PUBLIC_URL the banner points at the main port, not the admin port', async () => {
    const server = await startTestServer({ ADMIN_PORT: '0' });
    try {
      const shown = bannerUrl(server);
      assert.ok(shown.startsWith(`${server.wsUrl}/ws/`), shown);
      assert.equal((await upgrade(shown.replace('ws://', 'http://'))).status, 101);
    } finally {
      await server.close();
    }
  });
});
