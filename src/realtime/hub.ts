/**
 * This instance's index of who is where: project → connections, and project → room → members.
 * It owns the bus subscriptions that follow from it: a room's topic while the room has a local
 * member, a project's topic while the project has a local connection.
 */
import { type Bus, projectTopic, roomTopic } from '../bus/bus.js';
import type { RoomMessage } from '../protocol/frames.js';
import type { PreparedFrame } from '../transport/connection.js';
import { RoomStream } from './room-stream.js';

/** What the hub needs of a connected client. */
export interface Member {
  readonly project: string;
  readonly rooms: ReadonlySet<string>;
  deliver(frame: PreparedFrame): void;
  close(code: number, reason: string): void;
}

export interface HubSource {
  lastSeq(project: string, room: string): Promise<number>;
  range(project: string, room: string, fromSeq: number, toSeq: number): Promise<RoomMessage[]>;
}

export interface HubEvents {
  /** A room message reached this instance's members, in seq order: serialise and send it. */
  onRoomMessage(members: ReadonlySet<Member>, message: RoomMessage): void;
  onGapFilled(count: number): void;
  onRoomsChanged(count: number): void;
  onSubscriptionsChanged(count: number): void;
}

interface Room {
  readonly members: Set<Member>;
  readonly stream: RoomStream;
  /** Settles when the topic is subscribed and the stream knows where it starts. */
  ready: Promise<void> | undefined;
}

interface ProjectIndex {
  readonly members: Set<Member>;
  readonly rooms: Map<string, Room>;
  ready: Promise<void> | undefined;
}

export class Hub {
  readonly #projects = new Map<string, ProjectIndex>();
  readonly #bus: Bus;
  readonly #source: HubSource;
  readonly #events: HubEvents;
  #roomCount = 0;
  #subscriptions = 0;

  constructor(bus: Bus, source: HubSource, events: HubEvents) {
    this.#bus = bus;
    this.#source = source;
    this.#events = events;
  }

  /** Adds a connection; the promise settles once the project's broadcasts reach it. */
  add(member: Member): Promise<void> {
    let index = this.#projects.get(member.project);
    if (index === undefined) {
      const created: ProjectIndex = { members: new Set(), rooms: new Map(), ready: undefined };
      this.#projects.set(member.project, created);
      created.ready = this.#subscribe(projectTopic(member.project)).finally(() => {
        created.ready = undefined;
      });
      index = created;
    }
    index.members.add(member);
    return index.ready ?? Promise.resolve();
  }

  /** Removes a connection from its project and every room it was in. */
  remove(member: Member): void {
    const index = this.#projects.get(member.project);
    if (index === undefined || !index.members.delete(member)) return;
    for (const room of member.rooms) this.leave(member, room);
    if (index.members.size === 0) {
      this.#projects.delete(member.project);
      this.#unsubscribe(projectTopic(member.project));
    }
  }

  /**
   * Makes `member` a member of `room`. Returns undefined when the room is already flowing here,
   * or a promise that settles once it is (the caller answers `joined` then).
   */
  join(member: Member, roomName: string): Promise<void> | undefined {
    const index = this.#projects.get(member.project);
    if (index === undefined) return undefined;
    let room = index.rooms.get(roomName);
    if (room === undefined) {
      room = this.#openRoom(member.project, roomName);
      index.rooms.set(roomName, room);
      this.#events.onRoomsChanged(++this.#roomCount);
    }
    room.members.add(member);
    return room.ready;
  }

  leave(member: Member, roomName: string): void {
    const index = this.#projects.get(member.project);
    const room = index?.rooms.get(roomName);
    if (index === undefined || room === undefined || !room.members.delete(member)) return;
    if (room.members.size > 0) return;
    room.stream.close();
    index.rooms.delete(roomName);
    this.#events.onRoomsChanged(--this.#roomCount);
    this.#unsubscribe(roomTopic(member.project, roomName));
  }

  /** A room message from the bus: ordered by the room's stream, then handed to its members. */
  receiveMessage(project: string, message: RoomMessage): void {
    this.#projects.get(project)?.rooms.get(message.room)?.stream.accept(message);
  }

  /** The connections of a project on this instance (for broadcasts). */
  projectMembers(project: string): ReadonlySet<Member> | undefined {
    return this.#projects.get(project)?.members;
  }

  /** Closes every connection of a project on this instance (it was deleted). */
  closeProject(project: string, code: number, reason: string): void {
    const index = this.#projects.get(project);
    if (index === undefined) return;
    for (const member of [...index.members]) member.close(code, reason);
  }

  closeAll(code: number, reason: string): void {
    for (const project of [...this.#projects.keys()]) this.closeProject(project, code, reason);
  }

  /** After a bus outage: every room reads from the store what it may have missed. */
  catchUp(): void {
    for (const index of this.#projects.values()) {
      for (const room of index.rooms.values()) room.stream.catchUp();
    }
  }

  get roomCount(): number {
    return this.#roomCount;
  }

  #openRoom(project: string, roomName: string): Room {
    const members = new Set<Member>();
    const stream = new RoomStream(
      { range: (from, to) => this.#source.range(project, roomName, from, to) },
      (message) => {
        if (members.size > 0) this.#events.onRoomMessage(members, message);
      },
      (count) => this.#events.onGapFilled(count),
    );
    const room: Room = { members, stream, ready: undefined };
    room.ready = this.#subscribe(roomTopic(project, roomName))
      .then(() =>
        this.#source.lastSeq(project, roomName).then(
          (last) => stream.start(last),
          () => stream.start(undefined),
        ),
      )
      .finally(() => {
        room.ready = undefined;
      });
    return room;
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
