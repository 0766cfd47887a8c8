import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoomMessage } from '../../src/domain.js';
import { Replay, type ReplayTarget } from '../../src/realtime/replay.js';
import { prepareText } from '../helpers/recording.js';

function message(seq: number): RoomMessage {
  return { id: String(seq), seq, room: 'r', payload: `p${seq}`, from: 'u', ts: seq };
}

/** A store of seqs 1..stored (minus `removed`), recording the ranges read. */
function store(stored: number, removed: number[] = []) {
  const ranges: [number, number][] = [];
  const read = async (from: number, to: number): Promise<RoomMessage[]> => {
    ranges.push([from, to]);
    const out: RoomMessage[] = [];
    for (let seq = from; seq <= Math.min(to, stored); seq++) {
      if (!removed.includes(seq)) out.push(message(seq));
    }
    return out;
  };
  return { read, ranges };
}

class Target implements ReplayTarget {
  backlog = 0;
  readonly sent: number[] = [];
  replay(frame: Buffer): void {
    this.sent.push(JSON.parse(frame.toString('utf8')).seq);
  }
}

const OPTIONS = { pageSize: 100, maxBacklogBytes: 1000, pollMs: 2 };

describe('Replay: the stored messages after a position, in pages, paced by the backlog', () => {
  it('reads the room in pages of pageSize, never at once, and sends since+1..last in order', async () => {
    const { read, ranges } = store(1000);
    const target = new Target();
    const replay = new Replay(target, 40, 950, read, prepareText, OPTIONS);
    const first = await replay.firstPage();
    assert.ok(first);
    await replay.run(first);
    assert.deepEqual(
      target.sent,
      Array.from({ length: 910 }, (_, i) => 41 + i),
    );
    assert.ok(ranges.every(([from, to]) => to - from + 1 <= OPTIONS.pageSize));
    assert.deepEqual(ranges[0], [41, 140]);
    assert.deepEqual(ranges.at(-1), [941, 950]);
  });

  it('waits while the backlog is over the bound, and goes on when it drains', async () => {
    const { read } = store(10);
    const target = new Target();
    target.backlog = 5000;
    const replay = new Replay(target, 0, 10, read, prepareText, OPTIONS);
    const first = await replay.firstPage();
    assert.ok(first);
    const running = replay.run(first);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(target.sent, [], 'nothing sent while the client is behind');
    target.backlog = 0;
    await running;
    assert.deepEqual(
      target.sent,
      Array.from({ length: 10 }, (_, i) => i + 1),
    );
  });

  it('firstPage is undefined when the first missed message was removed (retention)', async () => {
    const { read } = store(10, [1, 2, 3]);
    const replay = new Replay(new Target(), 2, 10, read, prepareText, OPTIONS);
    assert.equal(await replay.firstPage(), undefined);
    const fine = new Replay(new Target(), 3, 10, read, prepareText, OPTIONS);
    assert.equal((await fine.firstPage())?.[0]?.seq, 4);
  });

  it('stops sending once cancelled', async () => {
    const { read } = store(500);
    const target = new Target();
    target.backlog = 5000;
    const replay = new Replay(target, 0, 500, read, prepareText, OPTIONS);
    const first = await replay.firstPage();
    assert.ok(first);
    const running = replay.run(first);
    replay.cancel();
    target.backlog = 0;
    await running;
    assert.deepEqual(target.sent, []);
  });

  it('a purge that removes whole pages while the replay runs skips them and still sends what is left after them', async () => {
    const removed: number[] = [];
    const { read } = store(600, removed);
    const target = new Target();
    const replay = new Replay(target, 0, 600, read, prepareText, OPTIONS);
    const first = await replay.firstPage();
    assert.ok(first);
    // After the first page was read, retention removes seqs 1-350: pages 101-200 … 301-400 are hit.
    for (let seq = 1; seq <= 350; seq++) removed.push(seq);
    await replay.run(first);
    assert.deepEqual(target.sent, [
      ...Array.from({ length: 100 }, (_, i) => i + 1),
      ...Array.from({ length: 250 }, (_, i) => i + 351),
    ]);
  });

  it('a purge of everything after the first page ends the replay with nothing more sent', async () => {
    const removed: number[] = [];
    const { read, ranges } = store(300, removed);
    const target = new Target();
    const replay = new Replay(target, 0, 300, read, prepareText, OPTIONS);
    const first = await replay.firstPage();
    assert.ok(first);
    for (let seq = 1; seq <= 300; seq++) removed.push(seq);
    await replay.run(first);
    assert.deepEqual(
      target.sent,
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    assert.deepEqual(ranges.at(-1), [201, 300], 'it looked up to last, no further');
  });
});
