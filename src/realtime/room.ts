/**
 * One room as this instance serves it: its ordered stream and its members, with each membership's
 * position. A join answers `joined` with the room's LAST at the moment the membership begins, in
 * the same turn as the member starts receiving what comes after it; a join with `since` replays
 * the stored messages after `since` first, while the live ones wait for the member (replay.ts).
 */
import type { RoomMessage } from '../domain.js';
import { CLOSE_CODES, UserError } from '../errors.js';
import { messageFrame } from '../protocol/frames.js';
import type { PrepareFrame } from '../transport/connection.js';
import type { Member } from './hub.js';
import { type ReadRange, Replay, type ReplayOptions } from './replay.js';
import type { RoomStream } from './room-stream.js';

/** How long a join waits, by default, for its room's position before `Store unavailable`. */
export const JOIN_TIMEOUT_MS = 5000;

export interface RoomOptions {
  /** A join with `since` further behind than this answers `recovered: false`. */
  recoveryMaxMessages: number;
  /** How long a join waits for the room's position to be read before it fails. */
  joinTimeoutMs: number;
  /** Live messages held for a recovering member past this many payload bytes close it (4009). */
  maxHeldBytes: number;
  replay: ReplayOptions;
  prepare: PrepareFrame;
}

/** Sends one of the room's messages to its members (serialised once for all). */
export type ToMembers = (members: ReadonlySet<Member>, message: RoomMessage) => void;

/**
 * Answers `joined`: LAST, and whether the replay asked for with `since` follows. It may return a
 * prelude (the presence snapshot): the member's replayed and live messages wait until it settles,
 * so that it goes out right after `joined`, before them.
 */
export type JoinAnswer = (seq: number, recovered: boolean | undefined) => Promise<void> | undefined;

export class Room {
  readonly members = new Set<Member>();
  /** Members whose replay runs; they receive the live messages once it ends. */
  #recovering: Map<Member, Replay> | undefined;
  /** Joins waiting for the room to flow here: the room stays open for them. */
  #joining = 0;
  /** Settles when the topic is subscribed (rejects with `Message could not be delivered`). */
  ready: Promise<void> | undefined;
  readonly name: string;
  readonly stream: RoomStream;
  readonly #read: ReadRange;
  readonly #toMembers: ToMembers;
  readonly #options: RoomOptions;

  constructor(
    name: string,
    stream: RoomStream,
    read: ReadRange,
    toMembers: ToMembers,
    options: RoomOptions,
  ) {
    this.name = name;
    this.stream = stream;
    this.#read = read;
    this.#toMembers = toMembers;
    this.#options = options;
  }

  /** Nobody here needs the room any more. */
  get idle(): boolean {
    return this.members.size === 0 && this.#joining === 0 && !this.#recovering?.size;
  }

  /** The stream's next message, for every member and every replay waiting for it. */
  deliver(message: RoomMessage): void {
    if (this.members.size > 0) this.#toMembers(this.members, message);
    const recovering = this.#recovering;
    if (recovering === undefined || recovering.size === 0) return;
    const overflowing: Member[] = [];
    for (const [member, replay] of recovering) {
      replay.hold(message);
      if (replay.heldBytes > this.#options.maxHeldBytes) overflowing.push(member);
    }
    const { code, reason } = CLOSE_CODES.slowConsumer;
    for (const member of overflowing) member.close(code, reason);
  }

  /**
   * Starts `member`'s membership (again, with `since`) and answers through `answer`. Returns
   * undefined when that was done at once, else a promise that settles once `joined` was answered
   * (a replay then goes on by itself); it rejects with the error to send.
   */
  join(member: Member, since: number | undefined, answer: JoinAnswer): Promise<void> | undefined {
    const flowing = this.ready === undefined && this.stream.started;
    if (since !== undefined) this.#end(member);
    else if (flowing && this.#recovering?.has(member)) {
      // Already joined, its replay still running: it goes on; LAST is where the room is now.
      void answer(this.stream.position ?? 0, undefined);
      return undefined;
    }
    if (flowing) return this.#begin(member, since, answer);
    this.#joining++;
    const whenFlowing = async (): Promise<void> => {
      try {
        await this.ready;
        await this.stream.whenStarted(this.#options.joinTimeoutMs).catch(() => {
          throw new UserError('storeUnavailable');
        });
      } finally {
        this.#joining--;
      }
      return this.#begin(member, since, answer);
    };
    return whenFlowing();
  }

  /** Ends `member`'s membership (and its replay). */
  leave(member: Member): void {
    this.#end(member);
  }

  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    for (const replay of this.#recovering?.values() ?? []) replay.cancel();
    this.#recovering = undefined;
    this.stream.close();
  }

  #end(member: Member): void {
    this.members.delete(member);
    const replay = this.#recovering?.get(member);
    if (replay === undefined) return;
    replay.cancel();
    this.#recovering?.delete(member);
  }

  #begin(member: Member, since: number | undefined, answer: JoinAnswer): Promise<void> | undefined {
    // The member may have left, or gone, while the room started flowing.
    if (!member.inRoom(this.name)) return undefined;
    const last = this.stream.position ?? 0;
    if (
      since === undefined ||
      since > last ||
      last - since > this.#options.recoveryMaxMessages ||
      since === last
    ) {
      const prelude = answer(last, since === undefined ? undefined : since === last);
      if (prelude === undefined) this.members.add(member);
      else this.#holdDuring(member, this.#recover(member, last, last), prelude);
      return undefined;
    }
    const replay = this.#recover(member, since, last);
    return replay.firstPage().then(
      (first) => {
        if (replay.cancelled || !member.inRoom(this.name)) {
          this.#end(member);
          return;
        }
        if (first === undefined) {
          // A message the client misses was removed by retention: no replay, live from LAST on.
          this.#holdDuring(member, replay, answer(last, false));
          return;
        }
        const prelude = answer(last, true);
        const run = () =>
          replay.run(first).then(
            () => this.#handOver(member, replay),
            () => {
              // The store went away mid-replay: the client reconnects and recovers from where it is.
              if (replay.cancelled) return;
              const { code, reason } = CLOSE_CODES.tryAgainLater;
              member.close(code, reason);
            },
          );
        if (prelude === undefined) void run();
        else void prelude.then(run, run);
      },
      (error: unknown) => {
        this.#end(member);
        throw error instanceof UserError ? error : new UserError('storeUnavailable');
      },
    );
  }

  /** A replay of `member` from `since` to `last`, holding the live messages that come meanwhile. */
  #recover(member: Member, since: number, last: number): Replay {
    const replay = new Replay(
      member,
      since,
      last,
      this.#read,
      this.#options.prepare,
      this.#options.replay,
    );
    this.#recovering ??= new Map();
    this.#recovering.set(member, replay);
    return replay;
  }

  /** Nothing to replay: the live messages wait for the prelude, then the member joins. */
  #holdDuring(member: Member, replay: Replay, prelude: Promise<void> | undefined): void {
    if (prelude === undefined) {
      this.#handOver(member, replay);
      return;
    }
    const handOver = () => this.#handOver(member, replay);
    void prelude.then(handOver, handOver);
  }

  /** The replay is over: the live messages it held, then the room's stream, in one turn. */
  #handOver(member: Member, replay: Replay): void {
    if (replay.cancelled || this.#recovering?.get(member) !== replay) return;
    this.#recovering.delete(member);
    for (const message of replay.held) {
      if (message.seq > replay.last) member.deliver(this.#options.prepare(messageFrame(message)));
    }
    this.members.add(member);
  }
}
