/**
 * Durable rooms (issue 9), on one instance with SQLite: positions on `joined`, recovery with
 * `since`, references and acknowledgements, history by position.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type Frame, TestClient } from '../helpers/client.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { memberUrl } from '../helpers/ws.js';

function seqs(frames: Frame[]): number[] {
  return frames.map((frame) => Number(frame.seq));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('durable rooms on one instance', () => {
  let dir: string;
  let server: TestServer;
  let project: TestProject;
  let token: string;
  const connect = async (sub: string): Promise<TestClient> =>
    TestClient.connect(await memberUrl(server, project, sub));
  /** Publishes `count` messages into `room` over HTTP, one after the other; returns their seqs. */
  const publish = async (room: string, count: number, prefix = 'm'): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const response = await server.api('POST', '/api/message', {
        hash: project.hash,
        token,
        body: { room, payload: `${prefix}${i}` },
      });
      assert.equal(response.status, 200);
      out.push(((await response.json()) as { seq: number }).seq);
    }
    return out;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sb-durable-'));
    server = await startTestServer({
      DATABASE_URL: `sqlite:${join(dir, 'durable.db')}`,
      RECOVERY_MAX_MESSAGES: '50',
    });
    project = await server.createProject('durable');
    token = await signToken(project.jwtSecret, 'publisher');
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('positions', () => {
    it('joined carries seq: 0 for a room that never had a message, then the room’s LAST', async () => {
      const first = await connect('ann');
      assert.deepEqual(await first.request({ type: 'join', room: 'pos' }), {
        type: 'joined',
        room: 'pos',
        seq: 0,
      });
      await publish('pos', 3);
      await first.exactly('message', 3);
      const second = await connect('ben');
      assert.deepEqual(await second.request({ type: 'join', room: 'pos' }), {
        type: 'joined',
        room: 'pos',
        seq: 3,
      });
      first.drain();
      assert.deepEqual(await first.request({ type: 'join', room: 'pos' }), {
        type: 'joined',
        room: 'pos',
        seq: 3,
      });
      await publish('pos', 1);
      assert.deepEqual(seqs(await first.exactly('message', 1)), [4], 'one membership, once');
      assert.deepEqual(seqs(await second.exactly('message', 1)), [4]);
      await first.expectSilence();
      first.close();
      second.close();
    });

    it('a connection’s messages to a room take their seq in the order it sent them', async () => {
      const client = await connect('ann');
      await client.join('order');
      for (let i = 0; i < 50; i++) {
        client.send({ type: 'message', room: 'order', payload: `p${i}`, ref: i });
      }
      const acks = await client.collect('ack', 50);
      const delivered = await client.exactly('message', 50);
      assert.deepEqual(
        delivered.map((frame) => frame.payload),
        range(0, 49).map((i) => `p${i}`),
      );
      assert.deepEqual(seqs(delivered), range(1, 50));
      const byRef = new Map(acks.map((ack) => [ack.ref, ack.seq]));
      assert.deepEqual(
        range(0, 49).map((i) => byRef.get(i)),
        range(1, 50),
      );
      client.close();
    });
  });

  describe('recovery with since', () => {
    it('replays exactly the messages after since, then live ones', async () => {
      const reader = await connect('ann');
      await reader.join('rec');
      await publish('rec', 5);
      assert.deepEqual(seqs(await reader.exactly('message', 5)), range(1, 5));
      reader.close();
      await publish('rec', 7);
      const back = await connect('ann');
      assert.deepEqual(await back.request({ type: 'join', room: 'rec', since: 5 }), {
        type: 'joined',
        room: 'rec',
        seq: 12,
        recovered: true,
      });
      assert.deepEqual(seqs(await back.exactly('message', 7)), range(6, 12));
      await publish('rec', 2);
      assert.deepEqual(seqs(await back.exactly('message', 2)), [13, 14]);
      await back.expectSilence();
      back.close();
    });

    it('since 0 replays the room from its start; since = LAST replays nothing and is recovered', async () => {
      await publish('rec0', 3);
      const client = await connect('ann');
      assert.deepEqual(await client.request({ type: 'join', room: 'rec0', since: 0 }), {
        type: 'joined',
        room: 'rec0',
        seq: 3,
        recovered: true,
      });
      assert.deepEqual(seqs(await client.exactly('message', 3)), [1, 2, 3]);
      const other = await connect('ben');
      assert.deepEqual(await other.request({ type: 'join', room: 'rec0', since: 3 }), {
        type: 'joined',
        room: 'rec0',
        seq: 3,
        recovered: true,
      });
      await other.expectSilence();
      client.close();
      other.close();
    });

    it('recovered is false, and nothing is replayed, past RECOVERY_MAX_MESSAGES and when since > LAST', async () => {
      await publish('far', 60);
      const client = await connect('ann');
      assert.deepEqual(await client.request({ type: 'join', room: 'far', since: 5 }), {
        type: 'joined',
        room: 'far',
        seq: 60,
        recovered: false,
      });
      await client.expectSilence();
      assert.deepEqual(await client.request({ type: 'join', room: 'far', since: 61 }), {
        type: 'joined',
        room: 'far',
        seq: 60,
        recovered: false,
      });
      await client.expectSilence();
      await publish('far', 1);
      assert.deepEqual(seqs(await client.exactly('message', 1)), [61], 'live from LAST on');
      client.close();
    });

    it('recovered is false when a message after since is no longer stored (retention)', async () => {
      await publish('purged', 6);
      // Remove the oldest messages behind the server's back, as the retention purge does.
      const db = new Database(join(dir, 'durable.db'), { timeout: 2000 });
      try {
        db.prepare("DELETE FROM messages WHERE project = ? AND room = 'purged' AND seq <= 3").run(
          project.hash,
        );
      } finally {
        db.close();
      }
      const client = await connect('ann');
      assert.deepEqual(await client.request({ type: 'join', room: 'purged', since: 2 }), {
        type: 'joined',
        room: 'purged',
        seq: 6,
        recovered: false,
      });
      await client.expectSilence();
      const ok = await connect('ben');
      assert.deepEqual(await ok.request({ type: 'join', room: 'purged', since: 3 }), {
        type: 'joined',
        room: 'purged',
        seq: 6,
        recovered: true,
      });
      assert.deepEqual(seqs(await ok.exactly('message', 3)), [4, 5, 6]);
      client.close();
      ok.close();
    });

    it('live messages published during the replay come after it, each once, with no gap', async () => {
      await publish('busy', 40);
      const publisher = await connect('pub');
      await publisher.join('busy');
      const client = await connect('ann');
      client.send({ type: 'join', room: 'busy', since: 0 });
      for (let i = 0; i < 100; i++) {
        publisher.send({ type: 'message', room: 'busy', payload: `live${i}` });
      }
      const joined = await client.next('joined');
      assert.equal(joined.recovered, true);
      const last = Number(joined.seq);
      const frames = await client.exactly('message', 140);
      assert.deepEqual(seqs(frames), range(1, 140));
      assert.ok(last >= 40 && last <= 140);
      await client.expectSilence();
      publisher.close();
      client.close();
    });

    it('a join with since on a room already joined restarts the membership there', async () => {
      const client = await connect('ann');
      await client.join('again');
      await publish('again', 4);
      assert.deepEqual(seqs(await client.exactly('message', 4)), range(1, 4));
      assert.deepEqual(await client.request({ type: 'join', room: 'again', since: 2 }), {
        type: 'joined',
        room: 'again',
        seq: 4,
        recovered: true,
      });
      assert.deepEqual(seqs(await client.exactly('message', 2)), [3, 4]);
      await publish('again', 1);
      assert.deepEqual(seqs(await client.exactly('message', 1)), [5], 'one membership after it');
      await client.expectSilence();
      client.close();
    });
  });

  describe('references and acknowledgements', () => {
    it('every frame with a ref gets its direct answer with the same ref', async () => {
      const client = await connect('ann');
      assert.deepEqual(await client.request({ type: 'ping', ref: 'p1' }), {
        type: 'pong',
        ref: 'p1',
      });
      assert.deepEqual(await client.request({ type: 'join', room: 'refs', ref: 7 }), {
        type: 'joined',
        room: 'refs',
        seq: 0,
        ref: 7,
      });
      client.send({ type: 'message', room: 'refs', payload: 'hi', ref: 'm1' });
      const [ack] = await client.collect('ack', 1);
      assert.deepEqual(ack, { type: 'ack', ref: 'm1', room: 'refs', id: ack?.id, seq: 1 });
      assert.equal(typeof ack?.id, 'string');
      client.send({ type: 'broadcast', payload: 'all', ref: 'b1' });
      const [broadcastAck] = await client.collect('ack', 2).then((acks) => acks.slice(1));
      assert.deepEqual(broadcastAck, { type: 'ack', ref: 'b1' });
      client.drain();
      assert.deepEqual(await client.request({ type: 'leave', room: 'refs', ref: 0 }), {
        type: 'left',
        room: 'refs',
        ref: 0,
      });
      client.close();
    });

    it('errors carry the ref of a frame whose ref is valid; no ack without a ref', async () => {
      const client = await connect('ann');
      const cases: [unknown, string][] = [
        [{ type: 'shout', ref: 'a' }, 'Unknown message type'],
        [{ type: 'join', ref: 'b' }, 'Room required'],
        [{ type: 'message', room: 'x', payload: 'p', ref: 'c' }, 'You must join the room first'],
        [{ type: 'join', room: 'x', since: -1, ref: 'd' }, 'Invalid since'],
        [
          { type: 'message', room: 'x', payload: 'p', idempotencyKey: '', ref: 'e' },
          'Invalid idempotency key',
        ],
      ];
      for (const [frame, message] of cases) {
        const ref = (frame as { ref: string }).ref;
        assert.deepEqual(await client.request(frame), { type: 'error', message, ref });
      }
      await client.join('noack');
      client.send({ type: 'message', room: 'noack', payload: 'x' });
      const [delivered] = await client.exactly('message', 1);
      assert.equal(delivered?.payload, 'x');
      client.drain();
      await client.expectSilence();
      client.close();
    });

    it('Invalid ref for every bad shape, before any other check', async () => {
      const client = await connect('ann');
      const bad: unknown[] = ['', 'x'.repeat(65), 1.5, 2 ** 53, -(2 ** 53), true, [], {}];
      for (const ref of bad) {
        assert.deepEqual(
          await client.request({ type: 'nonsense', ref }),
          { type: 'error', message: 'Invalid ref' },
          JSON.stringify(ref),
        );
      }
      assert.deepEqual(await client.request({ type: 'ping', ref: 'x'.repeat(64) }), {
        type: 'pong',
        ref: 'x'.repeat(64),
      });
      assert.deepEqual(await client.request({ type: 'ping', ref: null }), { type: 'pong' });
      assert.deepEqual(await client.request({ type: 'ping', ref: -(2 ** 53 - 1) }), {
        type: 'pong',
        ref: -(2 ** 53 - 1),
      });
      client.close();
    });
  });

  describe('history by position', () => {
    it('?since=N answers the oldest messages after N; a bad since, or one with after/before, is 400 Invalid since', async () => {
      await publish('hist', 5);
      const read = async (query: string) =>
        server.api('GET', `/api/rooms/hist/messages?${query}`, { hash: project.hash, token });
      const response = await read('since=2&limit=2');
      assert.equal(response.status, 200);
      const { messages } = (await response.json()) as { messages: Frame[] };
      assert.deepEqual(seqs(messages), [3, 4]);
      for (const query of [
        'since=-1',
        'since=x',
        'since=1.5',
        'since=9007199254740992',
        'since=1&after=1',
        'since=1&before=3',
      ]) {
        const refused = await read(query);
        assert.equal(refused.status, 400, query);
        assert.deepEqual(await refused.json(), { success: false, error: 'Invalid since' });
      }
    });
  });
});

describe('recovery and references at the limits', () => {
  let server: TestServer;
  let project: TestProject;

  before(async () => {
    server = await startTestServer({
      SLOW_CONSUMER_BYTES: '32768',
      RATE_LIMIT: '1',
      RATE_BURST: '2000',
    });
    project = await server.createProject('limits');
  });
  after(() => server.close());

  it('a slow reader gets a replay larger than SLOW_CONSUMER_BYTES whole, and is not closed', async () => {
    const sender = await TestClient.connect(await memberUrl(server, project, 'pub'));
    await sender.join('big');
    const payload = 'x'.repeat(1024);
    for (let i = 0; i < 600; i++) sender.send({ type: 'message', room: 'big', payload });
    await sender.exactly('message', 600, 20_000);
    const reader = await TestClient.connect(await memberUrl(server, project, 'slow'));
    reader.socket.pause();
    reader.send({ type: 'join', room: 'big', since: 0 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    reader.socket.resume();
    const joined = await reader.next('joined');
    assert.equal(joined.recovered, true);
    assert.deepEqual(seqs(await reader.exactly('message', 600, 20_000)), range(1, 600));
    assert.equal(reader.closeCode, undefined, 'still open');
    sender.close();
    reader.close();
  });

  it('a frame refused by the rate limit gets Rate limit exceeded with its ref', async () => {
    const client = await TestClient.connect(await memberUrl(server, project, 'eager'));
    for (let i = 0; i < 2000; i++) client.send({ type: 'ping' });
    client.send({ type: 'ping', ref: 'late' });
    client.send('{"type":"ping","ref":"late-and-broken"');
    const pongs = await client.collect('pong', 2000, 20_000);
    assert.equal(pongs.length, 2000);
    const errors = await client.collect('error', 2, 20_000);
    assert.deepEqual(errors, [
      { type: 'error', message: 'Rate limit exceeded', ref: 'late' },
      { type: 'error', message: 'Rate limit exceeded' },
    ]);
    client.close();
  });
});
