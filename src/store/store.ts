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
 * - `history` answers oldest first; see HistoryQuery. An `after`/`before` id that is not a message
 *   of that room gives `undefined` (the caller reports `Unknown message id`).
 * - `deleteProject` removes the project and every message of it.
 * - `close` waits for pending appends, then releases the database; calling it twice is safe.
 */
import type { Project, ProjectSummary, RoomMessage } from '../domain.js';

export interface NewMessage {
  project: string;
  room: string;
  payload: string;
  from: string;
}

export interface HistoryQuery {
  /** Most messages to return; the caller caps it. */
  limit: number;
  /** Only messages after this id (exclusive); with no `before`, the oldest `limit` of them. */
  after?: string;
  /** Only messages before this id (exclusive); with no `after`, the newest `limit` of them. */
  before?: string;
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

  append(message: NewMessage): Promise<RoomMessage>;
  history(project: string, room: string, query: HistoryQuery): Promise<RoomMessage[] | undefined>;
  /** Messages of a room with `seq` in [fromSeq, toSeq], oldest first: for filling gaps. */
  range(project: string, room: string, fromSeq: number, toSeq: number): Promise<RoomMessage[]>;
  /** The highest `seq` of the room, 0 when it has none. */
  lastSeq(project: string, room: string): Promise<number>;

  /** Resolves when the database answers; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
