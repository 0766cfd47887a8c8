/**
 * The domain types that cross seams: a stored room message and a project. They belong to no layer
 * (store, bus, protocol and realtime all speak them), so this module imports nothing.
 */

/** A message as stored and delivered: the store assigns `id`, `seq` and `ts`. */
export interface RoomMessage {
  id: string;
  seq: number;
  room: string;
  payload: string;
  from: string;
  ts: number;
}

/**
 * A room as the store knows it: one that has had at least one message. `lastSeq` is the room's
 * LAST (the `seq` of its last message, whether or not retention removed that message since);
 * `lastTs` the `ts` of that message, or null when the store no longer knows it (a message removed
 * by retention before the store kept that time beside the position).
 */
export interface StoredRoom {
  room: string;
  lastSeq: number;
  lastTs: number | null;
}

/** `null`: the project has no value of its own (the server-wide default applies, if any). */
export interface RetentionSettings {
  maxAgeSeconds: number | null;
  maxMessagesPerRoom: number | null;
}

export interface LimitSettings {
  maxConnections: number | null;
  maxConnectionsPerUser: number | null;
  maxMessagesPerSecond: number | null;
}

/** A project's own settings, as `PATCH /admin/projects/:hash` sets them. */
export interface ProjectSettings {
  retention: RetentionSettings;
  limits: LimitSettings;
}

/** The settings of a project that has none of its own. */
export function noSettings(): ProjectSettings {
  return {
    retention: { maxAgeSeconds: null, maxMessagesPerRoom: null },
    limits: { maxConnections: null, maxConnectionsPerUser: null, maxMessagesPerSecond: null },
  };
}

export interface Project {
  hash: string;
  name: string;
  jwtSecret: string;
  createdAt: string;
  settings: ProjectSettings;
}

export type ProjectSummary = Omit<Project, 'jwtSecret' | 'settings'>;

/**
 * The answer to a message whose idempotency key its project already used within the window: the
 * first message's place. It was neither stored nor delivered again.
 */
export interface DuplicateMessage {
  duplicate: true;
  room: string;
  id: string;
  seq: number;
}

/** Whether an append's answer is the first message's place rather than a new message. */
export function isDuplicate(
  appended: RoomMessage | DuplicateMessage,
): appended is DuplicateMessage {
  return 'duplicate' in appended;
}
