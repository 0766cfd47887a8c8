/**
 * Durable rooms across instances (issue 9), on PostgreSQL + Redis: recovery on another instance
 * than the first, recovery while two instances publish at full speed, and one idempotency key
 * sent twenty times at once over WebSocket and HTTP on two instances.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Frame, TestClient } from '../helpers/client.js';
import { type TestSchemas, testSchemas } from '../helpers/postgres.js';
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

describe('durable rooms on two instances, PostgreSQL + Redis', () => {
  let schemas: TestSchemas;
  const servers: TestServer[] = [];
  let project: TestProject;
  const a = (): TestServer => servers[0] as TestServer;
  const b = (): TestServer => servers[1] as TestServer;
  const connect = async (server: TestServer, sub: string): Promise<TestClient> =>
    TestClient.connect(await memberUrl(server, project, sub));

  before(async () => {
    schemas = await testSchemas();
    const env = {
      DATABASE_URL: schemas.urlFor(await schemas.create()),
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `sb-test-${randomBytes(6).toString('hex')}:`,
      RECOVERY_MAX_MESSAGES: '10000',
      // The senders go as fast as the socket takes it: a fast machine would otherwise run them
      // past the per-connection limiter (RATE_BURST 2000), and the refused sends never get a seq.
      RATE_LIMIT: '100000',
      RATE_BURST: '100000',
    };
    servers.push(await startTestServer(env), await startTestServer(env));
    project = await a().createProject('durable-cluster');
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await schemas.dropAll();
  });

  it('a client that read 1..k on A, while others sent k+1..n, recovers exactly those on B', async () => {
    const reader = await connect(a(), 'ann');
    await reader.join('moved');
    const sender = await connect(b(), 'ben');
    await sender.join('moved');
    for (let i = 0; i < 4; i++) sender.send({ type: 'message', room: 'moved', payload: `a${i}` });
    assert.deepEqual(seqs(await reader.exactly('message', 4)), [1, 2, 3, 4]);
    reader.close();
    for (let i = 0; i < 6; i++) sender.send({ type: 'message', room: 'moved', payload: `b${i}` });
    await sender.exactly('message', 10);
    const back = await connect(b(), 'ann');
    assert.deepEqual(await back.request({ type: 'join', room: 'moved', since: 4 }), {
      type: 'joined',
      room: 'moved',
      seq: 10,
      recovered: true,
    });
    const replayed = await back.exactly('message', 6);
    assert.deepEqual(seqs(replayed), [5, 6, 7, 8, 9, 10]);
    assert.deepEqual(
      replayed.map((frame) => frame.payload),
      ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'],
    );
    sender.send({ type: 'message', room: 'moved', payload: 'live' });
    const [live] = await back.exactly('message', 1);
    assert.equal(live?.seq, 11);
    await back.expectSilence();
    back.close();
    sender.close();
  });

  it('recovery while two instances publish into the room at full speed: since+1, since+2, … with no gap and no repeat', async () => {
    const total = 5000;
    const perSender = total / 2;
    const senders = [await connect(a(), 'pa'), await connect(b(), 'pb')];
    for (const sender of senders) await sender.join('flood');
    const watcher = await connect(a(), 'watch');
    await watcher.join('flood');
    const token = await signToken(project.jwtSecret, 'pa');
    // A first stretch, so that the joiner has something to recover.
    for (let i = 0; i < 300; i++) {
      (senders[i % 2] as TestClient).send({ type: 'message', room: 'flood', payload: `pre${i}` });
    }
    await watcher.exactly('message', 300);
    const since = 100;
    // Both instances keep publishing while the joiner recovers on B.
    const sending = (async () => {
      for (let i = 0; i < perSender; i++) {
        for (const [n, sender] of senders.entries()) {
          sender.send({ type: 'message', room: 'flood', payload: `s${n}-${i}` });
        }
        if (i % 250 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const joiner = await connect(b(), 'late');
    joiner.send({ type: 'join', room: 'flood', since });
    await sending;
    const joined = await joiner.next('joined', 20_000);
    assert.equal(joined.recovered, true);
    const expected = 300 + total - since;
    const frames = await joiner.exactly('message', expected, 60_000);
    const got = seqs(frames);
    for (let i = 0; i < got.length; i++) {
      assert.equal(got[i], since + 1 + i, `position ${i}`);
    }
    const posted = await a().api('POST', '/api/message', {
      hash: project.hash,
      token,
      body: { room: 'flood', payload: 'the end' },
    });
    const { seq: last } = (await posted.json()) as { seq: number };
    assert.equal(last, 300 + total + 1);
    const [end] = await joiner.exactly('message', 1, 10_000);
    assert.equal(end?.seq, last);
    await joiner.expectSilence();
    for (const client of [...senders, watcher, joiner]) client.close();
  });

  it('one idempotency key sent 20 times at once over WebSocket and HTTP on two instances: one message stored and delivered, every answer the same', async () => {
    const key = `key-${randomBytes(4).toString('hex')}`;
    const member = await connect(a(), 'member');
    await member.join('once');
    const wsSenders = [await connect(a(), 'wa'), await connect(b(), 'wb')];
    for (const sender of wsSenders) await sender.join('once');
    const token = await signToken(project.jwtSecret, 'http');
    const answers: { id: unknown; seq: unknown; duplicate?: unknown }[] = [];
    const http = Array.from({ length: 10 }, async (_, i) => {
      const response = await (i % 2 === 0 ? a() : b()).api('POST', '/api/message', {
        hash: project.hash,
        token,
        body: { room: 'once', payload: `http ${i}` },
        headers: { 'idempotency-key': key },
      });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { success: boolean; id: unknown; seq: unknown };
      assert.equal(body.success, true);
      answers.push(body);
    });
    for (let i = 0; i < 10; i++) {
      (wsSenders[i % 2] as TestClient).send({
        type: 'message',
        room: 'once',
        payload: `ws ${i}`,
        idempotencyKey: key,
        ref: i,
      });
    }
    await Promise.all(http);
    for (const sender of wsSenders) {
      for (const ack of await sender.collect('ack', 5)) {
        answers.push({ id: ack.id, seq: ack.seq, duplicate: ack.duplicate });
      }
    }
    assert.equal(answers.length, 20);
    const first = answers.find((answer) => answer.duplicate === undefined);
    assert.ok(first, 'one answer is the stored message');
    for (const answer of answers) {
      assert.equal(answer.id, first.id);
      assert.equal(answer.seq, first.seq);
    }
    assert.equal(answers.filter((answer) => answer.duplicate === true).length, 19);
    const [delivered] = await member.exactly('message', 1);
    assert.equal(delivered?.seq, first.seq);
    await member.expectSilence(300);
    const history = await b().api('GET', '/api/rooms/once/messages', {
      hash: project.hash,
      token,
    });
    const { messages } = (await history.json()) as { messages: Frame[] };
    assert.equal(messages.length, 1);
    for (const client of [member, ...wsSenders]) client.close();
  });
});
