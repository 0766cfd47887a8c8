/** The SDK as an app on Node would use it, with `ws` as its WebSocket, and what tests watch of it. */
import assert from 'node:assert/strict';
import {
  type ConnectionState,
  type Room,
  type RoomMessage,
  SocketBase,
  type SocketBaseError,
  type SocketBaseOptions,
} from '@socket-base/client';
import WebSocket from 'ws';

const WAIT_MS = 10_000;

/** Short reconnect delays: tests wait on events, and a restart should not cost seconds. */
export const FAST_RECONNECT = { minDelayMs: 20, maxDelayMs: 200 } as const;

export function sdkClient(
  options: Omit<SocketBaseOptions, 'WebSocket'> & { WebSocket?: SocketBaseOptions['WebSocket'] },
): SocketBase {
  return new SocketBase({ WebSocket, reconnect: FAST_RECONNECT, ...options });
}

/** Waits for a client to reach a state (at once if it is in it). */
export function waitState(
  client: SocketBase,
  state: ConnectionState,
  timeoutMs = WAIT_MS,
): Promise<void> {
  if (client.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for state ${state} (now ${client.state})`));
    }, timeoutMs);
    const off = client.on('state', (now) => {
      if (now !== state) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** The next `error` event of a client. */
export function nextError(client: SocketBase, timeoutMs = WAIT_MS): Promise<SocketBaseError> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('timed out waiting for an error event'));
    }, timeoutMs);
    const off = client.on('error', (error) => {
      clearTimeout(timer);
      off();
      resolve(error);
    });
  });
}

/**
 * Everything a room's `message` listener got. It fails at once on a message delivered twice or out
 * of order: the SDK's promise is that a listener never sees either.
 */
export class Received {
  readonly messages: RoomMessage[] = [];
  readonly violations: string[] = [];
  #waiters: (() => void)[] = [];

  constructor(room: Room) {
    room.on('message', (message) => {
      const last = this.messages.at(-1);
      if (last !== undefined && message.seq <= last.seq) {
        this.violations.push(`seq ${message.seq} after ${last.seq}`);
      }
      this.messages.push(message);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** Waits until `ready()` holds, re-checked on every message. */
  async until(ready: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for ${what} (${this.messages.length} received)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  count(n: number, timeoutMs = WAIT_MS): Promise<void> {
    return this.until(() => this.messages.length >= n, `${n} messages`, timeoutMs);
  }

  assertInOrderOnce(): void {
    assert.deepEqual(this.violations, [], 'a listener saw a message twice or out of order');
  }
}
