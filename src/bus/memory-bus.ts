import { type Bus, type BusEvent, type BusHandler, callHandlers } from './bus.js';

/**
 * The Bus for a single process: the publisher and every subscriber are this one instance.
 *
 * Guarantees, on top of the contract in bus.ts:
 * - Delivery is asynchronous (a microtask after `publish`), never inside the `publish` call, so a
 *   handler never runs in the middle of its publisher's code.
 * - Events are delivered in publish order across all topics, not only per topic.
 * - An event is delivered if its topic was subscribed both when it was published and when its turn
 *   comes; `unsubscribe` therefore stops delivery at once, including of queued events.
 * - Handlers receive the published object itself, not a copy: they must not mutate it.
 * - The link never goes down, so `onReconnect` handlers are never called.
 * - `close` stops taking events, delivers those already taken, then drops all subscriptions;
 *   afterwards `publish` and `subscribe` reject and `healthy()` is false.
 */
export class MemoryBus implements Bus {
  readonly #topics = new Set<string>();
  readonly #handlers: BusHandler[] = [];
  #closing: Promise<void> | undefined;

  publish(topic: string, event: BusEvent): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('Bus is closed'));
    if (!this.#topics.has(topic)) return Promise.resolve();
    // Microtasks run first in, first out, so one microtask per event keeps the global order.
    queueMicrotask(() => this.#deliver(topic, event));
    return Promise.resolve();
  }

  subscribe(topic: string): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('Bus is closed'));
    this.#topics.add(topic);
    return Promise.resolve();
  }

  unsubscribe(topic: string): Promise<void> {
    this.#topics.delete(topic);
    return Promise.resolve();
  }

  onEvent(handler: BusHandler): void {
    this.#handlers.push(handler);
  }

  onReconnect(_handler: () => void): void {}

  healthy(): boolean {
    return this.#closing === undefined;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // This microtask is queued after every delivery already taken, so those run first.
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    this.#topics.clear();
  }

  #deliver(topic: string, event: BusEvent): void {
    if (!this.#topics.has(topic)) return;
    callHandlers(this.#handlers, topic, event);
  }
}
