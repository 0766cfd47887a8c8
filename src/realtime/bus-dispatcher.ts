/**
 * What this instance does with each bus event: room messages go through the hub's ordered room
 * streams, broadcasts to every local connection of the project, presence changes to the
 * connections watching the room, project changes to the tenancy cache.
 */
import type { BusEvent } from '../bus/bus.js';
import type { Projects } from '../tenancy/projects.js';
import type { Delivery } from './delivery.js';
import type { Hub } from './hub.js';
import type { Presence } from './presence.js';

export class BusDispatcher {
  readonly #hub: Hub;
  readonly #projects: Projects;
  readonly #delivery: Delivery;
  readonly #presence: Presence;
  readonly #onReceived: () => void;

  constructor(
    hub: Hub,
    projects: Projects,
    delivery: Delivery,
    presence: Presence,
    onReceived: () => void,
  ) {
    this.#hub = hub;
    this.#projects = projects;
    this.#delivery = delivery;
    this.#presence = presence;
    this.#onReceived = onReceived;
  }

  /** The bus handler. */
  readonly handle = (_topic: string, event: BusEvent): void => {
    this.#onReceived();
    switch (event.kind) {
      case 'message':
        this.#hub.receiveMessage(event.project, event.message);
        return;
      case 'broadcast': {
        const members = this.#hub.projectMembers(event.project);
        if (members !== undefined) {
          this.#delivery.broadcast(event.project, members, event.payload, event.from, event.ts);
        }
        return;
      }
      case 'presence':
        this.#presence.receive(event.project, event.room, event.user, event.present);
        return;
      case 'project-created':
      case 'project-rotated':
      case 'project-updated':
      case 'project-deleted':
      case 'project-disconnected':
        this.#projects.apply(event);
        return;
      default: {
        const unknown: never = event;
        throw new Error(`unknown bus event ${JSON.stringify(unknown)}`);
      }
    }
  };
}
