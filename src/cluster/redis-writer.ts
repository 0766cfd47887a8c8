import { performance } from 'node:perf_hooks';
import type { Admission, ConnectionLimits, Transition } from './cluster-state.js';
import { judge } from './local-counters.js';
import type { PresenceIndex } from './presence-index.js';
import {
  type Arg,
  asArray,
  asNumber,
  decodeName,
  encodeName,
  type Script,
  type ScriptLink,
} from './redis-link.js';

/** Entries and admissions sent in one call at most: a script stays a few milliseconds long. */
const ENTRIES_PER_CALL = 2000;
const ADMISSIONS_PER_CALL = 500;
/** Entries of dead instances a refresh takes away, and a call of `release` (which has the time). */
const REAP_PER_CALL = 1000;
const REAP_PER_RELEASE_CALL = 5000;

const VERDICTS: readonly Admission[] = ['admitted', 'projectFull', 'userFull'];

interface Ref {
  project: string;
  room: string | null;
  user: string;
}

interface PendingAdmission {
  project: string;
  user: string;
  limits: ConnectionLimits;
  resolve(verdict: Admission): void;
}

interface Batch {
  seq: number;
  mode: 'start' | 'run' | 'release' | 'drain';
  reap: boolean;
  entries: Array<{ key: string; ref: Ref; count: number }>;
  admissions: PendingAdmission[];
  /** The change generation this call brings Redis up to (0: it leaves some behind). */
  covers: number;
}

type Outcome = 'ok' | 'lost' | 'failed';

type Reported = Transition & { seq: number };

type SyncReply =
  | 'lost'
  | { alive: number; more: boolean; verdicts: Admission[]; transitions: Reported[] };

/** A sent call a read may follow: `outcome` says whether it was applied. */
export interface Sent {
  outcome: Promise<boolean>;
}

export interface WriterOptions {
  link: ScriptLink;
  sync: Script;
  /** `${prefix}cs:` */
  keys: string;
  id: string;
  /** How long the lease lasts from each call. */
  leaseMs: number;
  /** How long to wait before trying again after a failed call. */
  retryMs: number;
  /** This instance's own connections; admissions judged by Redis are counted here too. */
  local: PresenceIndex;
  report(transitions: readonly Transition[]): void;
}

/**
 * Brings Redis to this instance's own connections (the SYNC script of redis-scripts.ts), and
 * holds its lease. One call at a time: while one is out, changes gather for the next, so that an
 * answer always says what Redis holds for each entry sent. Entries go as absolute counts, so a
 * call that failed (its answer unknown) is made good by sending the then current counts again.
 */
export class EntryWriter {
  readonly #o: WriterOptions;
  /** What Redis holds for our entries, as far as an answer said (NaN: unknown). */
  readonly #remote = new Map<string, number>();
  /** Entries changed since they were last sent. */
  readonly #dirty = new Map<string, Ref>();
  #admissions: PendingAdmission[] = [];
  #mode: 'start' | 'run' = 'start';
  #refreshDue = true;
  #reapDue = true;
  #seq = 0;
  /** The last call whose answer arrived: Redis may forget the transitions up to it. */
  #acked = 0;
  #alive = 1;
  #synced = false;
  /** Bumped by every change to send; `#sentGen` is the highest a sent call brought Redis to. */
  #gen = 0;
  #sentGen = 0;
  #lastSent: Promise<boolean> = Promise.resolve(true);
  #sendWaiters: Array<{ gen: number; resolve(sent: Sent): void }> = [];
  #loop: Promise<void> | undefined;
  #writing = false;
  #scheduled = false;
  #running = false;
  #retry: NodeJS.Timeout | undefined;
  #onSynced: Array<() => void> = [];

  constructor(options: WriterOptions) {
    this.#o = options;
  }

  /** Whether the last call was answered and the lease is held. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Instances alive at the last answer (1 before any). */
  get alive(): number {
    return this.#alive;
  }

  /** Starts sending; resolves at the first answer, or after `timeoutMs` without one. */
  start(timeoutMs: number): Promise<void> {
    this.#running = true;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#onSynced.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.#kick();
    });
  }

  /** The local count of an entry changed: it goes with the next call. */
  touch(project: string, room: string | null, user: string): void {
    this.#dirty.set(keyOf(project, room, user), { project, room, user });
    this.#gen += 1;
    this.#kick();
  }

  /** Judged by Redis with the next call, against every instance's connections. */
  admit(project: string, user: string, limits: ConnectionLimits): Promise<Admission> {
    return new Promise((resolve) => {
      this.#admissions.push({ project, user, limits, resolve });
      this.#gen += 1;
      this.#kick();
    });
  }

  /** Judged here: this instance's share of each limit, against its own connections. */
  admitLocally(project: string, user: string, limits: ConnectionLimits): Admission {
    const alive = Math.max(1, this.#alive);
    const share = (limit: number | null) => (limit === null ? null : Math.ceil(limit / alive));
    const local = this.#o.local;
    const verdict = judge(
      local.counts(project).connections,
      share(limits.maxConnections),
      local.count(project, null, user),
      share(limits.maxConnectionsPerUser),
    );
    if (verdict === 'admitted') {
      local.change(project, null, user, 1);
      this.touch(project, null, user);
    }
    return verdict;
  }

  /** Resolves once every change made so far has been sent: a read written then sees them. */
  sent(): Promise<Sent> {
    if (this.#gen <= this.#sentGen) return Promise.resolve({ outcome: this.#lastSent });
    return new Promise((resolve) => {
      this.#sendWaiters.push({ gen: this.#gen, resolve });
      this.#kick();
    });
  }

  /** Refreshes the lease with the next call (now, if idle), and reaps dead instances if asked. */
  refresh(reap: boolean): void {
    this.#refreshDue = true;
    if (reap) this.#reapDue = true;
    this.#kick();
  }

  /** Sends nothing more; waits for the call out. What is left is answered without Redis. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#retry);
    await this.#loop;
    for (const admission of this.#admissions.splice(0)) admission.resolve('admitted');
    this.#answerWaiters(false);
  }

  /**
   * Gives up the lease (after `stop`): its entries are taken away, with their transitions, for up
   * to `deadlineMs`; survivors reap what is left on their refreshes.
   */
  async release(deadlineMs: number): Promise<void> {
    if (!this.#synced || !this.#o.link.ready()) return;
    const deadline = performance.now() + deadlineMs;
    let mode: Batch['mode'] = 'release';
    do {
      const batch: Batch = {
        seq: ++this.#seq,
        mode,
        reap: true,
        entries: [],
        admissions: [],
        covers: 0,
      };
      mode = 'drain';
      this.#reapDue = false;
      if ((await this.#send(batch)) !== 'ok') return;
    } while (this.#reapDue && performance.now() < deadline);
    this.#synced = false;
  }

  #kick(): void {
    if (!this.#running || this.#writing || this.#scheduled) return;
    this.#scheduled = true;
    // On the next turn, so that every call of this tick goes in one script call.
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#running && !this.#writing) this.#loop = this.#write();
    });
  }

  async #write(): Promise<void> {
    this.#writing = true;
    // The flag is cleared in the same turn as the last look for work (no await in between), so
    // a kick never falls into a gap where it would be dropped.
    try {
      while (this.#running && this.#hasWork()) {
        if (!this.#o.link.ready()) {
          // Nothing can be sent: whoever waits is answered without Redis; 'ready' kicks again.
          this.#synced = false;
          for (const { project, user, limits, resolve } of this.#admissions.splice(0)) {
            resolve(this.admitLocally(project, user, limits));
          }
          this.#answerWaiters(false);
          return;
        }
        if ((await this.#send(this.#compose())) === 'failed') {
          this.#answerWaiters(false);
          // Tried again soon (or when the link is back), not in a tight loop against a failing Redis.
          clearTimeout(this.#retry);
          this.#retry = setTimeout(() => this.#kick(), this.#o.retryMs);
          return;
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  #hasWork(): boolean {
    return this.#dirty.size > 0 || this.#admissions.length > 0 || this.#refreshDue || this.#reapDue;
  }

  #compose(): Batch {
    const entries: Batch['entries'] = [];
    const local = this.#o.local;
    for (const [key, ref] of this.#dirty) {
      this.#dirty.delete(key);
      const count = local.count(ref.project, ref.room, ref.user);
      // Undone since it was last sent (an enter and an exit in one tick): nothing to send.
      if (count === (this.#remote.get(key) ?? 0)) continue;
      entries.push({ key, ref, count });
      if (entries.length >= ENTRIES_PER_CALL) break;
    }
    const admissions = this.#admissions.splice(0, ADMISSIONS_PER_CALL);
    const complete = this.#dirty.size === 0 && this.#admissions.length === 0;
    const reap = this.#reapDue;
    this.#refreshDue = false;
    this.#reapDue = false;
    const covers = complete ? this.#gen : 0;
    return { seq: ++this.#seq, mode: this.#mode, reap, entries, admissions, covers };
  }

  /** Sends one call; the command is written before this returns (a read may follow it). */
  #send(batch: Batch): Promise<Outcome> {
    const outcome = this.#o.link.run(this.#o.sync, this.#args(batch)).then(
      (reply) => {
        let parsed: SyncReply;
        try {
          parsed = parseSync(reply);
        } catch {
          return this.#failed(batch);
        }
        return this.#received(batch, parsed);
      },
      () => this.#failed(batch),
    );
    const ok = outcome.then((o) => o === 'ok');
    this.#lastSent = ok;
    if (batch.covers > this.#sentGen) {
      this.#sentGen = batch.covers;
      this.#answerWaiters(true, ok);
    }
    return outcome;
  }

  #args(batch: Batch): Arg[] {
    // Projects and rooms repeat from entry to entry: each is encoded once a call.
    const names = new Map<string, Buffer>();
    const name = (value: string) => {
      let encoded = names.get(value);
      if (!encoded) {
        encoded = encodeName(value);
        names.set(value, encoded);
      }
      return encoded;
    };
    const { keys, id, leaseMs } = this.#o;
    const args: Arg[] = [keys, id, leaseMs, batch.seq, this.#acked, batch.mode];
    const releasing = batch.mode === 'release' || batch.mode === 'drain';
    const reap = batch.reap ? (releasing ? REAP_PER_RELEASE_CALL : REAP_PER_CALL) : 0;
    args.push(reap, batch.entries.length);
    for (const { ref, count } of batch.entries) {
      args.push(ref.room === null ? 'p' : 'r', name(ref.project));
      args.push(name(ref.room ?? ''), encodeName(ref.user), count);
    }
    args.push(batch.admissions.length);
    for (const { project, user, limits } of batch.admissions) {
      args.push(name(project), encodeName(user));
      args.push(limitArg(limits.maxConnections), limitArg(limits.maxConnectionsPerUser));
    }
    return args;
  }

  #answerWaiters(sent: boolean, outcome: Promise<boolean> = Promise.resolve(false)): void {
    const ready = sent
      ? this.#sendWaiters.filter((w) => w.gen <= this.#sentGen)
      : this.#sendWaiters;
    this.#sendWaiters = sent ? this.#sendWaiters.filter((w) => w.gen > this.#sentGen) : [];
    for (const waiter of ready) waiter.resolve({ outcome });
  }

  #received(batch: Batch, reply: SyncReply): Outcome {
    if (reply === 'lost') {
      // The lease is gone: Redis holds none of our entries. Take it again and send them all.
      this.#mode = 'start';
      this.#synced = false;
      this.#refreshDue = true;
      this.#remote.clear();
      for (const e of this.#o.local.entries()) {
        this.#dirty.set(keyOf(e.project, e.room, e.user), e);
      }
      this.#admissions.unshift(...batch.admissions);
      return 'lost';
    }
    if (batch.mode === 'start') this.#mode = 'run';
    for (const { key, count } of batch.entries) {
      if (count === 0) this.#remote.delete(key);
      else this.#remote.set(key, count);
    }
    batch.admissions.forEach((admission, i) => {
      const verdict = reply.verdicts[i] ?? 'admitted';
      if (verdict === 'admitted') {
        const key = keyOf(admission.project, null, admission.user);
        this.#o.local.change(admission.project, null, admission.user, 1);
        this.#remote.set(key, (this.#remote.get(key) ?? 0) + 1);
      }
      admission.resolve(verdict);
    });
    this.#alive = reply.alive;
    if (reply.more) this.#reapDue = true;
    // Those of calls up to the last answered one were reported with that answer.
    const transitions = reply.transitions
      .filter((t) => t.seq > this.#acked)
      .map(({ seq: _, ...transition }) => transition);
    this.#acked = batch.seq;
    this.#synced = true;
    for (const resolve of this.#onSynced.splice(0)) resolve();
    this.#o.report(transitions);
    return 'ok';
  }

  #failed(batch: Batch): Outcome {
    // The call may or may not have run: Redis' counts of these entries are unknown until sent again.
    this.#synced = false;
    this.#refreshDue = true;
    if (batch.reap) this.#reapDue = true;
    for (const { key, ref } of batch.entries) {
      this.#remote.set(key, Number.NaN);
      this.#dirty.set(key, ref);
    }
    for (const { project, user, limits, resolve } of batch.admissions) {
      this.#remote.set(keyOf(project, null, user), Number.NaN);
      this.#dirty.set(keyOf(project, null, user), { project, room: null, user });
      resolve(this.admitLocally(project, user, limits));
    }
    return 'failed';
  }
}

function keyOf(project: string, room: string | null, user: string): string {
  // JSON keeps the three apart whatever they contain, and null apart from "null".
  return JSON.stringify([project, room, user]);
}

function limitArg(limit: number | null): string {
  return limit === null ? '' : String(limit);
}

/** Checks and decodes a whole answer of SYNC before any of it is applied. */
function parseSync(value: unknown): SyncReply {
  const reply = asArray(value);
  if (asNumber(reply[0]) === 0) return 'lost';
  const verdicts = asArray(reply[3]).map((code) => {
    const verdict = VERDICTS[asNumber(code)];
    if (!verdict) throw new Error('Redis answered an unknown admission');
    return verdict;
  });
  const reported = asArray(reply[4]);
  const transitions: Reported[] = [];
  for (let i = 0; i + 4 < reported.length; i += 5) {
    transitions.push({
      seq: asNumber(reported[i]),
      present: asNumber(reported[i + 1]) === 1,
      project: decodeName(reported[i + 2]),
      room: decodeName(reported[i + 3]),
      user: decodeName(reported[i + 4]),
    });
  }
  return { alive: asNumber(reply[1]), more: asNumber(reply[2]) === 1, verdicts, transitions };
}
