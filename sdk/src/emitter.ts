import { after } from './host.js';

/**
 * A small typed event emitter. A listener that throws does not stop the others nor the SDK: its
 * error is reported asynchronously, as an uncaught error, where the app can see it.
 */
export class Emitter<Events extends Record<string, unknown>> {
  readonly #listeners = new Map<keyof Events, Set<(value: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof Events>(event: E, listener: (value: Events[E]) => void): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as (value: never) => void);
    return () => this.off(event, listener);
  }

  off<E extends keyof Events>(event: E, listener: (value: Events[E]) => void): void {
    this.#listeners.get(event)?.delete(listener as (value: never) => void);
  }

  /** Whether anyone listens: an `error` with no listener is not worth building. */
  has(event: keyof Events): boolean {
    return (this.#listeners.get(event)?.size ?? 0) > 0;
  }

  protected emit<E extends keyof Events>(event: E, value: Events[E]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as (value: Events[E]) => void)(value);
      } catch (error) {
        after(0, () => {
          throw error;
        });
      }
    }
  }
}
