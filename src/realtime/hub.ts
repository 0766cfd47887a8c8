/**
 * This instance's index of who is where: project → connections, and project → room → members.
 * It owns the bus subscriptions that follow from it: a room's topic while the room has a local
 * member, a project's topic while the project has a local connection.
 */
import { type Bus, projectTopic, roomTopic } from '../bus/bus.js';
import type { RoomMessage } from '../domain.js';
import { UserError } from '../errors.js';
import type { PreparedFrame } from '../transport/connection.js';
import type { ReplayTarget } from './replay.js';
import { type JoinAnswer, Room, type RoomOptions } from './room.js';
import { RoomStream, type RoomStreamOptions } from './room-stream.js';

/** What the hub needs of a connected client. */
export interface Member extends ReplayTarget {
  readonly project: string;
  /** Its token's `sub`. */
  readonly user: string;
  /** When its token was issued (`iat`, epoch s; undefined: no `iat`), for revocations. */
  readonly issuedAtS: number | undefined;
  /** Whether it asked to be in the room (a join still pending included); false once it is gone. */
  inRoom(room: string): boolean;
  /** The rooms it asked to be in (a join still pending included); none once it is gone. */
  roomNames(): Iterable<string>;
  /**
   * Called once, as the member starts receiving its project's broadcasts, in the same turn: its
   * first frame must go out now, so that nothing delivered can come before it.
   */
  admitted(): void;
  deliver(frame: PreparedFrame): void;
  /** Ends the connection: `message`, when given, goes out as an error frame before the close. */
  close(code: number, reason: string, message?: string): void;
}

export interface HubSource {
  lastSeq(project: string, room: string): Promise<number>;
  range(project: string, room: string, fromSeq: number, toSeq: number): Promise<RoomMessage[]>;
}

export interface HubEvents {
  /** A room message reached this instance's members, in seq order: serialise and send it. */
  onRoomMessage(project: string, members: ReadonlySet<Member>, message: RoomMessage): void;
  onGapFilled(count: number): void;
  onRoomsChanged(count: number): void;
  onSubscriptionsChanged(count: number): void;
}

export interface HubOptions extends RoomOptions {
  stream: RoomStreamOptions;
}

interface ProjectIndex {
  readonly members: Set<Member>;
  readonly rooms: Map<string, Room>;
  ready: Promise<void> | undefined;
  /** Connections waiting for `ready`: the index stays while they wait. */
  admitting: number;
}

export class Hub {
  readonly #projects = new Map<string, ProjectIndex>();
  readonly #bus: Bus;
  readonly #source: HubSource;
  readonly #events: HubEvents;
  #roomCount = 0;
  #subscriptions = 0;

  readonly #options: HubOptions;

  constructor(bus: Bus, source: HubSource, events: HubEvents, options: HubOptions) {
    this.#bus = bus;
    this.#source = source;
    this.#events = events;
    this.#options = options;
  }

  /**
   * Adds a connection once the project's broadcasts reach this instance, and calls its `admitted`
   * in the same turn. Rejects, leaving nothing behind, when the project's topic cannot be
   * subscribed.
   */
  async add(member: Member): Promise<void> {
    let index = this.#projects.get(member.project);
    if (index === undefined) {
      const created: ProjectIndex = {
        members: new Set(),
        rooms: new Map(),
        ready: undefined,
        admitting: 0,
      };
      this.#projects.set(member.project, created);
      created.ready = this.#subscribe(projectTopic(member.project)).finally(() => {
        created.ready = undefined;
      });
      index = created;
    }
    if (index.ready !== undefined) {
      index.admitting++;
      try {
        await index.ready;
      } catch (error) {
        index.admitting--;
        this.#releaseIfEmpty(member.project, index);
        throw error;
      }
      index.admitting--;
    }
    index.members.add(member);
    member.admitted();
  }

  /** Removes a connection from its project and every room it was in. */
  remove(member: Member): void {
    const index = this.#projects.get(member.project);
    if (index === undefined || !index.members.delete(member)) return;
    for (const room of member.roomNames()) this.leave(member, room);
    this.#releaseIfEmpty(member.project, index);
  }

  /**
   * Makes `member` a member of `room` from the room's current position, or, with `since`, from
   * there (a replay first); `answer` sends `joined`. Returns undefined when that was done at once,
   * or a promise that settles once `joined` was answered, rejecting with the error to send.
   */
  join(
    member: Member,
    roomName: string,
    since: number | undefined,
    answer: JoinAnswer,
  ): Promise<void> | undefined {
    const index = this.#projects.get(member.project);
    if (index === undefined) return undefined;
    let room = index.rooms.get(roomName);
    if (room === undefined) {
      room = this.#openRoom(member.project, roomName);
      index.rooms.set(roomName, room);
      this.#events.onRoomsChanged(++this.#roomCount);
    }
    const joined = room.join(member, since, answer);
    if (joined === undefined) return undefined;
    const opened = room;
    // A member that left (or went) while its join waited leaves the room with nobody in it.
    return joined.then(
      () => this.#closeIfIdle(member.project, opened),
      (error: unknown) => {
        this.#closeIfIdle(member.project, opened);
        throw error;
      },
    );
  }

  leave(member: Member, roomName: string): void {
    const room = this.#projects.get(member.project)?.rooms.get(roomName);
    if (room === undefined) return;
    room.leave(member);
    this.#closeIfIdle(member.project, room);
  }

  /** A room message from the bus: ordered by the room's stream, then handed to its members. */
  receiveMessage(project: string, message: RoomMessage): void {
    this.#projects.get(project)?.rooms.get(message.room)?.stream.accept(message);
  }

  /** The connections of a project on this instance (for broadcasts). */
  projectMembers(project: string): ReadonlySet<Member> | undefined {
    return this.#projects.get(project)?.members;
  }

  /** Closes every connection of a project on this instance (it was deleted, or disconnected). */
  closeProject(project: string, code: number, reason: string, message?: string): void {
    const index = this.#projects.get(project);
    if (index === undefined) return;
    for (const member of [...index.members]) member.close(code, reason, message);
  }

  /** Closes every connection of one user of a project on this instance (an admin's disconnect). */
  closeUser(project: string, user: string, code: number, reason: string, message?: string): void {
    this.closeWhere(project, (member) => member.user === user, code, reason, message);
  }

  /** Closes the connections of a project on this instance that `select` picks. */
  closeWhere(
    project: string,
    select: (member: Member) => boolean,
    code: number,
    reason: string,
    message?: string,
  ): void {
    const index = this.#projects.get(project);
    if (index === undefined) return;
    for (const member of [...index.members]) {
      if (select(member)) member.close(code, reason, message);
    }
  }

  closeAll(code: number, reason: string): void {
    for (const project of [...this.#projects.keys()]) this.closeProject(project, code, reason);
  }

  /** The projects that have connections on this instance. */
  projectHashes(): IterableIterator<string> {
    return this.#projects.keys();
  }

  /** After a bus outage: every room reads from the store what it may have missed. */
  catchUp(): void {
    for (const index of this.#projects.values()) {
      for (const room of index.rooms.values()) room.stream.catchUp();
    }
  }

  /**
   * Resolves once every room with members here has delivered every message stored in it so far
   * (read from the store when the bus does not bring it): the last step of a shutdown.
   */
  async settle(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const [project, index] of this.#projects) {
      for (const [name, room] of index.rooms) {
        waits.push(
          this.#source.lastSeq(project, name).then(
            (last) => room.stream.settle(last),
            () => undefined,
          ),
        );
      }
    }
    await Promise.all(waits);
  }

  get roomCount(): number {
    return this.#roomCount;
  }

  #openRoom(project: string, roomName: string): Room {
    const read = (from: number, to: number) => this.#source.range(project, roomName, from, to);
    let room: Room | undefined;
    const stream = new RoomStream(
      { lastSeq: () => this.#source.lastSeq(project, roomName), range: read },
      {
        deliver: (message) => room?.deliver(message),
        onGapFilled: (count) => this.#events.onGapFilled(count),
      },
      this.#options.stream,
    );
    const opened = new Room(
      roomName,
      stream,
      read,
      (members, message) => this.#events.onRoomMessage(project, members, message),
      this.#options,
    );
    room = opened;
    opened.ready = this.#subscribe(roomTopic(project, roomName))
      .then(
        () => stream.start(),
        () => {
          throw new UserError('notDelivered');
        },
      )
      .finally(() => {
        opened.ready = undefined;
      });
    return opened;
  }

  #closeIfIdle(project: string, room: Room): void {
    if (!room.idle || room.closed) return;
    room.close();
    // The project's index may have gone meanwhile (its last connection left while this room was
    // opening): the room is closed all the same, and its topic let go unless a newer room has it.
    const index = this.#projects.get(project);
    const current = index?.rooms.get(room.name);
    if (current === room) index?.rooms.delete(room.name);
    this.#events.onRoomsChanged(--this.#roomCount);
    if (current === undefined || current === room) this.#unsubscribe(roomTopic(project, room.name));
  }

  #releaseIfEmpty(project: string, index: ProjectIndex): void {
    if (index.members.size > 0 || index.admitting > 0 || this.#projects.get(project) !== index) {
      return;
    }
    this.#projects.delete(project);
    this.#unsubscribe(projectTopic(project));
  }

  #subscribe(topic: string): Promise<void> {
    this.#events.onSubscriptionsChanged(++this.#subscriptions);
    return this.#bus.subscribe(topic);
  }

  #unsubscribe(topic: string): void {
    this.#events.onSubscriptionsChanged(--this.#subscriptions);
    this.#bus.unsubscribe(topic).catch(() => undefined);
  }
}
