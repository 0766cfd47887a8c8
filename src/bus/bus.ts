/**
 * The Bus seam: moves events between the instances of one deployment. Implementations:
 * memory-bus.ts (one process), redis-bus.ts (Redis pub/sub). Both pass the same suite,
 * test/contract/bus.contract.ts.
 *
 * Contract:
 * - Every subscriber of a topic, the publishing instance included, receives the events published
 *   to it while it is subscribed, through the handler given to `onEvent`. Delivery is at most once:
 *   an event published while the link is down may be lost; receivers of room messages fill such
 *   gaps from the Store using `seq`.
 * - Events of one publisher on one topic arrive in the order they were published.
 * - `publish` resolves once the bus has taken the event, and rejects when it cannot (the caller
 *   answers `Message could not be delivered`). It never throws synchronously.
 * - `subscribe` and `unsubscribe` are idempotent and count nothing: the caller subscribes on the
 *   first local interest and unsubscribes on the last. A topic subscribed while the link is down is
 *   subscribed as soon as it comes back.
 * - `healthy()` says whether a publish would be taken now.
 * - `close` is ordered and safe to call twice.
 */
import type { RoomMessage } from '../domain.js';

export type BusEvent =
  | { kind: 'message'; project: string; message: RoomMessage }
  | { kind: 'broadcast'; project: string; payload: string; from: string; ts: number }
  /** A user became present in a room (first connection in), or stopped being (last one out). */
  | { kind: 'presence'; project: string; room: string; user: string; present: boolean }
  | { kind: 'project-created'; project: string }
  | { kind: 'project-rotated'; project: string }
  | { kind: 'project-updated'; project: string }
  | { kind: 'project-deleted'; project: string }
  /**
   * Closes the connections of `user` (null: of every user) of the project; with `notBefore`
   * (epoch seconds), that user's (every user's) tokens issued before it are refused from then on.
   */
  | {
      kind: 'project-disconnected';
      project: string;
      user: string | null;
      notBefore: number | null;
    };

export const CONTROL_TOPIC = 'control';

export function roomTopic(project: string, room: string): string {
  return `room:${project}:${room}`;
}

export function projectTopic(project: string): string {
  return `project:${project}`;
}

export type BusHandler = (topic: string, event: BusEvent) => void;

export interface Bus {
  publish(topic: string, event: BusEvent): Promise<void>;
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  onEvent(handler: BusHandler): void;
  /** Called after the link came back: receivers check for messages missed while it was down. */
  onReconnect(handler: () => void): void;
  healthy(): boolean;
  close(): Promise<void>;
}

/**
 * Hands an event to every handler. A failing handler neither starves the others nor vanishes: its
 * error is rethrown outside the bus, as an uncaught exception (a bug in a receiver, not a bus fault).
 */
export function callHandlers(
  handlers: readonly BusHandler[],
  topic: string,
  event: BusEvent,
): void {
  for (const handler of handlers) {
    try {
      handler(topic, event);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }
}
