import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { rawRequest } from '../helpers/http.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { connectAs, expectAlive, UUID_V4, wsUrl } from '../helpers/ws.js';

const DELIVERY_KEYS = ['type', 'room', 'payload', 'from', 'id', 'seq', 'ts'];
const BROADCAST_KEYS = ['type', 'payload', 'from', 'ts'];

let server: TestServer;
let project: TestProject;
const connect = (sub: string): Promise<TestClient> => connectAs(server, project, sub);

before(async () => {
  server = await startTestServer();
  project = await server.createProject('ws-protocol');
});
after(() => server.close());

describe('the upgrade', () => {
  it('a malformed upgrade (no Sec-WebSocket-Key) is answered 400 at once, and others still connect', async () => {
    const token = await signToken(project.jwtSecret, 'alice');
    const answer = rawRequest(`${server.url}/ws/${project.hash}?jwt=${token}`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' },
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer to the malformed upgrade')), 5000);
    });
    try {
      assert.equal((await Promise.race([answer, late])).status, 400);
    } finally {
      clearTimeout(timer);
    }
    const client = await connect('bob');
    await expectAlive(client);
    client.close();
  });
});

describe('the connected frame', () => {
  it('is the first frame, with exactly type, connectionId (a UUID v4) and user = the JWT sub', async () => {
    const client = new TestClient(
      wsUrl(server, project.hash, await signToken(project.jwtSecret, 'alice')),
    );
    const frame = await client.next();
    assert.deepEqual(Object.keys(frame), ['type', 'connectionId', 'user']);
    assert.equal(frame.type, 'connected');
    assert.match(String(frame.connectionId), UUID_V4);
    assert.equal(frame.user, 'alice');
    client.close();
  });

  it('carries a connectionId unique per connection, even for the same user', async () => {
    const clients = await Promise.all([connect('alice'), connect('alice'), connect('alice')]);
    const ids = clients.map((client) => client.frames[0]?.connectionId);
    assert.equal(new Set(ids).size, 3);
    for (const client of clients) client.close();
  });
});

describe('join and leave', () => {
  it('join answers {type:"joined",room} and leave answers {type:"left",room}', async () => {
    const client = await connect('alice');
    assert.deepEqual(await client.request({ type: 'join', room: 'lobby' }), {
      type: 'joined',
      room: 'lobby',
      seq: 0,
    });
    assert.deepEqual(await client.request({ type: 'leave', room: 'lobby' }), {
      type: 'left',
      room: 'lobby',
    });
    client.close();
  });

  it('joining twice answers joined twice and gives one delivery per message', async () => {
    const alice = await connect('alice');
    assert.deepEqual(await alice.request({ type: 'join', room: 'twice' }), {
      type: 'joined',
      room: 'twice',
      seq: 0,
    });
    assert.deepEqual(await alice.request({ type: 'join', room: 'twice' }), {
      type: 'joined',
      room: 'twice',
      seq: 0,
    });
    alice.send({ type: 'message', room: 'twice', payload: 'once' });
    await alice.collect('message', 1);
    assert.equal(alice.drain('message').length, 1);
    await alice.expectSilence();
    alice.close();
  });

  it('leaving a room never joined answers left', async () => {
    const client = await connect('alice');
    assert.deepEqual(await client.request({ type: 'leave', room: 'never-joined' }), {
      type: 'left',
      room: 'never-joined',
    });
    client.close();
  });

  it('after leaving a room the connection may no longer send to it', async () => {
    const client = await connect('alice');
    await client.join('gone');
    await client.request({ type: 'leave', room: 'gone' }, 'left');
    assert.deepEqual(await client.request({ type: 'message', room: 'gone', payload: 'x' }), {
      type: 'error',
      message: 'You must join the room first',
    });
    client.close();
  });

  it('does not echo unknown extra fields', async () => {
    const client = await connect('alice');
    assert.deepEqual(await client.request({ type: 'join', room: 'extra', colour: 'blue' }), {
      type: 'joined',
      room: 'extra',
      seq: 0,
    });
    client.close();
  });
});

describe('ping', () => {
  it('{"type":"ping"} answers exactly {"type":"pong"}', async () => {
    const client = await connect('alice');
    assert.deepEqual(await client.request({ type: 'ping' }), { type: 'pong' });
    client.close();
  });

  it('ignores unknown extra fields on a ping', async () => {
    const client = await connect('alice');
    assert.deepEqual(await client.request({ type: 'ping', room: 5, payload: {} }), {
      type: 'pong',
    });
    client.close();
  });
});

/** Frames that get an error, the exact message, and why (the contract's check number). */
const ERROR_CASES: [string, string, string][] = [
  // 1. not JSON, or JSON that is not an object
  ['not json', 'Invalid JSON', 'text that is not JSON'],
  ['', 'Invalid JSON', 'an empty text frame'],
  ['{"type":"ping"', 'Invalid JSON', 'truncated JSON'],
  ['{"type":"ping"} {}', 'Invalid JSON', 'two JSON values'],
  ["{'type':'ping'}", 'Invalid JSON', 'single-quoted pseudo JSON'],
  ['[1]', 'Invalid JSON', 'an array'],
  ['[{"type":"ping"}]', 'Invalid JSON', 'an array holding a valid frame'],
  ['42', 'Invalid JSON', 'a number'],
  ['"str"', 'Invalid JSON', 'a string'],
  ['null', 'Invalid JSON', 'null'],
  ['true', 'Invalid JSON', 'a boolean'],
  // 2. type missing, not a string, or unknown
  ['{}', 'Unknown message type', 'an empty object'],
  ['{"room":"x"}', 'Unknown message type', 'no type'],
  ['{"type":"nope"}', 'Unknown message type', 'an unknown type'],
  ['{"type":"JOIN","room":"x"}', 'Unknown message type', 'a type in the wrong case'],
  ['{"type":"joined","room":"x"}', 'Unknown message type', 'a server frame type'],
  ['{"type":"pong"}', 'Unknown message type', 'a pong'],
  ['{"type":5}', 'Unknown message type', 'a numeric type'],
  ['{"type":null}', 'Unknown message type', 'a null type'],
  ['{"type":["join"],"room":"x"}', 'Unknown message type', 'an array type'],
  [
    '{"type":"nope","room":5}',
    'Unknown message type',
    'an unknown type with a bad room (2 before 5)',
  ],
  // 3. room missing, null or "" (join, leave, message)
  ['{"type":"join"}', 'Room required', 'join without room'],
  ['{"type":"join","room":""}', 'Room required', 'join with an empty room'],
  ['{"type":"join","room":null}', 'Room required', 'join with a null room'],
  ['{"type":"leave"}', 'Room required', 'leave without room'],
  ['{"type":"leave","room":""}', 'Room required', 'leave with an empty room'],
  ['{"type":"message","payload":"x"}', 'Room required', 'message without room'],
  ['{"type":"message"}', 'Room required', 'message without room nor payload (3 before 4)'],
  ['{"type":"message","room":null,"payload":5}', 'Room required', 'null room, bad payload'],
  // 4. payload missing, null or "" (message, broadcast)
  ['{"type":"message","room":5}', 'Payload required', 'numeric room, no payload (4 before 5)'],
  ['{"type":"message","room":"r"}', 'Payload required', 'message without payload'],
  ['{"type":"message","room":"r","payload":""}', 'Payload required', 'an empty payload'],
  ['{"type":"message","room":"r","payload":null}', 'Payload required', 'a null payload'],
  ['{"type":"broadcast"}', 'Payload required', 'broadcast without payload'],
  ['{"type":"broadcast","payload":""}', 'Payload required', 'broadcast with an empty payload'],
  ['{"type":"broadcast","payload":null}', 'Payload required', 'broadcast with a null payload'],
  // 5. room / payload not a string
  ['{"type":"join","room":5}', 'Room must be a string', 'a numeric room'],
  ['{"type":"join","room":0}', 'Room must be a string', 'room 0 (not "absent")'],
  ['{"type":"join","room":false}', 'Room must be a string', 'room false (not "absent")'],
  ['{"type":"join","room":{}}', 'Room must be a string', 'an object room'],
  ['{"type":"join","room":["a"]}', 'Room must be a string', 'an array room'],
  ['{"type":"leave","room":5}', 'Room must be a string', 'leave with a numeric room'],
  ['{"type":"message","room":5,"payload":"x"}', 'Room must be a string', 'message, numeric room'],
  [
    '{"type":"message","room":5,"payload":5}',
    'Room must be a string',
    'room checked before payload',
  ],
  ['{"type":"message","room":"r","payload":{}}', 'Payload must be a string', 'an object payload'],
  ['{"type":"message","room":"r","payload":42}', 'Payload must be a string', 'a number payload'],
  ['{"type":"message","room":"r","payload":["x"]}', 'Payload must be a string', 'array payload'],
  ['{"type":"broadcast","payload":{"a":1}}', 'Payload must be a string', 'broadcast, object'],
  ['{"type":"broadcast","payload":0}', 'Payload must be a string', 'broadcast, payload 0'],
  // 6. room longer than the limit (256 code points by default)
  [
    JSON.stringify({ type: 'join', room: 'a'.repeat(257) }),
    'Room name too long',
    'join, 257 ASCII characters',
  ],
  [
    JSON.stringify({ type: 'join', room: '😀'.repeat(257) }),
    'Room name too long',
    'join, 257 emoji',
  ],
  [
    JSON.stringify({ type: 'leave', room: 'a'.repeat(257) }),
    'Room name too long',
    'leave, 257 characters',
  ],
  [
    JSON.stringify({ type: 'message', room: 'a'.repeat(257), payload: 'x' }),
    'Room name too long',
    'message to a too long room not joined (6 before 8)',
  ],
  // 8. message to a room not joined
  [
    '{"type":"message","room":"not-joined","payload":"x"}',
    'You must join the room first',
    'a message to a room not joined',
  ],
];

describe('error frames, each followed by a connection that keeps working', () => {
  let client: TestClient;
  before(async () => {
    client = await connect('alice');
  });
  after(() => client.close());

  const shown = (text: string): string =>
    text === '' ? '(empty)' : text.length > 60 ? `${text.slice(0, 57)}...` : text;
  for (const [text, message, why] of ERROR_CASES) {
    it(`${why}: ${shown(text)} → ${message}`, async () => {
      assert.deepEqual(await client.request(text), { type: 'error', message });
      await expectAlive(client);
    });
  }

  it('after every error above the connection is still open and delivers messages', async () => {
    await client.join('still-working');
    client.send({ type: 'message', room: 'still-working', payload: 'alive' });
    const [frame] = await client.collect('message', 1);
    assert.equal(frame?.payload, 'alive');
    client.drain();
    assert.equal(client.closeCode, undefined);
  });
});

describe('room name length, in code points', () => {
  const cases: [string, string][] = [
    ['256 ASCII characters', 'a'.repeat(256)],
    ['256 emoji (each one code point, two UTF-16 units)', '😀'.repeat(256)],
    [
      '255 ASCII characters and one emoji (256 code points, 257 UTF-16 units)',
      `${'a'.repeat(255)}😀`,
    ],
  ];
  for (const [what, room] of cases) {
    it(`a room of ${what} is accepted for join, message and leave`, async () => {
      const client = await connect('alice');
      assert.deepEqual(await client.request({ type: 'join', room }), {
        type: 'joined',
        room,
        seq: 0,
      });
      client.send({ type: 'message', room, payload: 'long room' });
      const [frame] = await client.collect('message', 1);
      assert.equal(frame?.room, room);
      client.drain();
      assert.deepEqual(await client.request({ type: 'leave', room }), { type: 'left', room });
      client.close();
    });
  }
});

describe('malformed and unusual frames', () => {
  it('a binary frame holding valid JSON text is handled like a text frame', async () => {
    const client = await connect('alice');
    client.socket.send(Buffer.from('{"type":"ping"}'), { binary: true });
    assert.deepEqual(await client.next(), { type: 'pong' });
    client.socket.send(Buffer.from(JSON.stringify({ type: 'join', room: 'bin-😀' })), {
      binary: true,
    });
    assert.deepEqual(await client.next(), { type: 'joined', room: 'bin-😀', seq: 0 });
    client.socket.send(Buffer.from('{"type":"nope"}'), { binary: true });
    assert.deepEqual(await client.next(), { type: 'error', message: 'Unknown message type' });
    client.close();
  });

  it('a binary frame that is not valid UTF-8 gets Invalid JSON and the connection keeps working', async () => {
    const client = await connect('alice');
    client.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: true });
    assert.deepEqual(await client.next(), { type: 'error', message: 'Invalid JSON' });
    client.socket.send(Buffer.from([0xc3, 0x28]), { binary: true });
    assert.deepEqual(await client.next(), { type: 'error', message: 'Invalid JSON' });
    // Valid JSON but for one stray byte inside a string: decoding it lossily would answer pong.
    const stray = Buffer.concat([
      Buffer.from('{"type":"ping","note":"'),
      Buffer.from([0xff]),
      Buffer.from('"}'),
    ]);
    client.socket.send(stray, { binary: true });
    assert.deepEqual(await client.next(), { type: 'error', message: 'Invalid JSON' });
    await expectAlive(client);
    client.close();
  });

  it('a text frame that is not valid UTF-8 closes the connection with 1007', async () => {
    const client = await connect('alice');
    client.socket.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false });
    const { code } = await client.waitClosed();
    assert.equal(code, 1007);
  });

  it('JSON unicode escapes are decoded before the type is read', async () => {
    const client = await connect('alice');
    assert.deepEqual(await client.request('{"type":"\\u0070ing"}'), { type: 'pong' });
    assert.deepEqual(await client.request('{"type":"join","room":"\\ud83d\\ude00"}'), {
      type: 'joined',
      room: '😀',
      seq: 0,
    });
    client.close();
  });

  it('whitespace around a JSON object is allowed', async () => {
    const client = await connect('alice');
    assert.deepEqual(await client.request(' \n\t{"type":"ping"}\r\n '), { type: 'pong' });
    client.close();
  });

  it('room names with NUL, RTL text and combining marks are joined and echoed exactly', async () => {
    const client = await connect('alice');
    for (const room of ['a\u0000b', 'שלום-עולם', 'e\u0301te\u0301', ' spaced ', '🇫🇷 ⚽']) {
      assert.deepEqual(await client.request({ type: 'join', room }), {
        type: 'joined',
        room,
        seq: 0,
      });
      client.send({ type: 'message', room, payload: 'p' });
      const [frame] = await client.collect('message', 1);
      assert.equal(frame?.room, room);
      client.drain();
    }
    client.close();
  });

  it('a composed and a decomposed room name are two different rooms', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await alice.join('caf\u00e9');
    await bob.join('cafe\u0301');
    alice.send({ type: 'message', room: 'caf\u00e9', payload: 'composed' });
    await alice.collect('message', 1);
    await bob.expectSilence();
    alice.close();
    bob.close();
  });
});

describe('room deliveries', () => {
  it('reach every member, the sender included, with exactly type, room, payload, from, id, seq, ts', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await alice.join('exact');
    await bob.join('exact');
    const before = Date.now();
    alice.send({ type: 'message', room: 'exact', payload: 'hi', extra: 'ignored' });
    const [atAlice] = await alice.collect('message', 1);
    const [atBob] = await bob.collect('message', 1);
    assert.deepEqual(Object.keys(atAlice ?? {}), DELIVERY_KEYS);
    assert.deepEqual(atBob, atAlice);
    assert.equal(atAlice?.room, 'exact');
    assert.equal(atAlice?.payload, 'hi');
    assert.equal(atAlice?.from, 'alice');
    assert.equal(typeof atAlice?.id, 'string');
    assert.notEqual(atAlice?.id, '');
    assert.equal(atAlice?.seq, 1);
    assert.equal(typeof atAlice?.ts, 'number');
    const ts = Number(atAlice?.ts);
    assert.ok(Number.isInteger(ts) && ts >= before - 1000 && ts <= Date.now() + 1000, `ts ${ts}`);
    alice.close();
    bob.close();
  });

  it('never reach a connection that is not a member of the room', async () => {
    const alice = await connect('alice');
    const carol = await connect('carol');
    await alice.join('members-only');
    await carol.join('elsewhere');
    alice.send({ type: 'message', room: 'members-only', payload: 'secret' });
    await alice.collect('message', 1);
    await carol.expectSilence();
    alice.close();
    carol.close();
  });

  it('stop after leave: nothing more arrives from that room', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await alice.join('leaving');
    await bob.join('leaving');
    alice.send({ type: 'message', room: 'leaving', payload: 'before' });
    await bob.collect('message', 1);
    bob.drain();
    await bob.request({ type: 'leave', room: 'leaving' }, 'left');
    alice.send({ type: 'message', room: 'leaving', payload: 'after 1' });
    alice.send({ type: 'message', room: 'leaving', payload: 'after 2' });
    await alice.collect('message', 3);
    await bob.expectSilence();
    alice.close();
    bob.close();
  });

  it('number seq 1, 2, 3 per room, each room counting on its own, with distinct ids', async () => {
    const alice = await connect('alice');
    await alice.join('seq-a');
    await alice.join('seq-b');
    const sent: [string, string][] = [
      ['seq-a', 'a1'],
      ['seq-b', 'b1'],
      ['seq-a', 'a2'],
      ['seq-a', 'a3'],
      ['seq-b', 'b2'],
    ];
    for (const [room, payload] of sent) alice.send({ type: 'message', room, payload });
    const frames = await alice.collect('message', sent.length);
    const inRoom = (room: string): [unknown, unknown][] =>
      frames.filter((frame) => frame.room === room).map((frame) => [frame.seq, frame.payload]);
    assert.deepEqual(inRoom('seq-a'), [
      [1, 'a1'],
      [2, 'a2'],
      [3, 'a3'],
    ]);
    assert.deepEqual(inRoom('seq-b'), [
      [1, 'b1'],
      [2, 'b2'],
    ]);
    assert.equal(new Set(frames.map((frame) => frame.id)).size, sent.length);
    alice.drain();
    await alice.expectSilence();
    alice.close();
  });
});

describe('payloads round-trip exactly, live and in history', () => {
  const payloads: [string, string][] = [
    ['NUL characters', 'a\u0000b\u0000'],
    ['emoji, flags and ZWJ sequences', '😀 🇯🇵 👩‍👩‍👧‍👦'],
    ['right-to-left text', 'مرحبا بالعالم שלום'],
    ['combining marks', 'Z\u0351\u036b\u0343a\u0310\u0306l\u0364g\u0313o'],
    ['control characters, quotes and backslashes', '\t\r\n\u0001\u001f "q" \\ \u2028\u2029'],
    ['text that looks like a frame', '{"type":"join","room":"x"}'],
    ['a 60 KB payload', 'x'.repeat(60 * 1024 - 1).concat('é')],
  ];
  for (const [what, payload] of payloads) {
    it(`${what}`, async () => {
      const room = `payload-${what}`;
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.join(room);
      await bob.join(room);
      alice.send({ type: 'message', room, payload });
      const [atBob] = await bob.collect('message', 1);
      const [atAlice] = await alice.collect('message', 1);
      assert.equal(atBob?.payload, payload);
      assert.equal(atAlice?.payload, payload);
      const response = await server.api('GET', `/api/rooms/${encodeURIComponent(room)}/messages`, {
        hash: project.hash,
        token: await signToken(project.jwtSecret, 'alice'),
      });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { messages: { payload: string }[] };
      assert.deepEqual(
        body.messages.map((message) => message.payload),
        [payload],
      );
      alice.close();
      bob.close();
    });
  }
});

describe('broadcasts', () => {
  it('reach connections in no room and the sender, with exactly type, payload, from, ts', async () => {
    const alice = await connect('alice');
    const idle = await connect('idle');
    await alice.join('busy');
    alice.send({ type: 'broadcast', payload: 'Alert' });
    for (const client of [alice, idle]) {
      const [frame] = await client.collect('broadcast', 1);
      assert.deepEqual(Object.keys(frame ?? {}), BROADCAST_KEYS);
      assert.equal(frame?.payload, 'Alert');
      assert.equal(frame?.from, 'alice');
      assert.equal(typeof frame?.ts, 'number');
      client.close();
    }
  });

  it('ignore a room field, whatever its value, and reach everyone', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    await bob.join('not-this-one');
    for (const room of ['lobby', 123, null, '', 'a'.repeat(300)]) {
      alice.send({ type: 'broadcast', room, payload: `room ${JSON.stringify(room)}` });
      for (const client of [alice, bob]) {
        const [frame] = await client.collect('broadcast', 1);
        assert.deepEqual(frame, {
          type: 'broadcast',
          payload: `room ${JSON.stringify(room)}`,
          from: 'alice',
          ts: frame?.ts,
        });
        assert.deepEqual(client.drain(), [frame]);
      }
    }
    alice.close();
    bob.close();
  });
});

describe('project isolation', () => {
  it('two projects with equal room names never see each other’s messages or broadcasts', async () => {
    const other = await server.createProject('ws-protocol-other');
    const mine = await connect('alice');
    const theirs = await connectAs(server, other, 'alice');
    await mine.join('shared-name');
    await theirs.join('shared-name');

    mine.send({ type: 'message', room: 'shared-name', payload: 'mine' });
    mine.send({ type: 'broadcast', payload: 'mine to all' });
    await mine.collect('message', 1);
    await mine.collect('broadcast', 1);
    mine.drain();
    await theirs.expectSilence();

    theirs.send({ type: 'message', room: 'shared-name', payload: 'theirs' });
    theirs.send({ type: 'broadcast', payload: 'theirs to all' });
    const [message] = await theirs.collect('message', 1);
    await theirs.collect('broadcast', 1);
    assert.equal(message?.seq, 1, 'each project counts seq on its own');
    theirs.drain();
    await mine.expectSilence();
    mine.close();
    theirs.close();
  });
});
