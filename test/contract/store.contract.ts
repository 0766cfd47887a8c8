/**
 * The Store contract as a suite every implementation runs (see src/store/store.ts). The factory
 * gives a new Store per test, which the suite closes; projects get fresh random hashes, so a
 * factory may also hand out stores over one shared database. Tests of the purge therefore give
 * retention rules to their own projects only, except where they say so.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  isDuplicate,
  noSettings,
  type Project,
  type ProjectSettings,
  type Revocations,
  type RoomMessage,
  type StoredRoom,
} from '../../src/domain.js';
import type { Appended, PurgeOptions, Store } from '../../src/store/store.js';

/** What a test may ask of the store it gets. */
export interface ContractStoreOptions {
  idempotencyWindowMs?: number;
}

export function newProject(name = 'test', settings: ProjectSettings = noSettings()): Project {
  return {
    hash: randomBytes(8).toString('hex'),
    name,
    jwtSecret: randomBytes(16).toString('hex'),
    createdAt: new Date().toISOString(),
    settings,
  };
}

/** The stored message an append answered; fails on a duplicate's answer. */
export function stored(appended: Appended): RoomMessage {
  assert.ok(!isDuplicate(appended), `expected a stored message, got ${JSON.stringify(appended)}`);
  return appended;
}

/** Settings with only the given retention values (the rest null). */
function retention(values: Partial<ProjectSettings['retention']>): ProjectSettings {
  const settings = noSettings();
  Object.assign(settings.retention, values);
  return settings;
}

const DAY_MS = 86_400_000;
const NO_DEFAULTS = { maxAgeSeconds: null, maxMessagesPerRoom: null };

/** Resolves once Date.now() is past `ts`: a message appended then has a later ts. */
async function pastMs(ts: number): Promise<void> {
  while (Date.now() <= ts) await new Promise((resolve) => setImmediate(resolve));
}

function seqs(messages: readonly RoomMessage[] | undefined): number[] {
  assert.ok(messages, 'expected a list of messages, got undefined');
  return messages.map((m) => m.seq);
}

export function storeContract(
  name: string,
  factory: (options?: ContractStoreOptions) => Promise<Store>,
): void {
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
      return stored(await store.append({ project: hash, room, payload, from: 'alice' }));
    }

    async function sendMany(
      room: string,
      count: number,
      hash = project.hash,
    ): Promise<RoomMessage[]> {
      const sent: RoomMessage[] = [];
      for (let i = 1; i <= count; i++) sent.push(await send(room, `m${i}`, hash));
      return sent;
    }

    function sendKeyed(room: string, payload: string, key: string, hash = project.hash) {
      return store.append({ project: hash, room, payload, from: 'alice', idempotencyKey: key });
    }

    /** A project with these retention values, created in the store. */
    async function projectKeeping(values: Partial<ProjectSettings['retention']>) {
      const created = newProject('retained', retention(values));
      await store.createProject(created);
      return created;
    }

    /** Calls purgeExpired until a call removes fewer than `limit`; answers each call's count. */
    async function purgeAll(options: Partial<PurgeOptions> = {}): Promise<number[]> {
      const full: PurgeOptions = {
        now: Date.now(),
        defaults: NO_DEFAULTS,
        idempotencyWindowMs: DAY_MS,
        limit: 1000,
        ...options,
      };
      const counts: number[] = [];
      for (let call = 0; call < 1000; call++) {
        const removed = await store.purgeExpired(full);
        counts.push(removed);
        if (removed < full.limit) return counts;
      }
      throw new Error(`purgeExpired did not finish: ${counts.join(',')}`);
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
          const { jwtSecret: _, settings: __, ...summary } = p;
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
        const sent = stored(
          await store.append({
            project: project.hash,
            room,
            payload: 'p',
            from: 'ñ 😀',
          }),
        );
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

    describe('project settings', () => {
      const some = (): ProjectSettings => ({
        retention: { maxAgeSeconds: 3600, maxMessagesPerRoom: null },
        limits: { maxConnections: 10, maxConnectionsPerUser: null, maxMessagesPerSecond: 5 },
      });

      it('createProject stores the settings; getProject and getProjects return them, listProjects does not', async () => {
        const configured = newProject('configured', some());
        await store.createProject(configured);
        assert.deepEqual(await store.getProject(configured.hash), configured);
        assert.deepEqual(await store.getProjects([configured.hash]), [configured]);
        const summary = (await store.listProjects()).find((p) => p.hash === configured.hash);
        assert.deepEqual(summary, {
          hash: configured.hash,
          name: configured.name,
          createdAt: configured.createdAt,
        });
      });

      it('updateProject with a name only renames and keeps the settings', async () => {
        const configured = newProject('before', some());
        await store.createProject(configured);
        const renamed = { ...configured, name: 'after' };
        assert.deepEqual(await store.updateProject(configured.hash, { name: 'after' }), renamed);
        assert.deepEqual(await store.getProject(configured.hash), renamed);
      });

      it('updateProject with settings only replaces them whole and keeps the name', async () => {
        await store.updateProject(project.hash, { settings: some() });
        const changed = noSettings();
        changed.retention.maxMessagesPerRoom = 50;
        const expected = { ...project, settings: changed };
        assert.deepEqual(await store.updateProject(project.hash, { settings: changed }), expected);
        assert.deepEqual(await store.getProject(project.hash), expected);
        assert.deepEqual(await store.getProjects([project.hash]), [expected]);
      });

      it('updateProject with both changes both; with neither answers the project unchanged', async () => {
        const expected = { ...project, name: 'both', settings: some() };
        assert.deepEqual(
          await store.updateProject(project.hash, { name: 'both', settings: some() }),
          expected,
        );
        assert.deepEqual(await store.updateProject(project.hash, {}), expected);
      });

      it('updateProject of an unknown hash resolves undefined and creates nothing', async () => {
        const unknown = newProject().hash;
        assert.equal(
          await store.updateProject(unknown, { name: 'x', settings: some() }),
          undefined,
        );
        assert.equal(await store.getProject(unknown), undefined);
      });
    });

    describe('idempotency keys', () => {
      it('the same key twice stores one message; the second answers its place with duplicate: true', async () => {
        const first = stored(await sendKeyed('keyed', 'once', 'k-1'));
        const again = await sendKeyed('keyed', 'once', 'k-1');
        assert.deepEqual(again, { duplicate: true, room: 'keyed', id: first.id, seq: first.seq });
        assert.deepEqual(await store.history(project.hash, 'keyed', { limit: 10 }), [first]);
        assert.equal(await store.lastSeq(project.hash, 'keyed'), 1);
        assert.equal((await send('keyed', 'next')).seq, 2, 'the duplicate took no seq');
      });

      it('a used key makes a duplicate whatever the room, payload or sender', async () => {
        const first = stored(await sendKeyed('here', 'one', 'k-any'));
        const elsewhere = await store.append({
          project: project.hash,
          room: 'there',
          payload: 'two',
          from: 'bob',
          idempotencyKey: 'k-any',
        });
        assert.deepEqual(elsewhere, { duplicate: true, room: 'here', id: first.id, seq: 1 });
        assert.deepEqual(await store.history(project.hash, 'there', { limit: 10 }), []);
        assert.equal(await store.lastSeq(project.hash, 'there'), 0);
      });

      it('two projects may use the same key: each stores its message', async () => {
        const other = newProject();
        await store.createProject(other);
        const mine = stored(await sendKeyed('shared-key', 'mine', 'k-both'));
        const theirs = stored(await sendKeyed('shared-key', 'theirs', 'k-both', other.hash));
        assert.notEqual(mine.id, theirs.id);
        assert.equal(theirs.seq, 1);
        assert.deepEqual(await store.history(other.hash, 'shared-key', { limit: 10 }), [theirs]);
        // In each project the key stays in force, for that project's message.
        for (const [hash, first] of [
          [project.hash, mine],
          [other.hash, theirs],
        ] as const) {
          assert.deepEqual(await sendKeyed('shared-key', 'again', 'k-both', hash), {
            duplicate: true,
            room: 'shared-key',
            id: first.id,
            seq: 1,
          });
        }
      });

      it('a key twice in one batch: the first is stored, the second is its duplicate', async () => {
        const [first, copy, plain, copyElsewhere] = await Promise.all([
          sendKeyed('batch', 'one', 'k-batch'),
          sendKeyed('batch', 'two', 'k-batch'),
          send('batch', 'three'),
          sendKeyed('other-room', 'four', 'k-batch'),
        ]);
        const kept = stored(first as Appended);
        assert.equal(kept.seq, 1);
        const place = { duplicate: true, room: 'batch', id: kept.id, seq: 1 };
        assert.deepEqual(copy, place);
        assert.deepEqual(copyElsewhere, place);
        assert.equal(plain?.seq, 2, 'the copy took no seq');
        assert.deepEqual(
          (await store.history(project.hash, 'batch', { limit: 10 }))?.map((m) => m.payload),
          ['one', 'three'],
        );
        assert.equal(await store.lastSeq(project.hash, 'other-room'), 0);
      });

      it('20 appends with one key at once store exactly one message', async () => {
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) => sendKeyed('burst', `copy ${i}`, 'k-burst')),
        );
        const kept = answers.filter((answer) => !isDuplicate(answer));
        assert.equal(kept.length, 1);
        const place = { room: 'burst', id: stored(kept[0] as Appended).id, seq: 1 };
        for (const answer of answers) {
          assert.deepEqual({ room: answer.room, id: answer.id, seq: answer.seq }, place);
        }
        assert.equal(answers.filter(isDuplicate).length, 19);
        assert.equal((await store.history(project.hash, 'burst', { limit: 50 }))?.length, 1);
      });

      it('a key first used longer ago than the window counts as unused, and is then used again', async () => {
        await store.close();
        const windowMs = 20;
        store = await factory({ idempotencyWindowMs: windowMs });
        if (!(await store.getProject(project.hash))) await store.createProject(project);
        const first = stored(await sendKeyed('window', 'first', 'k-window'));
        assert.equal(isDuplicate(await sendKeyed('window', 'within', 'k-window')), true);
        await pastMs(first.ts + windowMs);
        const second = stored(await sendKeyed('window', 'after', 'k-window'));
        assert.equal(second.seq, 2);
        assert.deepEqual(await sendKeyed('window', 'again', 'k-window'), {
          duplicate: true,
          room: 'window',
          id: second.id,
          seq: 2,
        });
      });

      it('a keyed message to a missing project rejects alone and leaves its key unused', async () => {
        const missing = newProject();
        const results = await Promise.allSettled([
          sendKeyed('mixed-keys', 'good', 'k-good'),
          sendKeyed('mixed-keys', 'to nowhere', 'k-lost', missing.hash),
          sendKeyed('mixed-keys', 'also good', 'k-other'),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ['fulfilled', 'rejected', 'fulfilled'],
        );
        await store.createProject(missing);
        const later = stored(
          await sendKeyed('mixed-keys', 'now it exists', 'k-lost', missing.hash),
        );
        assert.equal(later.seq, 1);
        assert.equal(isDuplicate(await sendKeyed('mixed-keys', 'again', 'k-good')), true);
        assert.deepEqual(
          (await store.history(project.hash, 'mixed-keys', { limit: 10 }))?.map((m) => m.seq),
          [1, 2],
        );
      });

      it('deleting a project removes its keys: a project created again under its hash uses them anew', async () => {
        const before = stored(await sendKeyed('reborn-keys', 'before', 'k-reborn'));
        assert.equal(isDuplicate(await sendKeyed('reborn-keys', 'copy', 'k-reborn')), true);
        await store.deleteProject(project.hash);
        await store.createProject(project);
        const again = stored(await sendKeyed('reborn-keys', 'after', 'k-reborn'));
        assert.equal(again.seq, 1);
        assert.notEqual(again.id, before.id);
        assert.equal(again.payload, 'after');
      });
    });

    describe('history since', () => {
      beforeEach(async () => {
        await sendMany('positions', 10);
      });
      const since = (after: number, limit: number) =>
        store.history(project.hash, 'positions', { since: after, limit });

      it('returns the oldest `limit` messages with seq > since, oldest first', async () => {
        assert.deepEqual(seqs(await since(4, 3)), [5, 6, 7]);
        assert.deepEqual(seqs(await since(0, 2)), [1, 2]);
        assert.deepEqual(seqs(await since(8, 10)), [9, 10]);
      });

      it('since the newest seq or beyond returns []', async () => {
        assert.deepEqual(await since(10, 5), []);
        assert.deepEqual(await since(1000, 5), []);
      });
    });

    describe('purgeExpired', () => {
      it('by count keeps the newest N messages of each room of the project, and no other project loses any', async () => {
        const kept = await projectKeeping({ maxMessagesPerRoom: 3 });
        await sendMany('long', 10, kept.hash);
        await sendMany('short', 2, kept.hash);
        const untouched = await sendMany('long', 10);
        assert.deepEqual(await purgeAll(), [7]);
        assert.deepEqual(seqs(await store.history(kept.hash, 'long', { limit: 100 })), [8, 9, 10]);
        assert.deepEqual(seqs(await store.history(kept.hash, 'short', { limit: 100 })), [1, 2]);
        assert.deepEqual(await store.history(project.hash, 'long', { limit: 100 }), untouched);
        assert.equal(await store.lastSeq(kept.hash, 'long'), 10);
        assert.equal((await send('long', 'next', kept.hash)).seq, 11);
        assert.deepEqual(await purgeAll(), [1]);
        assert.deepEqual(seqs(await store.history(kept.hash, 'long', { limit: 100 })), [9, 10, 11]);
      });

      it('by age removes the messages older than maxAgeSeconds, by ts', async () => {
        const aged = await projectKeeping({ maxAgeSeconds: 60 });
        const old = await sendMany('aged', 3, aged.hash);
        await pastMs(Math.max(...old.map((m) => m.ts)));
        const fresh = [
          await send('aged', 'new 1', aged.hash),
          await send('aged', 'new 2', aged.hash),
        ];
        const firstFresh = fresh[0]?.ts ?? 0;
        // Exactly 60 s after the first fresh message: every older one is past the age, it is not.
        await purgeAll({ now: firstFresh + 60_000 });
        assert.deepEqual(await store.history(aged.hash, 'aged', { limit: 100 }), fresh);
        assert.deepEqual(await store.range(aged.hash, 'aged', 1, 3), []);
      });

      it("a project's own values override the defaults; a null falls back to the default", async () => {
        const own = await projectKeeping({ maxAgeSeconds: 3600, maxMessagesPerRoom: 2 });
        const ageOnly = await projectKeeping({ maxAgeSeconds: 3600 });
        const none = await projectKeeping({});
        for (const p of [own, ageOnly, none]) await sendMany('mixed', 7, p.hash);
        // Defaults that apply to every project of a shared database: other tests' rows may go too.
        await purgeAll({
          now: Date.now() + 60_000,
          defaults: { maxAgeSeconds: 1, maxMessagesPerRoom: 5 },
        });
        assert.deepEqual(seqs(await store.history(own.hash, 'mixed', { limit: 100 })), [6, 7]);
        assert.deepEqual(
          seqs(await store.history(ageOnly.hash, 'mixed', { limit: 100 })),
          [3, 4, 5, 6, 7],
        );
        assert.deepEqual(await store.history(none.hash, 'mixed', { limit: 100 }), []);
        assert.equal(await store.lastSeq(none.hash, 'mixed'), 7);
      });

      it('a room emptied by the purge keeps its last seq: lastSeq and the next message go on from it', async () => {
        // An hour, and purges an hour and a second ahead: what this test leaves is not due for
        // the purges of the other tests, which count what they remove.
        const aged = await projectKeeping({ maxAgeSeconds: 3600 });
        const later = () => Date.now() + 3_601_000;
        await sendMany('emptied', 3, aged.hash);
        await purgeAll({ now: later() });
        assert.deepEqual(await store.history(aged.hash, 'emptied', { limit: 10 }), []);
        assert.equal(await store.lastSeq(aged.hash, 'emptied'), 3);
        const next = await send('emptied', 'after the purge', aged.hash);
        assert.equal(next.seq, 4);
        assert.deepEqual(await store.history(aged.hash, 'emptied', { limit: 10, since: 0 }), [
          next,
        ]);
        await purgeAll({ now: later() });
        assert.equal(await store.lastSeq(aged.hash, 'emptied'), 4);
        assert.equal((await send('emptied', 'again', aged.hash)).seq, 5);
      });

      it('idempotency keys outlive their messages, and go once older than the window', async () => {
        const kept = await projectKeeping({ maxMessagesPerRoom: 1 });
        const first = stored(await sendKeyed('keys', 'first', 'k-purge', kept.hash));
        await send('keys', 'second', kept.hash);
        await purgeAll();
        assert.deepEqual(await store.range(kept.hash, 'keys', 1, 1), [], 'the message went');
        assert.deepEqual(await sendKeyed('keys', 'retry', 'k-purge', kept.hash), {
          duplicate: true,
          room: 'keys',
          id: first.id,
          seq: 1,
        });
        // Every key of a shared database is older than a zero window: other tests' keys go too.
        await purgeAll({ now: Date.now() + 1, idempotencyWindowMs: 0 });
        const anew = stored(await sendKeyed('keys', 'anew', 'k-purge', kept.hash));
        assert.equal(anew.seq, 3);
        await purgeAll();
        assert.deepEqual(await store.history(kept.hash, 'keys', { limit: 10 }), [anew]);
      });

      it('removes at most `limit` rows per call; repeated calls finish, then one removes none', async () => {
        const kept = await projectKeeping({ maxMessagesPerRoom: 1 });
        for (const room of ['a', 'b', 'c']) await sendMany(room, 9, kept.hash);
        assert.deepEqual(await purgeAll({ limit: 5 }), [5, 5, 5, 5, 4]);
        assert.deepEqual(await purgeAll({ limit: 5 }), [0]);
        for (const room of ['a', 'b', 'c']) {
          assert.deepEqual(seqs(await store.history(kept.hash, room, { limit: 10 })), [9]);
        }
      });

      it('walks many rooms in bounded calls and purges each of them once', async () => {
        const kept = await projectKeeping({ maxMessagesPerRoom: 1 });
        const rooms = Array.from({ length: 600 }, (_, i) => `room-${i}`);
        await Promise.all(
          rooms.flatMap((room) => [send(room, 'old', kept.hash), send(room, 'new', kept.hash)]),
        );
        assert.deepEqual(await purgeAll({ limit: 250 }), [250, 250, 100]);
        const left = await Promise.all(
          rooms.map(async (room) => seqs(await store.history(kept.hash, room, { limit: 10 }))),
        );
        assert.deepEqual(
          left,
          rooms.map(() => [2]),
        );
      });

      it('with a limit below 1 removes nothing', async () => {
        const kept = await projectKeeping({ maxMessagesPerRoom: 1 });
        await sendMany('zero', 3, kept.hash);
        assert.equal(
          await store.purgeExpired({
            now: Date.now(),
            defaults: NO_DEFAULTS,
            idempotencyWindowMs: DAY_MS,
            limit: 0,
          }),
          0,
        );
        assert.equal((await store.history(kept.hash, 'zero', { limit: 10 }))?.length, 3);
        assert.deepEqual(await purgeAll(), [2]);
      });
    });

    describe('rooms and storedMessages', () => {
      /** The room as `rooms` lists it, from the last message appended to it. */
      const listed = (last: RoomMessage): StoredRoom => ({
        room: last.room,
        lastSeq: last.seq,
        lastTs: last.ts,
      });
      const inCodePointOrder = (names: readonly string[]): string[] =>
        [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

      it('rooms lists each room that had a message once, by name in code-point order, with lastSeq and the ts of its last message', async () => {
        // U+FFFD sorts before U+1F600 by code point, after it by UTF-16 code unit.
        const names = ['b', 'a', 'B', 'a b', 'a-', 'é', '\u{1F600}', '\uFFFD', 'ab', 'a'];
        const last = new Map<string, RoomMessage>();
        for (const room of names) last.set(room, await send(room, `to ${room}`));
        const other = newProject();
        await store.createProject(other);
        await send('aa', 'elsewhere', other.hash);
        await store.lastSeq(project.hash, 'never');
        const expected = inCodePointOrder([...last.keys()]).map((room) =>
          listed(last.get(room) as RoomMessage),
        );
        assert.deepEqual(
          expected.map((room) => room.room),
          ['B', 'a', 'a b', 'a-', 'ab', 'b', 'é', '\uFFFD', '\u{1F600}'],
        );
        assert.deepEqual(await store.rooms(project.hash, undefined, 100), expected);
        assert.equal((expected[1] as StoredRoom).lastSeq, 2, 'room a had two messages');
        assert.deepEqual(await store.rooms(other.hash, undefined, 100), [
          {
            room: 'aa',
            lastSeq: 1,
            lastTs: (await store.history(other.hash, 'aa', { limit: 1 }))?.[0]?.ts,
          },
        ]);
        assert.deepEqual(await store.rooms(newProject().hash, undefined, 100), []);
      });

      it('rooms pages by name: after is exclusive (a room or any name between), at most limit, [] past the end or for a limit below 1', async () => {
        const last = new Map<string, RoomMessage>();
        for (const room of ['r1', 'r2', 'r3', 'r4', 'r5']) last.set(room, await send(room, 'x'));
        const page = async (after: string | undefined, limit: number) =>
          (await store.rooms(project.hash, after, limit)).map((room) => room.room);
        assert.deepEqual(await page(undefined, 2), ['r1', 'r2']);
        assert.deepEqual(await page('r2', 2), ['r3', 'r4']);
        assert.deepEqual(await page('r4', 2), ['r5']);
        assert.deepEqual(await page('r5', 2), []);
        assert.deepEqual(await page('r2a', 10), ['r3', 'r4', 'r5']);
        assert.deepEqual(await page('', 1), ['r1']);
        assert.deepEqual(await page('r', 1), ['r1']);
        assert.deepEqual(await page('r3\u0000', 10), ['r4', 'r5'], 'a NUL in after');
        assert.deepEqual(await page(undefined, 0), []);
        assert.deepEqual(await page(undefined, -1), []);
        assert.deepEqual(await page(undefined, 2.9), ['r1', 'r2']);
        assert.deepEqual(await store.rooms(project.hash, 'r3', 1), [
          listed(last.get('r4') as RoomMessage),
        ]);
      });

      it('a room the purge emptied is still listed with its lastSeq and the ts of its last message; one it thinned, with its newest', async () => {
        // As in the test of emptied rooms: an hour, purged an hour and a second ahead.
        const aged = await projectKeeping({ maxAgeSeconds: 3600 });
        const thinned = await projectKeeping({ maxMessagesPerRoom: 1 });
        const emptied = (await sendMany('emptied', 3, aged.hash)).at(-1) as RoomMessage;
        const kept = (await sendMany('thinned', 3, thinned.hash)).at(-1) as RoomMessage;
        await purgeAll({ now: Date.now() + 3_601_000 });
        assert.deepEqual(await store.history(aged.hash, 'emptied', { limit: 10 }), []);
        assert.deepEqual(await store.rooms(aged.hash, undefined, 10), [listed(emptied)]);
        assert.deepEqual(await store.rooms(thinned.hash, undefined, 10), [listed(kept)]);
        const next = await send('emptied', 'after the purge', aged.hash);
        const beside = await send('besides', 'a room with messages only', aged.hash);
        assert.deepEqual(await store.rooms(aged.hash, undefined, 10), [
          listed(beside),
          listed(next),
        ]);
        await purgeAll({ now: Date.now() + 3_601_000 });
        assert.deepEqual(await store.rooms(aged.hash, undefined, 10), [
          listed(beside),
          listed(next),
        ]);
        assert.deepEqual(await store.rooms(aged.hash, 'besides', 10), [listed(next)]);
        assert.deepEqual(await store.rooms(aged.hash, undefined, 1), [listed(beside)]);
      });

      it('a duplicate adds no room; a deleted project has no rooms, also when created again', async () => {
        const first = stored(await sendKeyed('keyed', 'one', 'k-rooms'));
        assert.equal(isDuplicate(await sendKeyed('elsewhere', 'two', 'k-rooms')), true);
        assert.deepEqual(await store.rooms(project.hash, undefined, 10), [listed(first)]);
        await store.deleteProject(project.hash);
        assert.deepEqual(await store.rooms(project.hash, undefined, 10), []);
        await store.createProject(project);
        assert.deepEqual(await store.rooms(project.hash, undefined, 10), []);
      });

      it('storedMessages counts the messages stored now: of a project, and of every project', async () => {
        const other = newProject();
        await store.createProject(other);
        const before = await store.storedMessages(undefined);
        assert.equal(await store.storedMessages(project.hash), 0);
        await sendMany('one', 3);
        await sendMany('two', 2);
        await sendMany('one', 4, other.hash);
        assert.equal(isDuplicate(await sendKeyed('one', 'x', 'k-count')), false);
        assert.equal(isDuplicate(await sendKeyed('one', 'x', 'k-count')), true);
        assert.equal(await store.storedMessages(project.hash), 6);
        assert.equal(await store.storedMessages(other.hash), 4);
        assert.equal(await store.storedMessages(newProject().hash), 0);
        assert.equal(await store.storedMessages(undefined), before + 10);
        await store.deleteProject(other.hash);
        assert.equal(await store.storedMessages(undefined), before + 6);
      });

      it('storedMessages no longer counts what the purge removed', async () => {
        const thinned = await projectKeeping({ maxMessagesPerRoom: 2 });
        await sendMany('a', 5, thinned.hash);
        await sendMany('b', 1, thinned.hash);
        assert.equal(await store.storedMessages(thinned.hash), 6);
        await purgeAll();
        assert.equal(await store.storedMessages(thinned.hash), 3);
      });
    });

    describe('token revocations', () => {
      const entries = (revocations: Map<string, Revocations>) =>
        [...revocations].map(([hash, { all, users }]) => [hash, all, [...users].sort()]);

      it('a project never revoked has no entry; an empty list answers an empty map', async () => {
        assert.deepEqual(entries(await store.revocations([project.hash, newProject().hash])), []);
        assert.deepEqual(entries(await store.revocations([])), []);
      });

      it('revokeTokens of a user answers true and stores that user’s not-before, in that project only', async () => {
        const other = newProject();
        await store.createProject(other);
        assert.equal(await store.revokeTokens(project.hash, 'alice', 1_700_000_000), true);
        assert.equal(await store.revokeTokens(project.hash, 'Zoë 🚀', 1_700_000_001), true);
        assert.deepEqual(entries(await store.revocations([project.hash, other.hash])), [
          [
            project.hash,
            null,
            [
              ['Zoë 🚀', 1_700_000_001],
              ['alice', 1_700_000_000],
            ],
          ],
        ]);
      });

      it('a not-before only moves forward: an earlier one changes nothing', async () => {
        await store.revokeTokens(project.hash, 'alice', 2_000_000_000);
        await store.revokeTokens(project.hash, undefined, 1_900_000_000);
        assert.equal(await store.revokeTokens(project.hash, 'alice', 1_000_000_000), true);
        assert.equal(await store.revokeTokens(project.hash, undefined, 1_000_000_000), true);
        assert.deepEqual(entries(await store.revocations([project.hash])), [
          [project.hash, 1_900_000_000, [['alice', 2_000_000_000]]],
        ]);
        await store.revokeTokens(project.hash, 'alice', 2_000_000_005);
        assert.deepEqual(entries(await store.revocations([project.hash])), [
          [project.hash, 1_900_000_000, [['alice', 2_000_000_005]]],
        ]);
      });

      it('the project-wide not-before drops the users’ it covers and keeps later ones; a covered user’s is not stored', async () => {
        await store.revokeTokens(project.hash, 'early', 100);
        await store.revokeTokens(project.hash, 'equal', 200);
        await store.revokeTokens(project.hash, 'late', 300);
        assert.equal(await store.revokeTokens(project.hash, undefined, 200), true);
        assert.deepEqual(entries(await store.revocations([project.hash])), [
          [project.hash, 200, [['late', 300]]],
        ]);
        assert.equal(await store.revokeTokens(project.hash, 'covered', 150), true);
        assert.equal(await store.revokeTokens(project.hash, 'same', 200), true);
        assert.deepEqual(entries(await store.revocations([project.hash])), [
          [project.hash, 200, [['late', 300]]],
        ]);
      });

      it('revokeTokens of an unknown project answers false and stores nothing', async () => {
        const unknown = newProject().hash;
        assert.equal(await store.revokeTokens(unknown, 'alice', 100), false);
        assert.equal(await store.revokeTokens(unknown, undefined, 100), false);
        assert.deepEqual(entries(await store.revocations([unknown])), []);
      });

      it('answers 1,200 hashes at once, those with revocations spread over all of them', async () => {
        const hashes = [project.hash];
        const expected: unknown[] = [];
        while (hashes.length < 1200) {
          const extra = newProject(`p${hashes.length}`);
          if (hashes.length % 3 === 0) {
            await store.createProject(extra);
            await store.revokeTokens(extra.hash, `u${hashes.length}`, hashes.length);
            expected.push([extra.hash, null, [[`u${hashes.length}`, hashes.length]]]);
          }
          hashes.push(extra.hash);
        }
        const sorted = (list: unknown[]) =>
          list.map((entry) => JSON.stringify(entry)).sort((a, b) => (a < b ? -1 : 1));
        assert.deepEqual(
          sorted(entries(await store.revocations([...hashes, 'a\u0000b', project.hash]))),
          sorted(expected),
        );
      });

      it('deleteProject removes the project’s revocations: created again, it has none', async () => {
        await store.revokeTokens(project.hash, 'alice', 100);
        await store.revokeTokens(project.hash, undefined, 50);
        assert.equal(await store.deleteProject(project.hash), true);
        assert.deepEqual(entries(await store.revocations([project.hash])), []);
        await store.createProject(project);
        assert.deepEqual(entries(await store.revocations([project.hash])), []);
        assert.deepEqual(await store.getProject(project.hash), project);
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
