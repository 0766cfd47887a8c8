import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { headerText, rawRequest } from '../helpers/http.js';
import type { StoredMessage } from '../helpers/ops.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl } from '../helpers/ws.js';

interface Published {
  success: true;
  id: string;
  seq: number;
}

/** A project on a server, with a ready token and short-hands for its /api calls. */
interface Tenant {
  project: TestProject;
  token: string;
  wsUrl(sub: string): Promise<string>;
  publish(room: string, payload: string, sub?: string): Promise<Published>;
  history(room: string, query?: string): Promise<StoredMessage[]>;
}

async function tenant(server: TestServer, name: string): Promise<Tenant> {
  const project = await server.createProject(name);
  const token = await signToken(project.jwtSecret, 'bob');
  return {
    project,
    token,
    wsUrl: (sub) => memberUrl(server, project, sub),
    async publish(room, payload, sub) {
      const response = await server.api('POST', '/api/message', {
        hash: project.hash,
        token: sub === undefined ? token : await signToken(project.jwtSecret, sub),
        body: { room, payload },
      });
      if (response.status !== 200)
        assert.fail(`publish: ${response.status} ${await response.text()}`);
      return (await response.json()) as Published;
    },
    async history(room, query = '') {
      const response = await server.api(
        'GET',
        `/api/rooms/${encodeURIComponent(room)}/messages${query}`,
        { hash: project.hash, token },
      );
      if (response.status !== 200)
        assert.fail(`history: ${response.status} ${await response.text()}`);
      return ((await response.json()) as { messages: StoredMessage[] }).messages;
    },
  };
}

/** Publishes `m1`…`mN` in concurrent batches; the answers sorted by seq, with their payloads. */
async function publishMany(
  t: Tenant,
  room: string,
  count: number,
): Promise<(Published & { payload: string })[]> {
  const results: (Published & { payload: string })[] = [];
  for (let start = 1; start <= count; start += 100) {
    const batch: Promise<Published & { payload: string }>[] = [];
    for (let n = start; n < start + 100 && n <= count; n++) {
      const payload = `m${n}`;
      batch.push(t.publish(room, payload).then((answer) => ({ ...answer, payload })));
    }
    results.push(...(await Promise.all(batch)));
  }
  return results.sort((x, y) => x.seq - y.seq);
}

async function errorOf(response: Response): Promise<{ status: number; body: unknown }> {
  return { status: response.status, body: await response.json() };
}

function refused(status: number, error: string): { status: number; body: unknown } {
  return { status, body: { success: false, error } };
}

describe('HTTP API: POST /api/message and /api/broadcast', () => {
  let server: TestServer;
  let a: Tenant;
  let other: Tenant;

  before(async () => {
    server = await startTestServer();
    a = await tenant(server, 'http-a');
    other = await tenant(server, 'http-other');
  });
  after(() => server.close());

  it('POST /api/message answers 200 {"success":true,"id","seq"} with exactly those keys', async () => {
    const response = await server.api('POST', '/api/message', {
      hash: a.project.hash,
      token: a.token,
      body: { room: 'answer-shape', payload: 'hi' },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['id', 'seq', 'success']);
    assert.equal(body.success, true);
    assert.equal(typeof body.id, 'string');
    assert.equal(body.seq, 1);
  });

  it('a message posted over HTTP reaches room members exactly like a WebSocket message, from the JWT sub, without membership', async () => {
    const alice = await TestClient.connect(await a.wsUrl('alice'));
    const outsider = await TestClient.connect(await a.wsUrl('outsider'));
    await alice.join('same-shape');
    await outsider.join('another-room');
    alice.send({ type: 'message', room: 'same-shape', payload: 'over ws' });
    const [viaWs] = await alice.collect('message', 1);
    alice.drain();

    const body = await a.publish('same-shape', 'over http', 'bob');
    const [viaHttp] = await alice.collect('message', 1);
    assert.deepEqual(Object.keys(viaHttp ?? {}), Object.keys(viaWs ?? {}));
    assert.deepEqual(viaHttp, {
      type: 'message',
      room: 'same-shape',
      payload: 'over http',
      from: 'bob',
      id: body.id,
      seq: 2,
      ts: viaHttp?.ts,
    });
    assert.equal(body.seq, 2);
    assert.notEqual(body.id, viaWs?.id);
    assert.equal(typeof viaHttp?.ts, 'number');
    await outsider.expectSilence();
    alice.close();
    outsider.close();
  });

  it('a message posted over HTTP is stored: history returns it with the id, seq and ts that were delivered', async () => {
    const alice = await TestClient.connect(await a.wsUrl('alice'));
    await alice.join('stored-http');
    const body = await a.publish('stored-http', 'keep me', 'carol');
    const [frame] = await alice.collect('message', 1);
    assert.deepEqual(await a.history('stored-http'), [
      {
        id: body.id,
        seq: body.seq,
        room: 'stored-http',
        payload: 'keep me',
        from: 'carol',
        ts: frame?.ts,
      },
    ]);
    alice.close();
  });

  it('POST /api/broadcast with a room answers exactly {"success":true} and reaches every connection of the project', async () => {
    const inRoom = await TestClient.connect(await a.wsUrl('in-room'));
    const inNoRoom = await TestClient.connect(await a.wsUrl('in-no-room'));
    const stranger = await TestClient.connect(await other.wsUrl('stranger'));
    await inRoom.join('chat-room-1');
    const response = await server.api('POST', '/api/broadcast', {
      hash: a.project.hash,
      token: a.token,
      body: { room: 'chat-room-1', payload: 'System message' },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { success: true });
    for (const client of [inRoom, inNoRoom]) {
      const [frame] = await client.collect('broadcast', 1);
      assert.deepEqual(frame, {
        type: 'broadcast',
        payload: 'System message',
        from: 'bob',
        ts: frame?.ts,
      });
      assert.deepEqual(Object.keys(frame ?? {}), ['type', 'payload', 'from', 'ts']);
      assert.equal(typeof frame?.ts, 'number');
    }
    await stranger.expectSilence();
    for (const client of [inRoom, inNoRoom, stranger]) client.close();
  });

  it('POST /api/broadcast without a room is accepted and reaches every connection', async () => {
    const first = await TestClient.connect(await a.wsUrl('first'));
    const second = await TestClient.connect(await a.wsUrl('second'));
    const response = await server.api('POST', '/api/broadcast', {
      hash: a.project.hash,
      token: a.token,
      body: { payload: 'no room given' },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { success: true });
    for (const client of [first, second]) {
      const [frame] = await client.collect('broadcast', 1);
      assert.equal(frame?.payload, 'no room given');
      assert.equal(frame?.from, 'bob');
      client.close();
    }
  });

  it('POST /api/broadcast ignores a room that is not a string or too long', async () => {
    for (const room of [5, null, 'r'.repeat(300)]) {
      const response = await server.api('POST', '/api/broadcast', {
        hash: a.project.hash,
        token: a.token,
        body: { room, payload: 'ignored room' },
      });
      assert.deepEqual(
        { status: response.status, body: await response.json() },
        { status: 200, body: { success: true } },
        `room ${JSON.stringify(room)}`,
      );
    }
  });

  it('the body is read as JSON whatever its content type (text/plain, none, form)', async () => {
    const contentTypes = [
      'text/plain',
      undefined,
      'application/x-www-form-urlencoded',
      'application/octet-stream',
    ];
    for (const [index, contentType] of contentTypes.entries()) {
      const headers: Record<string, string> = {
        'x-hash': a.project.hash,
        authorization: `Bearer ${a.token}`,
      };
      if (contentType !== undefined) headers['content-type'] = contentType;
      const response = await rawRequest(`${server.url}/api/message`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ room: 'any-content-type', payload: `p${index}` }),
      });
      assert.equal(response.status, 200, `${contentType}: ${response.text}`);
      assert.equal((response.json() as Published).seq, index + 1);
    }
    assert.deepEqual(
      (await a.history('any-content-type')).map((m) => m.payload),
      ['p0', 'p1', 'p2', 'p3'],
    );
  });

  it('bodies are refused with the WebSocket error messages, in the WebSocket order, as 400 {"success":false,"error"}', async () => {
    const cases: [string, string][] = [
      ['not json', 'Invalid JSON'],
      ['', 'Invalid JSON'],
      ['{"room":"r","payload":"p"', 'Invalid JSON'],
      ['[]', 'Invalid JSON'],
      ['[{"room":"r","payload":"p"}]', 'Invalid JSON'],
      ['"a string"', 'Invalid JSON'],
      ['42', 'Invalid JSON'],
      ['null', 'Invalid JSON'],
      ['{}', 'Room required'],
      ['{"payload":"p"}', 'Room required'],
      ['{"room":null,"payload":"p"}', 'Room required'],
      ['{"room":"","payload":"p"}', 'Room required'],
      ['{"room":"","payload":""}', 'Room required'],
      ['{"room":"r"}', 'Payload required'],
      ['{"room":"r","payload":null}', 'Payload required'],
      ['{"room":"r","payload":""}', 'Payload required'],
      ['{"room":5}', 'Payload required'],
      ['{"room":5,"payload":"p"}', 'Room must be a string'],
      ['{"room":["r"],"payload":5}', 'Room must be a string'],
      ['{"room":{},"payload":"p"}', 'Room must be a string'],
      ['{"room":"r","payload":5}', 'Payload must be a string'],
      ['{"room":"r","payload":{"text":"p"}}', 'Payload must be a string'],
      [`{"room":"${'r'.repeat(257)}","payload":5}`, 'Payload must be a string'],
      [`{"room":"${'r'.repeat(257)}","payload":"p"}`, 'Room name too long'],
      [`{"room":"${'🎉'.repeat(257)}","payload":"p"}`, 'Room name too long'],
    ];
    for (const [rawBody, error] of cases) {
      const response = await server.api('POST', '/api/message', {
        hash: a.project.hash,
        token: a.token,
        rawBody,
      });
      assert.deepEqual(await errorOf(response), refused(400, error), rawBody);
    }
    const broadcastCases: [string, string][] = [
      ['not json', 'Invalid JSON'],
      ['[]', 'Invalid JSON'],
      ['{}', 'Payload required'],
      ['{"room":"r"}', 'Payload required'],
      ['{"payload":""}', 'Payload required'],
      ['{"payload":null}', 'Payload required'],
      ['{"payload":7}', 'Payload must be a string'],
    ];
    for (const [rawBody, error] of broadcastCases) {
      const response = await server.api('POST', '/api/broadcast', {
        hash: a.project.hash,
        token: a.token,
        rawBody,
      });
      assert.deepEqual(await errorOf(response), refused(400, error), `broadcast ${rawBody}`);
    }
  });

  it('a room of exactly the limit in code points is accepted (emoji count as one)', async () => {
    const room = '🎉'.repeat(256);
    const body = await a.publish(room, 'at the limit');
    assert.equal(body.seq, 1);
    assert.deepEqual(
      (await a.history(room)).map((m) => [m.room, m.payload]),
      [[room, 'at the limit']],
    );
  });

  it('a refused body is neither stored nor delivered', async () => {
    const alice = await TestClient.connect(await a.wsUrl('alice'));
    await alice.join('refused-body');
    const response = await server.api('POST', '/api/message', {
      hash: a.project.hash,
      token: a.token,
      body: { room: 'refused-body', payload: 5 },
    });
    assert.equal(response.status, 400);
    await alice.expectSilence();
    assert.deepEqual(await a.history('refused-body'), []);
    alice.close();
  });

  it('an unknown /api path answers 404 {"success":false,"error":"Not found"}', async () => {
    for (const path of ['/api/nope', '/api/messages', '/api/rooms/r', '/api/rooms/r/messages/x']) {
      const response = await server.api('GET', path, { hash: a.project.hash, token: a.token });
      assert.deepEqual(await errorOf(response), refused(404, 'Not found'), path);
    }
  });
});

describe('HTTP API: body size limit (MAX_BODY_BYTES=1024)', () => {
  let server: TestServer;
  let a: Tenant;
  const headers = (): Record<string, string> => ({
    'x-hash': a.project.hash,
    authorization: `Bearer ${a.token}`,
    'content-type': 'application/json',
  });
  /** A message body of exactly `bytes` bytes. */
  const bodyOf = (bytes: number): string => {
    const empty = JSON.stringify({ room: 'size', payload: '' });
    return JSON.stringify({ room: 'size', payload: 'x'.repeat(bytes - empty.length) });
  };

  before(async () => {
    server = await startTestServer({ MAX_BODY_BYTES: '1024' });
    a = await tenant(server, 'size');
  });
  after(() => server.close());

  it('a body of exactly MAX_BODY_BYTES is accepted', async () => {
    const body = bodyOf(1024);
    assert.equal(Buffer.byteLength(body), 1024);
    const response = await rawRequest(`${server.url}/api/message`, {
      method: 'POST',
      headers: headers(),
      body,
    });
    assert.equal(response.status, 200, response.text);
  });

  it('a body over MAX_BODY_BYTES with a Content-Length answers 413 Payload too large and is not stored', async () => {
    const before = await a.history('size');
    for (const bytes of [1025, 4096, 200_000]) {
      const response = await rawRequest(`${server.url}/api/message`, {
        method: 'POST',
        headers: headers(),
        body: bodyOf(bytes),
      });
      assert.deepEqual(
        { status: response.status, body: response.json() },
        refused(413, 'Payload too large'),
        `${bytes} bytes`,
      );
    }
    assert.deepEqual(await a.history('size'), before);
  });

  it('a chunked body over MAX_BODY_BYTES answers 413 Payload too large', async () => {
    const body = bodyOf(3000);
    const chunks = [body.slice(0, 600), body.slice(600, 1200), body.slice(1200)];
    const response = await rawRequest(`${server.url}/api/message`, {
      method: 'POST',
      headers: headers(),
      body: chunks,
    });
    assert.deepEqual(
      { status: response.status, body: response.json() },
      refused(413, 'Payload too large'),
    );
  });

  it('a chunked body within the limit is read whole, even with a UTF-8 character split across chunks', async () => {
    const bytes = Buffer.from(JSON.stringify({ room: 'chunked', payload: 'a🎉b' }));
    const split = bytes.indexOf(0xf0) + 2;
    const response = await rawRequest(`${server.url}/api/message`, {
      method: 'POST',
      headers: headers(),
      body: [bytes.subarray(0, split), bytes.subarray(split)],
    });
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(
      (await a.history('chunked')).map((m) => m.payload),
      ['a🎉b'],
    );
  });

  it('a broadcast body over MAX_BODY_BYTES answers 413 too', async () => {
    const response = await rawRequest(`${server.url}/api/broadcast`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({ payload: 'x'.repeat(2000) }),
    });
    assert.deepEqual(
      { status: response.status, body: response.json() },
      refused(413, 'Payload too large'),
    );
  });

  it('the token is checked before the body size: an oversized body with a bad token answers 401', async () => {
    const response = await rawRequest(`${server.url}/api/message`, {
      method: 'POST',
      headers: { ...headers(), authorization: 'Bearer not-a-jwt' },
      body: bodyOf(4096),
    });
    assert.deepEqual(
      { status: response.status, body: response.json() },
      refused(401, 'Invalid token'),
    );
  });
});

describe('HTTP API: rate limit (RATE_LIMIT=1, RATE_BURST=2)', () => {
  let server: TestServer;
  let a: Tenant;

  before(async () => {
    server = await startTestServer({ RATE_LIMIT: '1', RATE_BURST: '2' });
    a = await tenant(server, 'rate');
  });
  after(() => server.close());

  it('the call past the burst answers 429 Rate limit exceeded with Retry-After, and its message is neither stored nor delivered', async () => {
    const alice = await TestClient.connect(await a.wsUrl('alice'));
    await alice.join('limited');
    const token = await signToken(a.project.jwtSecret, 'rate-user');
    const send = (payload: string): Promise<Response> =>
      server.api('POST', '/api/message', {
        hash: a.project.hash,
        token,
        body: { room: 'limited', payload },
      });
    assert.equal((await send('one')).status, 200);
    assert.equal((await send('two')).status, 200);
    const third = await send('three');
    assert.deepEqual(await errorOf(third), refused(429, 'Rate limit exceeded'));
    const retryAfter = third.headers.get('retry-after') ?? '';
    assert.match(retryAfter, /^\d+$/);
    assert.ok(Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
    const delivered = await alice.collect('message', 2);
    assert.deepEqual(
      delivered.map((f) => f.payload),
      ['one', 'two'],
    );
    alice.drain();
    await alice.expectSilence();
    assert.deepEqual(
      (await a.history('limited')).map((m) => [m.seq, m.payload]),
      [
        [1, 'one'],
        [2, 'two'],
      ],
    );
    alice.close();
  });

  it('the body is checked before the rate limit: a bad body past the burst still answers 400', async () => {
    const token = await signToken(a.project.jwtSecret, 'order-user');
    const send = (body: unknown): Promise<Response> =>
      server.api('POST', '/api/broadcast', { hash: a.project.hash, token, body });
    assert.equal((await send({ payload: '1' })).status, 200);
    assert.equal((await send({ payload: '2' })).status, 200);
    assert.deepEqual(await errorOf(await send({})), refused(400, 'Payload required'));
    assert.equal((await send({ payload: '3' })).status, 429);
  });

  it('a history read past the burst answers 429 Rate limit exceeded with Retry-After, and sends of the same user share its bucket', async () => {
    const token = await signToken(a.project.jwtSecret, 'reader');
    const read = (): Promise<Response> =>
      server.api('GET', '/api/rooms/limited/messages', { hash: a.project.hash, token });
    const send = (): Promise<Response> =>
      server.api('POST', '/api/message', {
        hash: a.project.hash,
        token,
        body: { room: 'shared-bucket', payload: 'counted' },
      });
    assert.equal((await read()).status, 200);
    assert.equal((await send()).status, 200);
    const refusedRead = await read();
    assert.deepEqual(await errorOf(refusedRead), refused(429, 'Rate limit exceeded'));
    assert.match(refusedRead.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    const refusedSend = await send();
    assert.deepEqual(await errorOf(refusedSend), refused(429, 'Rate limit exceeded'));
    assert.deepEqual(
      (await a.history('shared-bucket')).map((m) => [m.from, m.payload]),
      [['reader', 'counted']],
    );
  });

  it('a history read is checked before the rate limit: past the burst, a bad limit or room still answers 400', async () => {
    const token = await signToken(a.project.jwtSecret, 'careless-reader');
    const read = (path: string): Promise<Response> =>
      server.api('GET', path, { hash: a.project.hash, token });
    assert.equal((await read('/api/rooms/r/messages')).status, 200);
    assert.equal((await read('/api/rooms/r/messages')).status, 200);
    assert.deepEqual(
      await errorOf(await read('/api/rooms/r/messages?limit=0')),
      refused(400, 'Limit must be a positive integer'),
    );
    assert.deepEqual(
      await errorOf(await read(`/api/rooms/${'x'.repeat(257)}/messages`)),
      refused(400, 'Room name too long'),
    );
    assert.equal((await read('/api/rooms/r/messages')).status, 429);
  });
});

describe('HTTP API: CORS', () => {
  let open: TestServer;
  let restricted: TestServer;
  let limited: TestServer;
  let openTenant: Tenant;
  let restrictedTenant: Tenant;
  let limitedTenant: Tenant;

  const preflight = (server: TestServer, origin: string) =>
    rawRequest(`${server.url}/api/message`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'x-hash, authorization, content-type',
      },
    });

  const post = (server: TestServer, t: Tenant, origin: string) =>
    rawRequest(`${server.url}/api/message`, {
      method: 'POST',
      headers: {
        origin,
        'x-hash': t.project.hash,
        authorization: `Bearer ${t.token}`,
        'content-type': 'text/plain',
      },
      body: JSON.stringify({ room: 'cors', payload: 'from a browser' }),
    });

  before(async () => {
    open = await startTestServer();
    restricted = await startTestServer({ CORS_ORIGINS: 'https://a.example' });
    limited = await startTestServer({
      CORS_ORIGINS: 'https://a.example',
      RATE_LIMIT: '1',
      RATE_BURST: '1',
    });
    openTenant = await tenant(open, 'cors-open');
    restrictedTenant = await tenant(restricted, 'cors-restricted');
    limitedTenant = await tenant(limited, 'cors-limited');
  });
  after(async () => {
    await open.close();
    await restricted.close();
    await limited.close();
  });

  it('a preflight for POST /api/message with x-hash and authorization answers 2xx allowing the origin and both headers', async () => {
    const response = await preflight(open, 'https://app.example');
    assert.ok(response.status >= 200 && response.status < 300, `status ${response.status}`);
    const allowOrigin = headerText(response, 'access-control-allow-origin');
    assert.ok(allowOrigin === '*' || allowOrigin === 'https://app.example', allowOrigin);
    const allowHeaders = headerText(response, 'access-control-allow-headers');
    assert.match(allowHeaders, /(^|[\s,])x-hash($|[\s,])/);
    assert.match(allowHeaders, /(^|[\s,])authorization($|[\s,])/);
    assert.match(headerText(response, 'access-control-allow-methods'), /post/);
  });

  it('a preflight for the history route is answered too', async () => {
    const response = await rawRequest(`${open.url}/api/rooms/general/messages`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'x-hash, authorization',
      },
    });
    assert.ok(response.status >= 200 && response.status < 300, `status ${response.status}`);
    assert.notEqual(headerText(response, 'access-control-allow-origin'), '');
  });

  it('with the default CORS_ORIGINS an answer to a cross-origin call carries an allow-origin header', async () => {
    const response = await post(open, openTenant, 'https://app.example');
    assert.equal(response.status, 200);
    const allowOrigin = headerText(response, 'access-control-allow-origin');
    assert.ok(allowOrigin === '*' || allowOrigin === 'https://app.example', allowOrigin);
  });

  it('with CORS_ORIGINS=https://a.example that origin is echoed, on the preflight and on the call', async () => {
    const pre = await preflight(restricted, 'https://a.example');
    assert.ok(pre.status >= 200 && pre.status < 300, `status ${pre.status}`);
    assert.equal(headerText(pre, 'access-control-allow-origin'), 'https://a.example');
    assert.match(headerText(pre, 'access-control-allow-headers'), /x-hash/);
    const call = await post(restricted, restrictedTenant, 'https://a.example');
    assert.equal(call.status, 200);
    assert.equal(headerText(call, 'access-control-allow-origin'), 'https://a.example');
  });

  it('with CORS_ORIGINS=https://a.example another origin gets no allow-origin header', async () => {
    for (const origin of ['https://b.example', 'https://a.example.evil', 'http://a.example']) {
      const pre = await preflight(restricted, origin);
      assert.equal(pre.headers['access-control-allow-origin'], undefined, origin);
      const call = await post(restricted, restrictedTenant, origin);
      assert.equal(call.headers['access-control-allow-origin'], undefined, origin);
    }
  });

  it('a preflight allows exactly the headers x-hash, authorization, content-type and idempotency-key', async () => {
    for (const server of [open, restricted]) {
      const response = await preflight(server, 'https://a.example');
      const allowed = headerText(response, 'access-control-allow-headers')
        .split(',')
        .map((name) => name.trim())
        .sort();
      assert.deepEqual(allowed, ['authorization', 'content-type', 'idempotency-key', 'x-hash']);
    }
  });

  it('every /api answer to an allowed origin exposes Retry-After: a 200, the 429 past the burst, a 404', async () => {
    const ok = await post(limited, limitedTenant, 'https://a.example');
    assert.equal(ok.status, 200);
    assert.equal(headerText(ok, 'access-control-expose-headers'), 'retry-after');
    const limitedCall = await post(limited, limitedTenant, 'https://a.example');
    assert.deepEqual(
      [limitedCall.status, limitedCall.json()],
      [429, { success: false, error: 'Rate limit exceeded' }],
    );
    assert.match(headerText(limitedCall, 'retry-after'), /^[1-9]\d*$/);
    assert.equal(headerText(limitedCall, 'access-control-allow-origin'), 'https://a.example');
    assert.equal(headerText(limitedCall, 'access-control-expose-headers'), 'retry-after');
    const missing = await rawRequest(`${limited.url}/api/nowhere`, {
      headers: { origin: 'https://a.example' },
    });
    assert.equal(missing.status, 404);
    assert.equal(headerText(missing, 'access-control-expose-headers'), 'retry-after');
    const open200 = await post(open, openTenant, 'https://app.example');
    assert.equal(headerText(open200, 'access-control-expose-headers'), 'retry-after');
    const stranger = await post(limited, limitedTenant, 'https://b.example');
    assert.equal(stranger.headers['access-control-expose-headers'], undefined);
  });
});

describe('HTTP API: GET /api/rooms/:room/messages', () => {
  let server: TestServer;
  let a: Tenant;
  let b: Tenant;
  let sixty: (Published & { payload: string })[];

  before(async () => {
    server = await startTestServer();
    a = await tenant(server, 'history-a');
    b = await tenant(server, 'history-b');
    sixty = await publishMany(a, 'sixty', 60);
  });
  after(() => server.close());

  const seqs = (messages: StoredMessage[]): number[] => messages.map((m) => m.seq);
  const range = (from: number, to: number): number[] =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const idOf = (seq: number): string => sixty[seq - 1]?.id ?? 'missing';

  it('a room with no messages answers 200 {"messages":[]}', async () => {
    const response = await server.api('GET', '/api/rooms/never-used/messages', {
      hash: a.project.hash,
      token: a.token,
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { messages: [] });
  });

  it('each message has exactly id, seq, room, payload, from, ts, as published', async () => {
    const published = await a.publish('shape', 'payload "quoted" \u0000 ☃', 'dora');
    const [message, ...rest] = await a.history('shape');
    assert.deepEqual(rest, []);
    assert.deepEqual(Object.keys(message ?? {}).sort(), [
      'from',
      'id',
      'payload',
      'room',
      'seq',
      'ts',
    ]);
    assert.equal(message?.id, published.id);
    assert.equal(message?.seq, published.seq);
    assert.equal(message?.room, 'shape');
    assert.equal(message?.payload, 'payload "quoted" \u0000 ☃');
    assert.equal(message?.from, 'dora');
    assert.equal(typeof message?.ts, 'number');
    assert.ok(Math.abs((message?.ts ?? 0) - Date.now()) < 60_000, `ts ${message?.ts}`);
  });

  it('without limit or cursor it returns the newest 50, oldest first (seq 11..60)', async () => {
    const messages = await a.history('sixty');
    assert.deepEqual(seqs(messages), range(11, 60));
    assert.deepEqual(
      messages.map((m) => [m.id, m.payload]),
      sixty.slice(10).map((p) => [p.id, p.payload]),
    );
  });

  it('limit=N returns the newest N, oldest first', async () => {
    assert.deepEqual(seqs(await a.history('sixty', '?limit=5')), range(56, 60));
    assert.deepEqual(seqs(await a.history('sixty', '?limit=1')), [60]);
    assert.deepEqual(seqs(await a.history('sixty', '?limit=100')), range(1, 60));
  });

  it('after=ID returns the oldest `limit` messages after it', async () => {
    assert.deepEqual(seqs(await a.history('sixty', `?after=${idOf(10)}&limit=5`)), range(11, 15));
    assert.deepEqual(seqs(await a.history('sixty', `?after=${idOf(1)}`)), range(2, 51));
    assert.deepEqual(seqs(await a.history('sixty', `?after=${idOf(58)}`)), [59, 60]);
    assert.deepEqual(seqs(await a.history('sixty', `?after=${idOf(60)}`)), []);
  });

  it('before=ID returns the newest `limit` messages before it', async () => {
    assert.deepEqual(seqs(await a.history('sixty', `?before=${idOf(10)}&limit=5`)), range(5, 9));
    assert.deepEqual(seqs(await a.history('sixty', `?before=${idOf(60)}`)), range(10, 59));
    assert.deepEqual(seqs(await a.history('sixty', `?before=${idOf(3)}`)), [1, 2]);
    assert.deepEqual(seqs(await a.history('sixty', `?before=${idOf(1)}`)), []);
  });

  it('after and before together return the oldest `limit` messages between them', async () => {
    const between = `?after=${idOf(10)}&before=${idOf(20)}`;
    assert.deepEqual(seqs(await a.history('sixty', `${between}&limit=3`)), [11, 12, 13]);
    assert.deepEqual(seqs(await a.history('sixty', between)), range(11, 19));
    assert.deepEqual(seqs(await a.history('sixty', `?after=${idOf(5)}&before=${idOf(6)}`)), []);
  });

  it('an unknown message id answers 400 Unknown message id (also an id of another room or project)', async () => {
    const otherRoom = await a.publish('elsewhere', 'x');
    const otherProject = await b.publish('sixty', 'x');
    for (const id of ['nope', otherRoom.id, otherProject.id]) {
      for (const cursor of ['after', 'before']) {
        const response = await server.api('GET', `/api/rooms/sixty/messages?${cursor}=${id}`, {
          hash: a.project.hash,
          token: a.token,
        });
        assert.deepEqual(
          await errorOf(response),
          refused(400, 'Unknown message id'),
          `${cursor}=${id}`,
        );
      }
    }
  });

  it('an invalid limit answers 400', async () => {
    for (const limit of ['0', '-1', 'abc', '1.5', '', '1e3', ' 5']) {
      const response = await server.api(
        'GET',
        `/api/rooms/sixty/messages?limit=${encodeURIComponent(limit)}`,
        { hash: a.project.hash, token: a.token },
      );
      assert.deepEqual(
        await errorOf(response),
        refused(400, 'Limit must be a positive integer'),
        `limit=${JSON.stringify(limit)}`,
      );
    }
  });

  it('limit is capped at 1000: limit=5000 is accepted and returns the newest 1000 of 1001', async () => {
    await publishMany(a, 'big', 1001);
    const messages = await a.history('big', '?limit=5000');
    assert.equal(messages.length, 1000);
    assert.deepEqual(seqs(messages), range(2, 1001));
    assert.deepEqual(seqs(await a.history('big', '?limit=1000')), range(2, 1001));
  });

  it('a room name that needs URL encoding (space, slash, plus, percent, emoji) round-trips', async () => {
    const room = 'lobby #1/α+β 100%? 🎉';
    const alice = await TestClient.connect(await a.wsUrl('alice'));
    await alice.join(room);
    const published = await a.publish(room, 'encoded');
    const [frame] = await alice.collect('message', 1);
    assert.equal(frame?.room, room);
    const messages = await a.history(room);
    assert.deepEqual(
      messages.map((m) => [m.id, m.room, m.payload]),
      [[published.id, room, 'encoded']],
    );
    assert.deepEqual(await a.history('lobby #1'), []);
    alice.close();
  });

  it("another project's history is never visible, even with an equal room name", async () => {
    await a.publish('same-name', 'from a');
    await b.publish('same-name', 'from b');
    assert.deepEqual(
      (await a.history('same-name')).map((m) => [m.seq, m.payload]),
      [[1, 'from a']],
    );
    assert.deepEqual(
      (await b.history('same-name')).map((m) => [m.seq, m.payload]),
      [[1, 'from b']],
    );
    // A's token with B's hash is not a way in.
    const crossed = await server.api('GET', '/api/rooms/same-name/messages', {
      hash: b.project.hash,
      token: a.token,
    });
    assert.deepEqual(await errorOf(crossed), refused(401, 'Invalid token'));
  });

  it('a malformed % escape in the room answers 400 Invalid path, not 404 or 500', async () => {
    for (const path of [
      '/api/rooms/%E0%A4%A/messages',
      '/api/rooms/%zz/messages',
      '/api/rooms/%E0/messages',
      '/api/rooms/room%/messages',
    ]) {
      const response = await rawRequest(`${server.url}${path}`, {
        headers: { 'x-hash': a.project.hash, authorization: `Bearer ${a.token}` },
      });
      assert.equal(response.status, 400, path);
      assert.equal(response.text, '{"success":false,"error":"Invalid path"}', path);
    }
  });

  it('history requires x-hash and a valid token like the other calls', async () => {
    const path = '/api/rooms/sixty/messages';
    assert.deepEqual(
      await errorOf(await server.api('GET', path, { token: a.token })),
      refused(400, 'Project hash required'),
    );
    assert.deepEqual(
      await errorOf(await server.api('GET', path, { hash: 'no-such-project', token: a.token })),
      refused(404, 'Unknown project'),
    );
    assert.deepEqual(
      await errorOf(await server.api('GET', path, { hash: a.project.hash })),
      refused(401, 'Invalid token'),
    );
    assert.deepEqual(
      await errorOf(await server.api('GET', path, { hash: a.project.hash, token: 'garbage' })),
      refused(401, 'Invalid token'),
    );
    const expired = await signToken(a.project.jwtSecret, 'bob', { expiresIn: '-1 hour' });
    assert.deepEqual(
      await errorOf(await server.api('GET', path, { hash: a.project.hash, token: expired })),
      refused(401, 'Token expired'),
    );
  });
});
