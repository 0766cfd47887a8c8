/**
 * The one publish flow for WebSocket and HTTP: store first, then the bus. Every instance, this one
 * included, delivers from what the bus hands back, so there is one order per room: `seq`.
 */
import { type Bus, type BusEvent, projectTopic, roomTopic } from '../bus/bus.js';
import { type DuplicateMessage, isDuplicate, type RoomMessage } from '../domain.js';
import { UserError } from '../errors.js';
import type { Store } from '../store/store.js';

export type Via = 'ws' | 'http';

export interface MessagingEvents {
  onAccepted(project: string, kind: 'message' | 'broadcast', via: Via): void;
  /** A message of `project` was stored (not a duplicate). */
  onStored(project: string): void;
  onPublished(): void;
  /** A stored message's publish failed: it is queued to be published again. */
  onPublishFailed(error: unknown): void;
  /** A queued message was published again. */
  onRepublished(): void;
  /** The queue was full: its oldest message was given up (others read it from the store later). */
  onRepublishDropped(): void;
}

/** A project's message rate, shared by its messages and broadcasts (project-limits.ts). */
export interface MessageRates {
  /** true or false at once, or a promise settled in call order. */
  takeMessage(project: string): boolean | Promise<boolean>;
}

const UNLIMITED: MessageRates = { takeMessage: () => true };

export interface RepublishOptions {
  /** First wait before a failed publish is tried again; it doubles up to `maxDelayMs`. */
  delayMs: number;
  maxDelayMs: number;
  /** Most stored messages waiting to be published again. */
  maxQueued: number;
}

const REPUBLISH_DEFAULTS: RepublishOptions = { delayMs: 100, maxDelayMs: 2000, maxQueued: 10_000 };

interface Unpublished {
  topic: string;
  event: BusEvent;
}

export class Messaging {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #events: MessagingEvents;
  readonly #republish: RepublishOptions;
  readonly #rates: MessageRates;
  #inFlight = 0;
  #stopped = false;
  #drained: (() => void) | undefined;
  /**
   * Stored messages whose publish failed on a link that may have stayed up: no reconnect would
   * make the other instances read them, and in a quiet room no later message shows the gap. They
   * are published again, in order, until the bus takes them (a copy that did get through is
   * dropped by the receivers, which deliver each seq once).
   */
  readonly #unpublished: Unpublished[] = [];
  #republishTimer: NodeJS.Timeout | undefined;
  #republishDelay: number;
  #republishing = false;
  #republishedAll: (() => void) | undefined;

  constructor(
    store: Store,
    bus: Bus,
    events: MessagingEvents,
    rates: MessageRates = UNLIMITED,
    republish: RepublishOptions = REPUBLISH_DEFAULTS,
  ) {
    this.#store = store;
    this.#bus = bus;
    this.#events = events;
    this.#rates = rates;
    this.#republish = republish;
    this.#republishDelay = republish.delayMs;
  }

  /**
   * Stores a room message, then publishes it. Rejects with `Rate limit exceeded` when the project's
   * rate is spent, and with `Message could not be delivered` before
   * storing anything when the bus cannot take it, and with `Message could not be stored` when the
   * store refuses it; it resolves only once the message is stored. A message whose idempotency
   * key the project already used is neither stored nor published: it resolves the first one's
   * place.
   */
  async sendMessage(
    project: string,
    room: string,
    from: string,
    payload: string,
    via: Via,
    idempotencyKey?: string,
  ): Promise<RoomMessage | DuplicateMessage> {
    const allowed = this.#rates.takeMessage(project);
    if (!(typeof allowed === 'boolean' ? allowed : await allowed)) {
      throw new UserError('rateLimited');
    }
    if (this.#stopped) throw new UserError('shuttingDown');
    if (!this.#bus.healthy()) throw new UserError('notDelivered');
    this.#inFlight++;
    try {
      let appended: RoomMessage | DuplicateMessage;
      try {
        appended = await this.#store.append(
          idempotencyKey === undefined
            ? { project, room, payload, from }
            : { project, room, payload, from, idempotencyKey },
        );
      } catch {
        throw new UserError('notStored');
      }
      if (isDuplicate(appended)) return appended;
      const message = appended;
      this.#events.onStored(project);
      this.#events.onAccepted(project, 'message', via);
      const topic = roomTopic(project, room);
      const event: BusEvent = { kind: 'message', project, message };
      await this.#bus.publish(topic, event).then(
        () => this.#events.onPublished(),
        (error: unknown) => {
          this.#events.onPublishFailed(error);
          this.#queueRepublish({ topic, event });
        },
      );
      return message;
    } finally {
      this.#settle();
    }
  }

  /** Sends a broadcast to every connection of the project, on every instance. Not stored. */
  async broadcast(project: string, from: string, payload: string, via: Via): Promise<void> {
    const allowed = this.#rates.takeMessage(project);
    if (!(typeof allowed === 'boolean' ? allowed : await allowed)) {
      throw new UserError('rateLimited');
    }
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
      this.#events.onAccepted(project, 'broadcast', via);
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

  /** Resolves once every accepted send has been stored and published (or queued again). */
  drain(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }

  /** Resolves once no stored message waits to be published again. */
  republished(): Promise<void> {
    if (this.#unpublished.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#republishedAll = resolve;
    });
  }

  /** Stops publishing again (the bus is closing); what is queued stays in the store. */
  close(): void {
    clearTimeout(this.#republishTimer);
    this.#republishTimer = undefined;
    this.#unpublished.length = 0;
    this.#republishedAll?.();
  }

  #queueRepublish(unpublished: Unpublished): void {
    if (this.#unpublished.length >= this.#republish.maxQueued) {
      this.#unpublished.shift();
      this.#events.onRepublishDropped();
    }
    this.#unpublished.push(unpublished);
    this.#scheduleRepublish();
  }

  #scheduleRepublish(): void {
    if (this.#republishTimer !== undefined || this.#republishing) return;
    this.#republishTimer = setTimeout(() => {
      this.#republishTimer = undefined;
      void this.#publishQueued();
    }, this.#republishDelay);
  }

  async #publishQueued(): Promise<void> {
    this.#republishing = true;
    try {
      let next = this.#unpublished[0];
      while (next !== undefined) {
        await this.#bus.publish(next.topic, next.event);
        // close() may have emptied the queue meanwhile.
        if (this.#unpublished[0] === next) this.#unpublished.shift();
        this.#events.onRepublished();
        next = this.#unpublished[0];
      }
      this.#republishDelay = this.#republish.delayMs;
      this.#republishedAll?.();
      this.#republishedAll = undefined;
    } catch {
      this.#republishDelay = Math.min(this.#republishDelay * 2, this.#republish.maxDelayMs);
    } finally {
      this.#republishing = false;
    }
    if (this.#unpublished.length > 0) this.#scheduleRepublish();
  }

  #settle(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#drained !== undefined) {
      this.#drained();
      this.#drained = undefined;
    }
  }
}
