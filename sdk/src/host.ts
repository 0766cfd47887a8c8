/**
 * What the SDK needs from where it runs, said as small interfaces of its own, so that its types
 * hold on Node and in browsers alike (no DOM or Node typings needed by an app that uses it).
 */

export interface WebSocketMessageEvent {
  data: unknown;
}

export interface WebSocketCloseEvent {
  code: number;
  reason: string;
}

/** The part of the WHATWG WebSocket the SDK uses; browsers' and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  /** Bytes queued but not yet sent (browsers; `ws` too). */
  readonly bufferedAmount?: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: WebSocketMessageEvent) => void) | null;
  onclose: ((event: WebSocketCloseEvent) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * A WebSocket constructor: the browser's, or the `ws` package's on Node. Typed loosely on purpose:
 * implementations differ in their event types, and the SDK uses only what WebSocketLike says.
 */
export type WebSocketConstructor = new (url: string) => object;

export interface FetchResponse {
  readonly status: number;
  readonly ok: boolean;
  text(): Promise<string>;
}

export type FetchFunction = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<FetchResponse>;

type TimerHandle = unknown;

interface Host {
  WebSocket?: WebSocketConstructor;
  fetch?: FetchFunction;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  crypto?: { getRandomValues(bytes: Uint8Array): Uint8Array };
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
  /** Browsers only: the `online`/`offline` events come from window. */
  window?: unknown;
  TextEncoder?: new () => { encode(text: string): Uint8Array };
}

export const host = globalThis as unknown as Host;

export interface Timer {
  cancel(): void;
}

/**
 * A timer. `keepsAlive: false` (on Node) lets the process exit while only this timer is pending:
 * for timers that watch a socket, which holds the process open by itself while it is open.
 */
export function after(ms: number, callback: () => void, keepsAlive = true): Timer {
  const handle = host.setTimeout(callback, ms);
  if (!keepsAlive) (handle as { unref?: () => void }).unref?.();
  return { cancel: () => host.clearTimeout(handle) };
}

/** A random string of 22 URL-safe characters (132 bits); getRandomValues works on plain http too. */
export function randomKey(): string {
  const bytes = new Uint8Array(22);
  if (host.crypto !== undefined) host.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let key = '';
  for (const byte of bytes) key += alphabet[byte & 63];
  return key;
}

let encoder: { encode(text: string): Uint8Array } | undefined;

/** Whether a frame is over the server's limit, counted in UTF-8 bytes as the server counts it. */
export function overLimit(frame: string, maxBytes: number): boolean {
  // A UTF-16 unit is at most 3 UTF-8 bytes: most frames are decided without encoding them.
  if (frame.length * 3 <= maxBytes) return false;
  if (frame.length > maxBytes) return true;
  encoder ??= host.TextEncoder === undefined ? undefined : new host.TextEncoder();
  return encoder === undefined ? false : encoder.encode(frame).length > maxBytes;
}
