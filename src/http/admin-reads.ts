/**
 * The admin's reads of what a project is doing: `GET /admin/projects/:hash/stats`, `…/rooms`,
 * `…/rooms/:room/messages`, and `GET /admin/stats` for the whole deployment. Figures of who is
 * connected and present come from the ClusterState (every instance), stored ones from the Store.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ClusterState } from '../cluster/cluster-state.js';
import { compareCodePoints, type Project } from '../domain.js';
import type { ErrorCode } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Projects } from '../tenancy/projects.js';
import { parseHistoryQuery, parseLimit, readHistory } from './history.js';
import { decodePath, sendError, sendJson } from './io.js';

/** What these reads ask of the store. */
export type AdminStore = Pick<Store, 'history' | 'rooms' | 'storedMessages' | 'countProjects'>;

export const DEFAULT_ROOMS_LIMIT = 100;
export const MAX_ROOMS_LIMIT = 1000;
/**
 * How long a count of stored messages (a walk of an index) answers again: a dashboard polling
 * every 2 s costs one count per poll at most, and the figure stays within the contract's 2 s.
 */
export const STORED_COUNT_TTL_MS = 1000;
/** Cached counts past which the stale ones are dropped, so that the cache stays small. */
const MAX_CACHED_COUNTS = 1024;

const PROJECT_READ = /^\/admin\/projects\/([^/]+)\/(stats|rooms)$/;
const ROOM_HISTORY = /^\/admin\/projects\/([^/]+)\/rooms\/([^/]+)\/messages$/;
const RETRY = { 'retry-after': '1' };

export type AdminRead =
  | { kind: 'totals' }
  | { kind: 'stats' | 'rooms'; hash: string }
  | { kind: 'history'; hash: string; room: string }
  | { kind: 'invalidPath' };

/** The read a path names, or undefined when it names none of them. */
export function adminRead(path: string): AdminRead | undefined {
  if (path === '/admin/stats') return { kind: 'totals' };
  const project = PROJECT_READ.exec(path);
  if (project !== null) {
    const hash = decodePath(project[1] ?? '');
    if (hash === undefined) return { kind: 'invalidPath' };
    return { kind: project[2] === 'stats' ? 'stats' : 'rooms', hash };
  }
  const history = ROOM_HISTORY.exec(path);
  if (history === null) return undefined;
  const hash = decodePath(history[1] ?? '');
  const room = decodePath(history[2] ?? '');
  if (hash === undefined || room === undefined) return { kind: 'invalidPath' };
  return { kind: 'history', hash, room };
}

export interface AdminReadOptions {
  maxRoomLength: number;
}

export class AdminReads {
  readonly #projects: Projects;
  readonly #store: AdminStore;
  readonly #cluster: ClusterState;
  readonly #maxRoomLength: number;
  readonly #stored: StoredCounts;

  constructor(
    projects: Projects,
    store: AdminStore,
    cluster: ClusterState,
    options: AdminReadOptions,
  ) {
    this.#projects = projects;
    this.#store = store;
    this.#cluster = cluster;
    this.#maxRoomLength = options.maxRoomLength;
    this.#stored = new StoredCounts(store);
  }

  /** Answers `read` (the caller has checked the admin token). */
  async handle(read: AdminRead, request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (read.kind === 'invalidPath') return sendError(response, 'invalidPath');
    if (request.method !== 'GET') return sendError(response, 'methodNotAllowed');
    if (read.kind === 'totals') return this.#totals(response);
    const project = await this.#project(read.hash);
    if (typeof project === 'string') return fail(response, project);
    const search = new URL(request.url ?? '/', 'http://localhost').searchParams;
    switch (read.kind) {
      case 'stats':
        return this.#stats(response, project.hash);
      case 'rooms':
        return this.#rooms(response, project.hash, search);
      case 'history':
        return this.#history(response, project.hash, read.room, search);
    }
  }

  async #stats(response: ServerResponse, project: string): Promise<void> {
    const [counts, messagesPerSecond, storedMessages] = await Promise.all([
      this.#cluster.counts(project),
      this.#cluster.storedPerSecond(project),
      orUndefined(this.#stored.count(project)),
    ]);
    if (storedMessages === undefined) return fail(response, 'storeUnavailable');
    const { connections, users, rooms } = counts;
    sendJson(response, 200, {
      connections,
      users,
      rooms,
      messagesPerSecond,
      storedMessages,
      ...partial(counts.partial),
    });
  }

  async #totals(response: ServerResponse): Promise<void> {
    const [totals, messagesPerSecond, storedMessages, projects] = await Promise.all([
      this.#cluster.totals(),
      this.#cluster.storedPerSecond(undefined),
      orUndefined(this.#stored.count(undefined)),
      orUndefined(this.#store.countProjects()),
    ]);
    if (storedMessages === undefined || projects === undefined) {
      return fail(response, 'storeUnavailable');
    }
    const { connections, users, rooms, instances } = totals;
    sendJson(response, 200, {
      connections,
      users,
      rooms,
      messagesPerSecond,
      storedMessages,
      projects,
      instances,
      ...partial(totals.partial),
    });
  }

  /**
   * One page of the union of the rooms the store knows (those that had a message) and those with
   * users present, by name. Each source gives its first `limit` after `after`: the first `limit`
   * of the union are among them.
   */
  async #rooms(response: ServerResponse, project: string, search: URLSearchParams): Promise<void> {
    const limit = parseLimit(search.get('limit'), DEFAULT_ROOMS_LIMIT, MAX_ROOMS_LIMIT);
    if (!limit.ok) return fail(response, limit.error);
    // `after=` (empty) is no cursor: every room name is after it.
    const after = search.get('after') || undefined;
    const [stored, present] = await Promise.all([
      orUndefined(this.#store.rooms(project, after, limit.value)),
      this.#cluster.rooms(project, after, limit.value),
    ]);
    if (stored === undefined) return fail(response, 'storeUnavailable');
    const rooms = new Map<string, RoomView>();
    for (const { room, lastSeq, lastTs } of stored) {
      rooms.set(room, { room, lastSeq, lastTs, present: 0 });
    }
    for (const { room, present: users } of present.rooms) {
      const known = rooms.get(room);
      if (known === undefined) rooms.set(room, { room, lastSeq: 0, lastTs: null, present: users });
      else known.present = users;
    }
    const page = [...rooms.values()]
      .sort((a, b) => compareCodePoints(a.room, b.room))
      .slice(0, limit.value);
    sendJson(response, 200, { rooms: page, ...partial(present.partial) });
  }

  async #history(
    response: ServerResponse,
    project: string,
    room: string,
    search: URLSearchParams,
  ): Promise<void> {
    const query = parseHistoryQuery(room, search, this.#maxRoomLength);
    if (!query.ok) return fail(response, query.error);
    const read = await readHistory(this.#store, project, room, query.value);
    if (!read.ok) return fail(response, read.error);
    sendJson(response, 200, { messages: read.value });
  }

  async #project(hash: string): Promise<Project | ErrorCode> {
    try {
      return (await this.#projects.get(hash)) ?? 'unknownProject';
    } catch {
      return 'storeUnavailable';
    }
  }
}

interface RoomView {
  room: string;
  lastSeq: number;
  lastTs: number | null;
  present: number;
}

/**
 * Counts of stored messages, per project and of all (undefined), each asked of the store at most
 * once per STORED_COUNT_TTL_MS; callers within that time share the count (or its failure, which
 * is not kept).
 */
export class StoredCounts {
  readonly #store: Pick<Store, 'storedMessages'>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #counts = new Map<string | undefined, { at: number; count: Promise<number> }>();

  /** `now` is a monotonic clock in ms (performance.now by default). */
  constructor(
    store: Pick<Store, 'storedMessages'>,
    ttlMs = STORED_COUNT_TTL_MS,
    now: () => number = () => performance.now(),
  ) {
    this.#store = store;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  count(project: string | undefined): Promise<number> {
    const now = this.#now();
    const cached = this.#counts.get(project);
    if (cached !== undefined && now - cached.at < this.#ttlMs) return cached.count;
    if (this.#counts.size >= MAX_CACHED_COUNTS) {
      for (const [key, { at }] of this.#counts) {
        if (now - at >= this.#ttlMs) this.#counts.delete(key);
      }
    }
    const entry = { at: now, count: this.#store.storedMessages(project) };
    this.#counts.set(project, entry);
    void entry.count.catch(() => {
      if (this.#counts.get(project) === entry) this.#counts.delete(project);
    });
    return entry.count;
  }
}

/** The value, or undefined when the store failed (answered as `Store unavailable`). */
function orUndefined<T>(read: Promise<T>): Promise<T | undefined> {
  return read.catch(() => undefined);
}

function fail(response: ServerResponse, code: ErrorCode): void {
  sendError(response, code, code === 'storeUnavailable' ? RETRY : {});
}

/** `"partial":true` while the shared state is away (the figures are this instance's view). */
function partial(isPartial: boolean): { partial?: true } {
  return isPartial ? { partial: true } : {};
}
