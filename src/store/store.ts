/**
 * The Store seam: projects and room messages. Implementations: sqlite-store.ts, postgres-store.ts.
 * Both pass the same suite, test/contract/store.contract.ts.
 *
 * Contract:
 * - `append` assigns `id` (a string unique in the store), `seq` (the message's position in its
 *   project's room: 1, 2, 3, … with no gaps, also when several processes append to one room at
 *   once) and `ts` (epoch ms). It resolves only once the message is durably committed; a message
 *   whose append rejects was not stored and never takes a `seq`.
 * - Appends are grouped into transactions (group commit). One failing message fails alone: the
 *   others of its batch are still stored, and their `seq`s stay gapless.
 * - Appends to one room resolve in `seq` order when they come from one process.
 * - Payloads are any Unicode text, NUL included, and come back exactly.
 * - Idempotency: a message with `idempotencyKey` whose key its project already used (for any room,
 *   payload or sender) within the store's idempotency window is neither stored nor given a `seq`:
 *   `append` resolves the first message's DuplicateMessage. The check and the insert are one
 *   transaction, enforced by a unique constraint, so that two copies appended at once (also by two
 *   processes) store exactly one message. Keys live apart from messages: retention does not remove
 *   them; `purgeExpired` does, once they are older than the window.
 * - `seq` is never reused: a room's last `seq` (`lastSeq`, and the base of the next `append`)
 *   survives the removal of its messages by retention.
 * - `history` answers oldest first; see HistoryQuery. An `after`/`before` id that is not a message
 *   of that room gives `undefined` (the caller reports `Unknown message id`).
 * - `rooms` lists the rooms of a project that have had a message (also those whose every message
 *   retention removed since: the store keeps each room's position), sorted by name in code-point
 *   order (UTF-8 byte order: the same on every store), each with its `lastSeq` (as `lastSeq`
 *   answers) and the `ts` of that last message (`lastTs`; see StoredRoom). A room that never had
 *   a message is not listed. `storedMessages` counts the messages stored now (retention's removals
 *   are no longer counted).
 * - `deleteProject` removes the project and every message, position, idempotency key and
 *   revocation of it.
 * - Revocations (`revokeTokens`) only move forward: a not-before earlier than the one stored changes
 *   nothing, and a project-wide one drops the users' it covers (at or before it), so that
 *   `revocations` lists a user only with a later not-before than the project's.
 * - `close` waits for pending appends, then releases the database; calling it twice is safe.
 */
import type {
  DuplicateMessage,
  Project,
  ProjectSettings,
  ProjectSummary,
  RetentionSettings,
  Revocations,
  RoomMessage,
  StoredRoom,
} from '../domain.js';

export interface NewMessage {
  project: string;
  room: string;
  payload: string;
  from: string;
  /** 1–128 characters; unique per project within the idempotency window. */
  idempotencyKey?: string;
}

/** What `append` resolves: the stored message, or the first one's place for a repeated key. */
export type Appended = RoomMessage | DuplicateMessage;

export interface ProjectChange {
  name?: string;
  settings?: ProjectSettings;
}

export interface PurgeOptions {
  /** Epoch ms the ages are counted from. */
  now: number;
  /** What applies to a project whose own retention value is null (null: keep forever). */
  defaults: RetentionSettings;
  /** Idempotency keys first used more than this long before `now` are removed. */
  idempotencyWindowMs: number;
  /** Most rows removed by one call: one short transaction. */
  limit: number;
}

export interface HistoryQuery {
  /** Most messages to return; the caller caps it. */
  limit: number;
  /** Only messages after this id (exclusive); with no `before`, the oldest `limit` of them. */
  after?: string;
  /** Only messages before this id (exclusive); with no `after`, the newest `limit` of them. */
  before?: string;
  /** Only messages with `seq` > since: the oldest `limit` of them (never with after/before). */
  since?: number;
}

export interface StoreStats {
  /** Called once per committed batch with its size and how long the commit took. */
  onBatch?: (size: number, seconds: number) => void;
  /** A fault the store worked around (it carries on), worth a line in the log. */
  onFault?: (error: unknown, what: string) => void;
}

export interface Store {
  createProject(project: Project): Promise<void>;
  getProject(hash: string): Promise<Project | undefined>;
  /**
   * The projects among `hashes` that exist, each once, in any order, read in one round trip
   * however many hashes (a few thousand: a cache of projects revalidates with it every second).
   * An empty list resolves [] without asking the database.
   */
  getProjects(hashes: readonly string[]): Promise<Project[]>;
  listProjects(): Promise<ProjectSummary[]>;
  countProjects(): Promise<number>;
  /** Resolves false when there was no such project. */
  deleteProject(hash: string): Promise<boolean>;
  /** Resolves false when there was no such project. */
  setProjectSecret(hash: string, jwtSecret: string): Promise<boolean>;
  /** Changes the name and/or the settings; resolves the project as it is now, undefined if none. */
  updateProject(hash: string, change: ProjectChange): Promise<Project | undefined>;
  /**
   * Refuses from now on the tokens of `user` (undefined: of every user of the project) issued
   * before `notBefore` (epoch seconds, as a JWT's `iat`), atomically. Resolves false, storing
   * nothing, when there is no such project.
   */
  revokeTokens(hash: string, user: string | undefined, notBefore: number): Promise<boolean>;
  /**
   * The revocations of the projects among `hashes` that have any, by hash (a project without, or
   * unknown, is absent), read in one round trip however many hashes, as `getProjects`: a cache of
   * projects revalidates with both every second. An empty list resolves an empty map.
   */
  revocations(hashes: readonly string[]): Promise<Map<string, Revocations>>;

  append(message: NewMessage): Promise<Appended>;
  history(project: string, room: string, query: HistoryQuery): Promise<RoomMessage[] | undefined>;
  /** Messages of a room with `seq` in [fromSeq, toSeq], oldest first: for filling gaps. */
  range(project: string, room: string, fromSeq: number, toSeq: number): Promise<RoomMessage[]>;
  /**
   * The last `seq` assigned in the room, whether or not retention removed that message since; 0
   * for a room that never had one.
   */
  lastSeq(project: string, room: string): Promise<number>;
  /**
   * Removes, in one short transaction, at most `limit` rows: messages older than their project's
   * effective `maxAgeSeconds`, messages beyond the newest `maxMessagesPerRoom` of their room, and
   * idempotency keys older than the window. Resolves how many were removed (the caller calls
   * again, after a turn of the event loop, until fewer than `limit`). With several processes on
   * one PostgreSQL database one purge runs at a time: a call that finds another running resolves 0.
   */
  purgeExpired(options: PurgeOptions): Promise<number>;

  /**
   * The project's rooms that have had a message, sorted by name (code-point order), those after
   * `after` (exclusive; undefined: from the first), at most `limit` (below 1: none). A page costs
   * O(limit) index seeks, however many rooms and messages the project has.
   */
  rooms(project: string, after: string | undefined, limit: number): Promise<StoredRoom[]>;
  /**
   * How many messages are stored now: of one project, or of every project (undefined). A count
   * walks an index (O(messages)): callers that poll cache it.
   */
  storedMessages(project: string | undefined): Promise<number>;

  /** Resolves when the database answers; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
