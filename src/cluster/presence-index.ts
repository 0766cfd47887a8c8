import type { PresentRoom, PresentUser } from './cluster-state.js';
import { SortedStrings } from './sorted-strings.js';

/**
 * Connections per user per scope, with every count the ClusterState reads kept up to date as
 * entries change, so that no read scans: counts are O(1), a page is O(log n + page).
 *
 * MemoryDeployment holds one for the whole deployment; RedisClusterState holds one for its own
 * connections (its local view while Redis is away, and the truth it restores Redis from).
 */

interface RoomScope {
  users: SortedStrings;
  connections: Map<string, number>;
}

interface ProjectScope {
  /** Connections per user in the project scope (room null). */
  users: Map<string, number>;
  connections: number;
  rooms: Map<string, RoomScope>;
  /** Rooms with at least one user present. */
  present: SortedStrings;
}

export interface IndexEntry {
  project: string;
  room: string | null;
  user: string;
  connections: number;
}

export interface IndexCounts {
  connections: number;
  users: number;
  rooms: number;
}

export class PresenceIndex {
  readonly #projects = new Map<string, ProjectScope>();
  #connections = 0;
  #users = 0;
  #rooms = 0;

  /** How many connections `user` has in the scope. */
  count(project: string, room: string | null, user: string): number {
    const scope = this.#projects.get(project);
    if (!scope) return 0;
    if (room === null) return scope.users.get(user) ?? 0;
    return scope.rooms.get(room)?.connections.get(user) ?? 0;
  }

  /**
   * Adds `delta` (negative to remove) to the connections of `user` in the scope, never going
   * below zero. Returns true when the user became present in the room, false when they stopped
   * being present, undefined otherwise and for project scopes.
   */
  change(project: string, room: string | null, user: string, delta: number): boolean | undefined {
    if (delta === 0) return undefined;
    let scope = this.#projects.get(project);
    if (!scope) {
      if (delta < 0) return undefined;
      scope = { users: new Map(), connections: 0, rooms: new Map(), present: new SortedStrings() };
      this.#projects.set(project, scope);
    }
    let transition: boolean | undefined;
    if (room === null) this.#changeProject(scope, user, delta);
    else transition = this.#changeRoom(scope, room, user, delta);
    if (scope.users.size === 0 && scope.rooms.size === 0) this.#projects.delete(project);
    return transition;
  }

  presence(
    project: string,
    room: string,
    after: string | undefined,
    limit: number,
  ): { users: PresentUser[]; count: number } {
    const scope = this.#projects.get(project)?.rooms.get(room);
    if (!scope) return { users: [], count: 0 };
    const users = scope.users
      .after(after, limit)
      .map((user) => ({ user, connections: scope.connections.get(user) ?? 0 }));
    return { users, count: scope.users.size };
  }

  rooms(project: string, after: string | undefined, limit: number): PresentRoom[] {
    const scope = this.#projects.get(project);
    if (!scope) return [];
    return scope.present
      .after(after, limit)
      .map((room) => ({ room, present: scope.rooms.get(room)?.users.size ?? 0 }));
  }

  counts(project: string): IndexCounts {
    const scope = this.#projects.get(project);
    if (!scope) return { connections: 0, users: 0, rooms: 0 };
    return { connections: scope.connections, users: scope.users.size, rooms: scope.present.size };
  }

  /** Summed over projects: a user connected to two projects counts twice. */
  totals(): IndexCounts {
    return { connections: this.#connections, users: this.#users, rooms: this.#rooms };
  }

  /** Every entry with at least one connection, in no particular order. */
  *entries(): IterableIterator<IndexEntry> {
    for (const [project, scope] of this.#projects) {
      for (const [user, connections] of scope.users) {
        yield { project, room: null, user, connections };
      }
      for (const [room, roomScope] of scope.rooms) {
        for (const [user, connections] of roomScope.connections) {
          yield { project, room, user, connections };
        }
      }
    }
  }

  clear(): void {
    this.#projects.clear();
    this.#connections = 0;
    this.#users = 0;
    this.#rooms = 0;
  }

  #changeProject(scope: ProjectScope, user: string, delta: number): void {
    const before = scope.users.get(user) ?? 0;
    const after = Math.max(0, before + delta);
    if (after === before) return;
    if (after === 0) scope.users.delete(user);
    else scope.users.set(user, after);
    scope.connections += after - before;
    this.#connections += after - before;
    if (before === 0) this.#users += 1;
    if (after === 0) this.#users -= 1;
  }

  #changeRoom(scope: ProjectScope, room: string, user: string, delta: number): boolean | undefined {
    let roomScope = scope.rooms.get(room);
    if (!roomScope) {
      if (delta < 0) return undefined;
      roomScope = { users: new SortedStrings(), connections: new Map() };
      scope.rooms.set(room, roomScope);
    }
    const before = roomScope.connections.get(user) ?? 0;
    const after = Math.max(0, before + delta);
    if (after === before) return undefined;
    if (after > 0) {
      roomScope.connections.set(user, after);
      if (before > 0) return undefined;
      roomScope.users.add(user);
      if (roomScope.users.size === 1) {
        scope.present.add(room);
        this.#rooms += 1;
      }
      return true;
    }
    roomScope.connections.delete(user);
    roomScope.users.delete(user);
    if (roomScope.users.size === 0) {
      scope.rooms.delete(room);
      scope.present.delete(room);
      this.#rooms -= 1;
    }
    return false;
  }
}
