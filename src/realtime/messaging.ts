/**
 * The one publish flow for WebSocket and HTTP: store first, then the bus. Every instance, this one
 * included, delivers from what the bus hands back, so there is one order per room: `seq`.
 */
import { type Bus, projectTopic, roomTopic } from '../bus/bus.js';
import { UserError } from '../errors.js';
import type { RoomMessage } from '../protocol/frames.js';
import type { Store } from '../store/store.js';

export type Via = 'ws' | 'http';

export interface MessagingEvents {
  onAccepted(kind: 'message' | 'broadcast', via: Via): void;
  onPublished(): void;
  onPublishFailed(error: unknown): void;
}

export class Messaging {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #events: MessagingEvents;
  #inFlight = 0;
  #stopped = false;
  #drained: (() => void) | undefined;

  constructor(store: Store, bus: Bus, events: MessagingEvents) {
    this.#store = store;
    this.#bus = bus;
    this.#events = events;
  }

  /**
   * Stores a room message, then publishes it. Rejects with `Message could not be delivered` before
   * storing anything when the bus cannot take it, and with `Message could not be stored` when the
   * store refuses it; it resolves only once the message is stored.
   */
  async sendMessage(
    project: string,
    room: string,
    from: string,
    payload: string,
    via: Via,
  ): Promise<RoomMessage> {
    if (this.#stopped) throw new UserError('shuttingDown');
    if (!this.#bus.healthy()) throw new UserError('notDelivered');
    this.#inFlight++;
    try {
      let message: RoomMessage;
      try {
        message = await this.#store.append({ project, room, payload, from });
      } catch {
        throw new UserError('notStored');
      }
      this.#events.onAccepted('message', via);
      // Stored but not published (the bus dropped between the check and now): members read it from
      // the store when the next message of the room shows the gap, or when the bus comes back.
      await this.#bus.publish(roomTopic(project, room), { kind: 'message', project, message }).then(
        () => this.#events.onPublished(),
        (error: unknown) => this.#events.onPublishFailed(error),
      );
      return message;
    } finally {
      this.#settle();
    }
  }

  /** Sends a broadcast to every connection of the project, on every instance. Not stored. */
  async broadcast(project: string, from: string, payload: string, via: Via): Promise<void> {
    if (this.#stopped) throw new UserError('shuttingDown');
    this.#inFlight++;
    try {
      await this.#bus.publish(projectTopic(project), {
        kind: 'broadcast',
        project,
        payload,
        from,
        ts: Date.now(),
      });
      this.#events.onPublished();
      this.#events.onAccepted('broadcast', via);
    } catch {
      throw new UserError('notDelivered');
    } finally {
      this.#settle();
    }
  }

  /** Refuses every send from now on (shutdown); those already accepted go on. */
  stop(): void {
    this.#stopped = true;
  }

  /** Resolves once every accepted send has been stored and published. */
  drain(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }

  #settle(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#drained !== undefined) {
      this.#drained();
      this.#drained = undefined;
    }
  }
}
