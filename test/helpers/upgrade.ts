/**
 * Helpers for the connection-limit suites: the HTTP answer of an upgrade that must be refused, TCP
 * connections that never finish their request, and retrying until the server has freed a place.
 */
import { connect, type Socket } from 'node:net';
import WebSocket, { type ClientOptions } from 'ws';
import { nextSource } from './loopback.js';

export interface UpgradeRefusal {
  status: number;
  retryAfter: string | string[] | undefined;
  /** The body as sent. */
  text: string;
}

/** Attempts an upgrade that the server must answer with an HTTP error; rejects if it opens. */
export function refusedUpgrade(url: string, options: ClientOptions = {}): Promise<UpgradeRefusal> {
  const socket = new WebSocket(url, {
    localAddress: nextSource(new URL(url).hostname),
    ...options,
  });
  return new Promise((resolve, reject) => {
    socket.on('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        resolve({
          status: response.statusCode ?? 0,
          retryAfter: response.headers['retry-after'],
          text: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    socket.on('open', () => {
      socket.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    socket.on('error', reject);
  });
}

export interface LingeringSocket {
  readonly socket: Socket;
  /** Resolves with the ms from the connection to the server dropping it. */
  readonly dropped: Promise<number>;
}

/** A TCP connection that sends `bytes` (maybe none) and then nothing more, left open. */
export async function lingeringSocket(
  port: number,
  bytes: string,
  localAddress?: string,
): Promise<LingeringSocket> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => undefined);
  // Whatever the server answers (a 408 or nothing) is read and dropped, so that its close is seen.
  socket.resume();
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('close', () => reject(new Error('closed before it connected')));
  });
  const connectedAt = performance.now();
  if (bytes !== '') socket.write(bytes);
  const dropped = new Promise<number>((resolve) => {
    socket.once('close', () => resolve(performance.now() - connectedAt));
  });
  return { socket, dropped };
}

/**
 * Retries `attempt` every 50 ms for at most `ms`: the server frees a closed socket's place when its
 * own side of the close is done, a moment after the client saw it.
 */
export async function eventually<T>(attempt: () => Promise<T>, ms = 3000): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (performance.now() > end) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Fails when `promise` takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
