/**
 * The admin's reads, over HTTP on a real server: a room's history (as the public API answers it),
 * the rooms list (stored rooms and rooms with users present, from real WebSocket clients) and the
 * figures of a project and of the deployment.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { TestClient } from '../helpers/client.js';
import { eventually } from '../helpers/eventually.js';
import type { StoredMessage } from '../helpers/ops.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { connectAs } from '../helpers/ws.js';

interface RoomEntry {
  room: string;
  lastSeq: number;
  lastTs: number | null;
  present: number;
}

interface Stats {
  connections: number;
  users: number;
  rooms: number;
  messagesPerSecond: number;
  storedMessages: number;
}

interface Totals extends Stats {
  projects: number;
  instances: number;
}

const STATS_KEYS = ['connections', 'users', 'rooms', 'messagesPerSecond', 'storedMessages'];

function refused(status: number, error: string): { status: number; body: unknown } {
  return { status, body: { success: false, error } };
}

async function answer(response: Response): Promise<{ status: number; body: unknown }> {
  return { status: response.status, body: await response.json() };
}

describe('admin reads: rooms, history and figures', () => {
  let server: TestServer;
  const clients: TestClient[] = [];

  before(async () => {
    server = await startTestServer({ MAX_ROOM_LENGTH: '16' });
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });
  after(() => server.close());

  async function connect(project: TestProject, sub: string, rooms: string[]): Promise<TestClient> {
    const client = await connectAs(server, project, sub);
    clients.push(client);
    for (const room of rooms) await client.join(room);
    return client;
  }

  async function publish(project: TestProject, room: string, payload: string): Promise<void> {
    const response = await server.api('POST', '/api/message', {
      hash: project.hash,
      token: await signToken(project.jwtSecret, 'poster'),
      body: { room, payload },
    });
    assert.equal(response.status, 200, await response.text());
  }

  /** The public history of a room, status and text as sent. */
  async function publicHistory(project: TestProject, room: string, query = '') {
    const response = await server.api(
      'GET',
      `/api/rooms/${encodeURIComponent(room)}/messages${query}`,
      {
        hash: project.hash,
        token: await signToken(project.jwtSecret, 'reader'),
      },
    );
    return { status: response.status, text: await response.text() };
  }

  async function adminHistory(project: TestProject, room: string, query = '') {
    const response = await server.admin(
      'GET',
      `/admin/projects/${project.hash}/rooms/${encodeURIComponent(room)}/messages${query}`,
    );
    return { status: response.status, text: await response.text() };
  }

  async function lastOf(project: TestProject, room: string): Promise<StoredMessage> {
    const { text } = await publicHistory(project, room, '?limit=1');
    const [last] = (JSON.parse(text) as { messages: StoredMessage[] }).messages;
    assert.ok(last, `room ${room} has a message`);
    return last;
  }

  async function rooms(project: TestProject, query = ''): Promise<RoomEntry[]> {
    const response = await server.admin('GET', `/admin/projects/${project.hash}/rooms${query}`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { rooms: RoomEntry[] };
    assert.deepEqual(Object.keys(body), ['rooms']);
    return body.rooms;
  }

  async function stats(project: TestProject): Promise<Stats> {
    const response = await server.admin('GET', `/admin/projects/${project.hash}/stats`);
    assert.equal(response.status, 200);
    return (await response.json()) as Stats;
  }

  describe('GET /admin/projects/:hash/rooms/:room/messages', () => {
    it('answers exactly what the public history API answers, for every kind of query', async () => {
      const project = await server.createProject('admin-history');
      for (let n = 1; n <= 12; n++) await publish(project, 'chat', `m${n}`);
      await publish(project, 'ü 😀', 'unicode');
      const ids = (
        JSON.parse((await publicHistory(project, 'chat')).text) as {
          messages: StoredMessage[];
        }
      ).messages.map((m) => m.id);
      const queries = [
        '',
        '?limit=5',
        '?limit=1000',
        '?limit=5000',
        `?after=${ids[2]}&limit=3`,
        `?before=${ids[9]}`,
        `?after=${ids[1]}&before=${ids[6]}&limit=2`,
        '?since=4&limit=2',
        '?since=0',
      ];
      for (const query of queries) {
        const expected = await publicHistory(project, 'chat', query);
        assert.equal(expected.status, 200, query);
        assert.deepEqual(await adminHistory(project, 'chat', query), expected, query);
      }
      assert.deepEqual(await adminHistory(project, 'ü 😀'), await publicHistory(project, 'ü 😀'));
      assert.deepEqual(await adminHistory(project, 'never-used'), {
        status: 200,
        text: '{"messages":[]}',
      });
    });

    it('refuses a bad query with the public API’s status and error', async () => {
      const project = await server.createProject('admin-history-errors');
      await publish(project, 'chat', 'one');
      const cases: [string, string, string][] = [
        ['chat', '?limit=0', 'Limit must be a positive integer'],
        ['chat', '?limit=abc', 'Limit must be a positive integer'],
        ['chat', '?limit=1.5', 'Limit must be a positive integer'],
        ['chat', '?since=-1', 'Invalid since'],
        ['chat', '?since=1&after=1', 'Invalid since'],
        ['chat', '?after=999999999', 'Unknown message id'],
        ['chat', '?before=abc', 'Unknown message id'],
        ['x'.repeat(17), '', 'Room name too long'],
      ];
      for (const [room, query, error] of cases) {
        const expected = await publicHistory(project, room, query);
        assert.deepEqual(JSON.parse(expected.text), { success: false, error }, `${room}${query}`);
        assert.equal(expected.status, 400);
        assert.deepEqual(await adminHistory(project, room, query), expected, `${room}${query}`);
      }
    });
  });

  describe('GET /admin/projects/:hash/rooms', () => {
    it('lists the rooms with stored messages and those with users present, sorted by name, with lastSeq, lastTs and distinct users present', async () => {
      const project = await server.createProject('admin-rooms');
      const other = await server.createProject('admin-rooms-other');
      for (const payload of ['1', '2', '3']) await publish(project, 'b-stored', payload);
      await publish(project, 'd-both', 'x');
      await publish(other, 'a-elsewhere', 'not this project');
      await connect(project, 'alice', ['a-present', 'd-both']);
      await connect(project, 'bob', ['a-present']);
      await connect(project, 'bob', ['a-present']);
      const carol = await connect(project, 'carol', ['c-present']);
      await connect(other, 'dora', ['z-elsewhere']);
      const stored = await lastOf(project, 'b-stored');
      const both = await lastOf(project, 'd-both');
      const expected: RoomEntry[] = [
        { room: 'a-present', lastSeq: 0, lastTs: null, present: 2 },
        { room: 'b-stored', lastSeq: 3, lastTs: stored.ts, present: 0 },
        { room: 'c-present', lastSeq: 0, lastTs: null, present: 1 },
        { room: 'd-both', lastSeq: 1, lastTs: both.ts, present: 1 },
      ];
      await eventually('every member is present', async () => {
        const listed = await rooms(project);
        return JSON.stringify(listed) === JSON.stringify(expected);
      });
      const response = await server.admin('GET', `/admin/projects/${project.hash}/rooms`);
      assert.equal(
        await response.text(),
        JSON.stringify({ rooms: expected }),
        'exactly these keys, in this order',
      );
      // A room whose last member left, with no message, is no longer listed.
      carol.send({ type: 'leave', room: 'c-present' });
      await carol.next('left');
      await eventually('carol left', async () => (await rooms(project)).length === 3);
      assert.deepEqual(await rooms(project), [expected[0], expected[1], expected[3]]);
    });

    it('pages by name: limit (default 100, at most 1000) and after (exclusive), across stored and present rooms', async () => {
      const project = await server.createProject('admin-rooms-paged');
      const names = Array.from({ length: 1001 }, (_, i) => `r${String(i).padStart(4, '0')}`);
      for (let start = 0; start < names.length; start += 100) {
        await Promise.all(
          names.slice(start, start + 100).map((room) => publish(project, room, 'x')),
        );
      }
      const roomNames = (entries: RoomEntry[]): string[] => entries.map((entry) => entry.room);
      assert.deepEqual(roomNames(await rooms(project)), names.slice(0, 100));
      assert.deepEqual(roomNames(await rooms(project, '?limit=5000')), names.slice(0, 1000));
      assert.deepEqual(roomNames(await rooms(project, '?limit=1000&after=r0000')), names.slice(1));
      assert.deepEqual(roomNames(await rooms(project, '?limit=3&after=r0500')), [
        'r0501',
        'r0502',
        'r0503',
      ]);
      assert.deepEqual(roomNames(await rooms(project, '?after=r1000')), []);
      // Present rooms interleave with stored ones, by name, in the same pages.
      await connect(project, 'eve', ['r0000a', 'r0001a', 'r1000a']);
      const expectedFirst = ['r0000', 'r0000a', 'r0001', 'r0001a'];
      await eventually('eve is present', async () => {
        const page = roomNames(await rooms(project, '?limit=4'));
        return JSON.stringify(page) === JSON.stringify(expectedFirst);
      });
      assert.deepEqual(roomNames(await rooms(project, '?limit=2&after=r0000a')), [
        'r0001',
        'r0001a',
      ]);
      assert.deepEqual(await rooms(project, '?after=r1000'), [
        { room: 'r1000a', lastSeq: 0, lastTs: null, present: 1 },
      ]);
      assert.deepEqual(await rooms(project, '?limit=1&after=r0999'), [
        { room: 'r1000', lastSeq: 1, lastTs: (await lastOf(project, 'r1000')).ts, present: 0 },
      ]);
    });

    it('a limit that is not a whole number ≥ 1 answers 400 Limit must be a positive integer', async () => {
      const project = await server.createProject('admin-rooms-limit');
      for (const limit of ['0', '-1', 'abc', '1.5', '', '1e3']) {
        const response = await server.admin(
          'GET',
          `/admin/projects/${project.hash}/rooms?limit=${limit}`,
        );
        assert.deepEqual(
          await answer(response),
          refused(400, 'Limit must be a positive integer'),
          `limit=${limit}`,
        );
      }
    });
  });

  describe('GET /admin/projects/:hash/stats and /admin/stats', () => {
    it('counts connections, distinct users, rooms with members and stored messages exactly; messagesPerSecond is above 0 after sends', async () => {
      const project = await server.createProject('admin-stats');
      const fresh = await server.admin('GET', `/admin/projects/${project.hash}/stats`);
      assert.equal(
        await fresh.text(),
        '{"connections":0,"users":0,"rooms":0,"messagesPerSecond":0,"storedMessages":0}',
      );
      const alice = await connect(project, 'alice', ['x', 'y']);
      await connect(project, 'alice', []);
      await connect(project, 'bob', ['y']);
      for (let n = 1; n <= 4; n++)
        alice.send({ type: 'message', room: 'x', payload: `ws ${n}`, ref: n });
      // Each is stored once acknowledged (the ack and the own delivery come in either order).
      await alice.collect('ack', 4);
      for (const payload of ['a', 'b', 'c']) await publish(project, 'z', payload);
      // The stored count may be the one of the first call for up to a second.
      let figures: Stats | undefined;
      await eventually('the figures count the sends', async () => {
        figures = await stats(project);
        return figures.storedMessages === 7;
      });
      assert.ok(figures);
      assert.deepEqual(Object.keys(figures), STATS_KEYS);
      assert.deepEqual(
        { ...figures, messagesPerSecond: 0 },
        { connections: 3, users: 2, rooms: 2, messagesPerSecond: 0, storedMessages: 7 },
      );
      assert.ok(figures.messagesPerSecond > 0, `messagesPerSecond ${figures.messagesPerSecond}`);
      for (const client of clients.splice(0)) client.close();
      await eventually('every connection closed', async () => {
        const now = await stats(project);
        return now.connections === 0 && now.users === 0 && now.rooms === 0;
      });
    });

    it('/admin/stats sums every project, with projects and instances', async () => {
      const alone = await startTestServer();
      try {
        const one = await alone.createProject('one');
        const two = await alone.createProject('two');
        const open = async (project: TestProject, sub: string, room: string) => {
          const client = await connectAs(alone, project, sub);
          clients.push(client);
          await client.join(room);
          return client;
        };
        const send = async (project: TestProject, room: string, count: number) => {
          const token = await signToken(project.jwtSecret, 'poster');
          for (let n = 0; n < count; n++) {
            const response = await alone.api('POST', '/api/message', {
              hash: project.hash,
              token,
              body: { room, payload: `m${n}` },
            });
            assert.equal(response.status, 200);
          }
        };
        await open(one, 'alice', 'lobby');
        await open(one, 'bob', 'lobby');
        // alice in another project is another user there.
        await open(two, 'alice', 'lobby');
        await open(two, 'alice', 'other');
        await send(one, 'lobby', 5);
        await send(two, 'other', 2);
        let totals: Totals | undefined;
        await eventually('the totals count every project', async () => {
          const response = await alone.admin('GET', '/admin/stats');
          assert.equal(response.status, 200);
          totals = (await response.json()) as Totals;
          return totals.storedMessages === 7 && totals.connections === 4;
        });
        assert.ok(totals);
        assert.deepEqual(Object.keys(totals), [...STATS_KEYS, 'projects', 'instances']);
        // The demo project of a new SQLite database is the third.
        assert.deepEqual(
          { ...totals, messagesPerSecond: 0 },
          {
            connections: 4,
            users: 3,
            rooms: 3,
            messagesPerSecond: 0,
            storedMessages: 7,
            projects: 3,
            instances: 1,
          },
        );
        assert.ok(totals.messagesPerSecond > 0, `messagesPerSecond ${totals.messagesPerSecond}`);
        const each = await Promise.all(
          [one, two].map(async (project) => {
            const response = await alone.admin('GET', `/admin/projects/${project.hash}/stats`);
            return (await response.json()) as Stats;
          }),
        );
        for (const key of ['connections', 'users', 'rooms', 'storedMessages'] as const) {
          assert.equal(totals[key], (each[0]?.[key] ?? 0) + (each[1]?.[key] ?? 0), key);
        }
      } finally {
        for (const client of clients.splice(0)) client.close();
        await alone.close();
      }
    });
  });

  describe('refusals', () => {
    const reads = (hash: string): string[] => [
      `/admin/projects/${hash}/stats`,
      `/admin/projects/${hash}/rooms`,
      `/admin/projects/${hash}/rooms/chat/messages`,
    ];

    it('an unknown project answers 404 Unknown project on every read', async () => {
      for (const path of reads('no-such-project')) {
        assert.deepEqual(
          await answer(await server.admin('GET', path)),
          refused(404, 'Unknown project'),
          path,
        );
      }
    });

    it('without the admin token, or with a wrong one, every read answers 401 Unauthorized', async () => {
      const project = await server.createProject('admin-reads-401');
      for (const path of [...reads(project.hash), '/admin/stats']) {
        for (const headers of [{}, { authorization: 'Bearer wrong' }] as Record<string, string>[]) {
          const response = await fetch(`${server.adminUrl}${path}`, { headers });
          assert.deepEqual(await answer(response), refused(401, 'Unauthorized'), path);
        }
      }
    });

    it('another method answers 405 Method not allowed; a malformed escape 400 Invalid path', async () => {
      const project = await server.createProject('admin-reads-405');
      for (const path of [...reads(project.hash), '/admin/stats']) {
        for (const method of ['POST', 'PUT', 'DELETE']) {
          assert.deepEqual(
            await answer(await server.admin(method, path)),
            refused(405, 'Method not allowed'),
            `${method} ${path}`,
          );
        }
      }
      for (const path of [
        '/admin/projects/%zz/stats',
        `/admin/projects/${project.hash}/rooms/%E0%A4/messages`,
      ]) {
        assert.deepEqual(
          await answer(await server.admin('GET', path)),
          refused(400, 'Invalid path'),
          path,
        );
      }
    });
  });
});
