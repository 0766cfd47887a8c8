/**
 * What this instance does with each bus event: room messages go through the hub's ordered room
 * streams, broadcasts to every local connection of the project, project changes to the tenancy
 * cache. Each outgoing frame is serialised once and the same bytes go to every receiver.
 */
import type { BusEvent } from '../bus/bus.js';
import { broadcastFrame, messageFrame, type RoomMessage } from '../protocol/frames.js';
import type { Projects } from '../tenancy/projects.js';
import type { PreparedFrame, PrepareFrame } from '../transport/connection.js';
import type { Hub, Member } from './hub.js';

export interface FanoutEvents {
  onDelivered(kind: 'message' | 'broadcast', count: number): void;
  onReceived(): void;
}

/** Sends one serialised frame to each member; returns how many it was handed to. */
export function sendToAll(members: ReadonlySet<Member>, frame: PreparedFrame): number {
  for (const member of members) member.deliver(frame);
  return members.size;
}

export class Fanout {
  readonly #hub: Hub;
  readonly #projects: Projects;
  readonly #events: FanoutEvents;
  readonly #prepare: PrepareFrame;

  constructor(hub: Hub, projects: Projects, prepare: PrepareFrame, events: FanoutEvents) {
    this.#hub = hub;
    this.#projects = projects;
    this.#prepare = prepare;
    this.#events = events;
  }

  /** The bus handler. */
  readonly handle = (_topic: string, event: BusEvent): void => {
    this.#events.onReceived();
    switch (event.kind) {
      case 'message':
        this.#hub.receiveMessage(event.project, event.message);
        return;
      case 'broadcast': {
        const members = this.#hub.projectMembers(event.project);
        if (members === undefined || members.size === 0) return;
        const frame = this.#prepare(broadcastFrame(event.payload, event.from, event.ts));
        this.#events.onDelivered('broadcast', sendToAll(members, frame));
        return;
      }
      case 'project-rotated':
      case 'project-deleted':
        this.#projects.apply(event);
        return;
      default: {
        const unknown: never = event;
        throw new Error(`unknown bus event ${JSON.stringify(unknown)}`);
      }
    }
  };

  /** The hub's ordered output for one room. */
  deliverRoomMessage(members: ReadonlySet<Member>, message: RoomMessage): void {
    const frame = this.#prepare(messageFrame(message));
    this.#events.onDelivered('message', sendToAll(members, frame));
  }
}
