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

export interface Project {
  hash: string;
  name: string;
  jwtSecret: string;
  createdAt: string;
}

export type ProjectSummary = Omit<Project, 'jwtSecret'>;
