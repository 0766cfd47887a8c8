/**
 * The last step of every delivery: a frame serialised and framed once, the same bytes handed to
 * every receiver.
 */
import type { RoomMessage } from '../domain.js';
import { broadcastFrame, messageFrame } from '../protocol/frames.js';
import type { PreparedFrame, PrepareFrame } from '../transport/connection.js';
import type { Member } from './hub.js';

export interface DeliveryEvents {
  onDelivered(project: string, kind: 'message' | 'broadcast', count: number): void;
}

/** Sends one serialised frame to each member; returns how many it was handed to. */
export function sendToAll(members: ReadonlySet<Member>, frame: PreparedFrame): number {
  for (const member of members) member.deliver(frame);
  return members.size;
}

export class Delivery {
  readonly #prepare: PrepareFrame;
  readonly #events: DeliveryEvents;

  constructor(prepare: PrepareFrame, events: DeliveryEvents) {
    this.#prepare = prepare;
    this.#events = events;
  }

  /** A room message, in its room's seq order, to the room's members here. */
  readonly roomMessage = (
    project: string,
    members: ReadonlySet<Member>,
    message: RoomMessage,
  ): void => {
    const frame = this.#prepare(messageFrame(message));
    this.#events.onDelivered(project, 'message', sendToAll(members, frame));
  };

  broadcast(
    project: string,
    members: ReadonlySet<Member>,
    payload: string,
    from: string,
    ts: number,
  ): void {
    if (members.size === 0) return;
    const frame = this.#prepare(broadcastFrame(payload, from, ts));
    this.#events.onDelivered(project, 'broadcast', sendToAll(members, frame));
  }
}
