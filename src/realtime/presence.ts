/**
 * Presence: who is in each room, per user, over the whole deployment. The cluster state counts every
 * joined connection; a user's first connection in and last one out are transitions, which travel on
 * the project's topic so that every instance tells its watchers (connections that joined with
 * `presence: true`), once per user, never about their own user.
 */
import { type Bus, projectTopic } from '../bus/bus.js';
import type { ClusterState, PresencePage, Transition } from '../cluster/cluster-state.js';
import type { PreparedFrame, PrepareFrame } from '../transport/connection.js';

/** Most users listed in a `presence` frame; `count` still says how many there are. */
export const PRESENCE_FRAME_MAX_USERS = 1000;

/** A connection that asked for a room's presence events. */
export interface PresenceWatcher {
  readonly project: string;
  readonly user: string;
  deliver(frame: PreparedFrame): void;
}

interface Watch {
  /** Events that came before the snapshot went out; sent right after it. */
  buffered: PreparedFrame[] | undefined;
}

export interface PresenceEvents {
  /** A transition could not be published: watchers elsewhere miss it until they rejoin. */
  onEventLost(error: unknown): void;
}

export class Presence {
  readonly #cluster: ClusterState;
  readonly #bus: Bus;
  readonly #prepare: PrepareFrame;
  readonly #events: PresenceEvents;
  /** project → room → watchers on this instance. */
  readonly #watchers = new Map<string, Map<string, Map<PresenceWatcher, Watch>>>();

  constructor(cluster: ClusterState, bus: Bus, prepare: PrepareFrame, events: PresenceEvents) {
    this.#cluster = cluster;
    this.#bus = bus;
    this.#prepare = prepare;
    this.#events = events;
    cluster.onTransition((transition) => this.#publish(transition));
  }

  /** One more connection of `user` is in the room. */
  enter(project: string, room: string, user: string): void {
    this.#cluster.enter(project, room, user);
  }

  /** One connection of `user` left the room (or closed). */
  exit(project: string, room: string, user: string): void {
    this.#cluster.exit(project, room, user);
  }

  read(project: string, room: string, after: string | undefined, limit: number) {
    return this.#cluster.presence(project, room, after, limit);
  }

  /**
   * Starts telling `watcher` who comes and goes in `room`: `sendSnapshot` gets the room's list
   * first, then the events, those that arrived while the list was read included. Resolves once the
   * snapshot went out (or the watch ended meanwhile).
   */
  async watch(
    watcher: PresenceWatcher,
    room: string,
    sendSnapshot: (page: PresencePage) => void,
  ): Promise<void> {
    let rooms = this.#watchers.get(watcher.project);
    if (rooms === undefined) {
      rooms = new Map();
      this.#watchers.set(watcher.project, rooms);
    }
    let watchers = rooms.get(room);
    if (watchers === undefined) {
      watchers = new Map();
      rooms.set(room, watchers);
    }
    const watch: Watch = { buffered: [] };
    watchers.set(watcher, watch);
    const page = await this.#cluster.presence(
      watcher.project,
      room,
      undefined,
      PRESENCE_FRAME_MAX_USERS,
    );
    if (watchers.get(watcher) !== watch) return;
    sendSnapshot(page);
    const buffered = watch.buffered ?? [];
    watch.buffered = undefined;
    for (const frame of buffered) watcher.deliver(frame);
  }

  unwatch(watcher: PresenceWatcher, room: string): void {
    const rooms = this.#watchers.get(watcher.project);
    const watchers = rooms?.get(room);
    if (rooms === undefined || watchers === undefined || !watchers.delete(watcher)) return;
    if (watchers.size > 0) return;
    rooms.delete(room);
    if (rooms.size === 0) this.#watchers.delete(watcher.project);
  }

  /** A transition from the bus, published by whichever instance saw it. */
  receive(project: string, room: string, user: string, present: boolean): void {
    const watchers = this.#watchers.get(project)?.get(room);
    if (watchers === undefined) return;
    const frame = this.#prepare(
      JSON.stringify({ type: present ? 'presence_join' : 'presence_leave', room, user }),
    );
    for (const [watcher, watch] of watchers) {
      if (watcher.user === user) continue;
      if (watch.buffered === undefined) watcher.deliver(frame);
      else watch.buffered.push(frame);
    }
  }

  #publish({ project, room, user, present }: Transition): void {
    this.#bus
      .publish(projectTopic(project), { kind: 'presence', project, room, user, present })
      .catch((error: unknown) => this.#events.onEventLost(error));
  }
}
