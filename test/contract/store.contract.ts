/**
 * The Store contract as a suite every implementation runs (see src/store/store.ts). The factory
 * gives a new Store per test, which the suite closes; projects get fresh random hashes, so a
 * factory may also hand out stores over one shared database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Project, RoomMessage } from '../../src/domain.js';
import type { Store } from '../../src/store/store.js';

function newProject(name = 'test'): Project {
  return {
    hash: randomBytes(8).toString('hex'),
    name,
    jwtSecret: randomBytes(16).toString('hex'),
    createdAt: new Date().toISOString(),
  };
}

function seqs(messages: readonly RoomMessage[] | undefined): number[] {
  assert.ok(messages, 'expected a list of messages, got undefined');
  return messages.map((m) => m.seq);
}

export function storeContract(name: string, factory: () => Promise<Store>): void {
  describe(name, () => {
    let store: Store;
    let project: Project;

    beforeEach(async () => {
      store = await factory();
      project = newProject();
      await store.createProject(project);
    });

    afterEach(async () => {
      await store.close();
    });

    async function send(room: string, payload: string, hash = project.hash): Promise<RoomMessage> {
      return store.append({ project: hash, room, payload, from: 'alice' });
    }

    async function sendMany(room: string, count: number): Promise<RoomMessage[]> {
      const sent: RoomMessage[] = [];
      for (let i = 1; i <= count; i++) sent.push(await send(room, `m${i}`));
      return sent;
    }

    describe('projects', () => {
      it('getProject returns a created project with every field', async () => {
        assert.deepEqual(await store.getProject(project.hash), project);
      });

      it('getProject of an unknown hash resolves undefined', async () => {
        assert.equal(await store.getProject(newProject().hash), undefined);
      });

      it('createProject with a hash that exists rejects and keeps the original', async () => {
        await assert.rejects(store.createProject({ ...project, name: 'other' }));
        assert.deepEqual(await store.getProject(project.hash), project);
      });

      it('listProjects lists created projects without their secrets', async () => {
        const second = newProject('second');
        await store.createProject(second);
        const listed = await store.listProjects();
        for (const p of [project, second]) {
          const { jwtSecret: _, ...summary } = p;
          assert.deepEqual(
            listed.find((s) => s.hash === p.hash),
            summary,
          );
        }
        for (const summary of listed) assert.equal('jwtSecret' in summary, false);
      });

      it('countProjects counts created and deleted projects', async () => {
        const before = await store.countProjects();
        const extra = newProject();
        await store.createProject(extra);
        assert.equal(await store.countProjects(), before + 1);
        await store.deleteProject(extra.hash);
        assert.equal(await store.countProjects(), before);
      });

      it('setProjectSecret replaces the secret and answers true', async () => {
        assert.equal(await store.setProjectSecret(project.hash, 'rotated'), true);
        assert.equal((await store.getProject(project.hash))?.jwtSecret, 'rotated');
      });

      it('setProjectSecret of an unknown hash answers false', async () => {
        assert.equal(await store.setProjectSecret(newProject().hash, 'x'), false);
      });

      describe('getProjects', () => {
        const byHash = (projects: readonly Project[]): Project[] =>
          [...projects].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));

        it('answers the existing projects among existing and missing hashes, each once', async () => {
          const second = newProject('second');
          await store.createProject(second);
          const found = await store.getProjects([
            newProject().hash,
            second.hash,
            project.hash,
            'a\u0000b',
            second.hash,
            newProject().hash,
          ]);
          assert.deepEqual(byHash(found), byHash([project, second]));
        });

        it('of an empty list answers []', async () => {
          assert.deepEqual(await store.getProjects([]), []);
        });

        it('sees a rotated secret', async () => {
          await store.setProjectSecret(project.hash, 'rotated');
          assert.deepEqual(await store.getProjects([project.hash]), [
            { ...project, jwtSecret: 'rotated' },
          ]);
        });

        it('leaves out a deleted project', async () => {
          const kept = newProject('kept');
          await store.createProject(kept);
          await store.deleteProject(project.hash);
          assert.deepEqual(await store.getProjects([project.hash, kept.hash]), [kept]);
        });

        it('answers 1,200 hashes at once, existing ones spread over all of them', async () => {
          const existing: Project[] = [project];
          const hashes = [project.hash];
          while (hashes.length < 1200) {
            const extra = newProject(`p${hashes.length}`);
            // Every other hash exists, so that each part of a split lookup finds some.
            if (hashes.length % 2 === 0) {
              await store.createProject(extra);
              existing.push(extra);
            }
            hashes.push(extra.hash);
          }
          assert.equal(existing.length, 600);
          assert.deepEqual(byHash(await store.getProjects(hashes)), byHash(existing));
        });
      });

      it('deleteProject answers true, then the project is gone and a second delete answers false', async () => {
        assert.equal(await store.deleteProject(project.hash), true);
        assert.equal(await store.getProject(project.hash), undefined);
        assert.equal(
          (await store.listProjects()).some((p) => p.hash === project.hash),
          false,
        );
        assert.equal(await store.deleteProject(project.hash), false);
      });
    });

    describe('append', () => {
      it('assigns a string id, seq 1 and an epoch-ms ts, and echoes room, payload and sender', async () => {
        const before = Date.now();
        const message = await send('lobby', 'hello');
        assert.equal(typeof message.id, 'string');
        assert.ok(message.id.length > 0);
        assert.equal(message.seq, 1);
        assert.ok(message.ts >= before - 1000 && message.ts <= Date.now() + 1000, 'ts is epoch ms');
        assert.equal(message.room, 'lobby');
        assert.equal(message.payload, 'hello');
        assert.equal(message.from, 'alice');
      });

      it('numbers each room on its own: 1, 2, 3 per room', async () => {
        const got: string[] = [];
        for (const room of ['a', 'b', 'a', 'a', 'b'])
          got.push(`${room}${(await send(room, 'x')).seq}`);
        assert.deepEqual(got, ['a1', 'b1', 'a2', 'a3', 'b2']);
      });

      it('gives every message a different id, across rooms and projects', async () => {
        const other = newProject();
        await store.createProject(other);
        const sent = await Promise.all([
          send('a', '1'),
          send('a', '2'),
          send('b', '3'),
          send('a', '4', other.hash),
        ]);
        assert.equal(new Set(sent.map((m) => m.id)).size, sent.length);
      });

      it('numbers one room name in two projects independently; neither sees the other', async () => {
        const other = newProject();
        await store.createProject(other);
        const mine = [await send('general', 'mine 1'), await send('general', 'mine 2')];
        const theirs = [await send('general', 'theirs 1', other.hash)];
        assert.deepEqual(seqs(mine), [1, 2]);
        assert.deepEqual(seqs(theirs), [1]);
        assert.deepEqual(await store.history(project.hash, 'general', { limit: 10 }), mine);
        assert.deepEqual(await store.history(other.hash, 'general', { limit: 10 }), theirs);
        assert.equal(await store.lastSeq(project.hash, 'general'), 2);
        assert.equal(await store.lastSeq(other.hash, 'general'), 1);
        assert.equal(
          await store.history(other.hash, 'general', { limit: 10, after: mine[0]?.id }),
          undefined,
        );
      });

      it('500 concurrent appends to one room take seqs 1..500 exactly and resolve in seq order', async () => {
        const resolved: number[] = [];
        const sent = await Promise.all(
          Array.from({ length: 500 }, (_, i) =>
            send('busy', `m${i}`).then((m) => {
              resolved.push(m.seq);
              return m;
            }),
          ),
        );
        const expected = Array.from({ length: 500 }, (_, i) => i + 1);
        assert.deepEqual(resolved, expected, 'promises resolve in seq order');
        assert.deepEqual(seqs(sent), expected, 'seqs follow the order of the calls');
        assert.equal(new Set(sent.map((m) => m.id)).size, 500);
        assert.equal(await store.lastSeq(project.hash, 'busy'), 500);
        assert.deepEqual(await store.history(project.hash, 'busy', { limit: 1000 }), sent);
      });

      it('a message to a missing or deleted project rejects alone; the rest of its batch is stored gaplessly', async () => {
        const deleted = newProject();
        await store.createProject(deleted);
        await store.deleteProject(deleted.hash);
        const results = await Promise.allSettled([
          send('mixed', 'good 1'),
          send('mixed', 'to nowhere', newProject().hash),
          send('mixed', 'good 2'),
          send('mixed', 'to the deleted', deleted.hash),
          send('mixed', 'good 3'),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'],
        );
        const stored = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        assert.deepEqual(seqs(stored), [1, 2, 3]);
        assert.deepEqual(await store.history(project.hash, 'mixed', { limit: 10 }), stored);
        assert.equal(await store.lastSeq(deleted.hash, 'mixed'), 0);
        assert.equal((await send('mixed', 'after')).seq, 4, 'a rejected append takes no seq');
      });

      it('rejects after close', async () => {
        await store.close();
        await assert.rejects(send('lobby', 'too late'));
      });
    });

    describe('payloads round-trip exactly', () => {
      const payloads: Record<string, string> = {
        'NUL inside': 'a\u0000b',
        'NUL alone': '\u0000',
        'trailing NULs': 'x\u0000\u0000',
        emoji: 'hi 👋🏽 👨‍👩‍👧‍👦 🇫🇷',
        'right-to-left text': 'שלום עולם مرحبا',
        'combining characters': 'e\u0301 a\u0308\u0304 Z\u0351\u0356',
        'astral and BMP edge code points': '\u{10FFFF}\u{FFFF}\u{FEFF}\u{E000}\u{1D11E}',
        'controls, quotes and backslashes': '\t\r\n\u0001\u001f"\'\\ %_?',
        'JSON-looking text': '{"type":"message","payload":null}',
        // 10 UTF-8 bytes per repetition: 60 KB of one- to four-byte characters.
        '60 KB': 'ü€😀x'.repeat(6 * 1024),
      };
      for (const [label, payload] of Object.entries(payloads)) {
        it(`${label}, in append, history and range`, async () => {
          const sent = await send('unicode', payload);
          assert.equal(sent.payload, payload);
          const [fromHistory] = (await store.history(project.hash, 'unicode', { limit: 1 })) ?? [];
          assert.equal(fromHistory?.payload, payload);
          const [fromRange] = await store.range(project.hash, 'unicode', 1, 1);
          assert.equal(fromRange?.payload, payload);
        });
      }

      it('room names and senders with unusual Unicode round-trip too', async () => {
        const room = 'ру́м 🚪';
        const sent = await store.append({
          project: project.hash,
          room,
          payload: 'p',
          from: 'ñ 😀',
        });
        assert.deepEqual(await store.history(project.hash, room, { limit: 1 }), [sent]);
        assert.equal(sent.room, room);
        assert.equal(sent.from, 'ñ 😀');
      });
    });

    describe('history', () => {
      let sent: RoomMessage[];
      const id = (seq: number): string => {
        const message = sent[seq - 1];
        assert.ok(message, `message ${seq} was sent`);
        return message.id;
      };
      const page = (query: { limit: number; after?: string; before?: string }) =>
        store.history(project.hash, 'paged', query);

      beforeEach(async () => {
        sent = await sendMany('paged', 10);
      });

      it('gives back messages exactly as append answered them', async () => {
        assert.deepEqual(await page({ limit: 10 }), sent);
      });

      it('without a cursor returns the newest `limit` messages, oldest first', async () => {
        assert.deepEqual(seqs(await page({ limit: 3 })), [8, 9, 10]);
      });

      it('with `after` returns the oldest `limit` messages after that id', async () => {
        assert.deepEqual(seqs(await page({ limit: 3, after: id(4) })), [5, 6, 7]);
      });

      it('with `before` returns the newest `limit` messages before that id, oldest first', async () => {
        assert.deepEqual(seqs(await page({ limit: 3, before: id(8) })), [5, 6, 7]);
      });

      it('with `after` and `before` returns the oldest `limit` messages between them', async () => {
        assert.deepEqual(seqs(await page({ limit: 3, after: id(2), before: id(9) })), [3, 4, 5]);
        assert.deepEqual(seqs(await page({ limit: 10, after: id(2), before: id(6) })), [3, 4, 5]);
        assert.deepEqual(seqs(await page({ limit: 10, after: id(5), before: id(6) })), []);
      });

      it('with a limit bigger than the count returns every message', async () => {
        assert.deepEqual(seqs(await page({ limit: 1000 })), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert.deepEqual(seqs(await page({ limit: 1000, after: id(7) })), [8, 9, 10]);
        assert.deepEqual(seqs(await page({ limit: 1000, before: id(3) })), [1, 2]);
      });

      it('with limit 1 returns the single nearest message', async () => {
        assert.deepEqual(seqs(await page({ limit: 1 })), [10]);
        assert.deepEqual(seqs(await page({ limit: 1, after: id(4) })), [5]);
        assert.deepEqual(seqs(await page({ limit: 1, before: id(4) })), [3]);
      });

      it('after the newest or before the oldest message returns []', async () => {
        assert.deepEqual(await page({ limit: 5, after: id(10) }), []);
        assert.deepEqual(await page({ limit: 5, before: id(1) }), []);
      });

      it('with an id that is not a message resolves undefined', async () => {
        const unknown = String(Number(id(10)) + 1_000_000);
        for (const cursor of [
          unknown,
          'abc',
          '-1',
          '1.5',
          '0x1',
          ' 1',
          '99999999999999999999999',
        ]) {
          assert.equal(await page({ limit: 5, after: cursor }), undefined, `after ${cursor}`);
          assert.equal(await page({ limit: 5, before: cursor }), undefined, `before ${cursor}`);
        }
        assert.equal(await page({ limit: 5, after: id(1), before: unknown }), undefined);
      });

      it('with the id of a message of another room or project resolves undefined', async () => {
        const elsewhere = await send('elsewhere', 'x');
        const other = newProject();
        await store.createProject(other);
        const foreign = await send('paged', 'x', other.hash);
        for (const cursor of [elsewhere.id, foreign.id]) {
          assert.equal(await page({ limit: 5, after: cursor }), undefined);
          assert.equal(await page({ limit: 5, before: cursor }), undefined);
        }
      });

      it('of a room with no messages is []', async () => {
        assert.deepEqual(await store.history(project.hash, 'empty', { limit: 50 }), []);
        assert.deepEqual(await store.history(newProject().hash, 'paged', { limit: 50 }), []);
      });
    });

    describe('range and lastSeq', () => {
      it('lastSeq is 0 for a room with no messages and the highest seq otherwise', async () => {
        assert.equal(await store.lastSeq(project.hash, 'counted'), 0);
        await sendMany('counted', 3);
        assert.equal(await store.lastSeq(project.hash, 'counted'), 3);
        assert.equal(await store.lastSeq(project.hash, 'other'), 0);
      });

      it('range returns messages with seq in [from, to], oldest first', async () => {
        const sent = await sendMany('ranged', 6);
        assert.deepEqual(await store.range(project.hash, 'ranged', 2, 4), sent.slice(1, 4));
        assert.deepEqual(seqs(await store.range(project.hash, 'ranged', 5, 99)), [5, 6]);
        assert.deepEqual(seqs(await store.range(project.hash, 'ranged', 3, 3)), [3]);
        assert.deepEqual(await store.range(project.hash, 'ranged', 7, 9), []);
        assert.deepEqual(await store.range(project.hash, 'ranged', 4, 2), []);
        assert.deepEqual(await store.range(project.hash, 'nothing', 1, 10), []);
      });
    });

    describe('deleteProject', () => {
      it('removes every message of the project, and only of that project', async () => {
        const other = newProject();
        await store.createProject(other);
        const kept = await send('shared', 'kept', other.hash);
        const gone = await sendMany('shared', 3);
        await store.deleteProject(project.hash);
        assert.deepEqual(await store.history(project.hash, 'shared', { limit: 10 }), []);
        assert.deepEqual(await store.range(project.hash, 'shared', 1, 10), []);
        assert.equal(await store.lastSeq(project.hash, 'shared'), 0);
        assert.equal(
          await store.history(project.hash, 'shared', { limit: 10, after: gone[0]?.id }),
          undefined,
        );
        assert.deepEqual(await store.history(other.hash, 'shared', { limit: 10 }), [kept]);
      });

      it('a project created again under a deleted hash starts its rooms at seq 1', async () => {
        await sendMany('reborn', 2);
        await store.deleteProject(project.hash);
        await store.createProject(project);
        const again = await send('reborn', 'first again');
        assert.equal(again.seq, 1);
        assert.deepEqual(await store.history(project.hash, 'reborn', { limit: 10 }), [again]);
      });
    });

    describe('lifecycle', () => {
      it('ping resolves while the store is open', async () => {
        await store.ping();
      });

      it('close waits for appends made just before it', async () => {
        const pending = [send('closing', 'a'), send('closing', 'b')];
        await store.close();
        assert.deepEqual(seqs(await Promise.all(pending)), [1, 2]);
      });

      it('close twice is safe', async () => {
        await store.close();
        await store.close();
      });
    });
  });
}
