/**
 * Small helpers for the WebSocket protocol and auth suites: raw JWTs with arbitrary claims, sockets
 * that send before the server has answered, and the shape of a refused connection.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { type Frame, TestClient } from './client.js';
import { signToken, type TestProject, type TestServer } from './server.js';

/** RFC 4122 version 4, variant 10xx. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const HMAC: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/**
 * Signs any claims object with HMAC, without the claim validation a JWT library does, so that a
 * test can hand the server a numeric `sub` or other nonsense with a valid signature.
 */
export function signClaims(
  secret: string,
  claims: Record<string, unknown>,
  alg: 'HS256' | 'HS384' | 'HS512' = 'HS256',
): string {
  const encode = (value: object): string =>
    Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({ alg, typ: 'JWT' })}.${encode(claims)}`;
  const signature = createHmac(HMAC[alg] ?? 'sha256', secret)
    .update(input)
    .digest('base64url');
  return `${input}.${signature}`;
}

/** Seconds since the epoch, as JWT `exp`/`nbf`/`iat` count. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function wsUrl(server: { wsUrl: string }, hash: string, token?: string): string {
  const base = `${server.wsUrl}/ws/${encodeURIComponent(hash)}`;
  return token === undefined ? base : `${base}?jwt=${encodeURIComponent(token)}`;
}

/** The WebSocket URL of a project's user, with a fresh HS256 token. */
export async function memberUrl(
  server: { wsUrl: string },
  project: Pick<TestProject, 'hash' | 'jwtSecret'>,
  sub: string,
): Promise<string> {
  return wsUrl(server, project.hash, await signToken(project.jwtSecret, sub));
}

/** Connects a user of a project with a fresh HS256 token and waits for `connected`. */
export async function connectAs(
  server: TestServer,
  project: TestProject,
  sub: string,
): Promise<TestClient> {
  return TestClient.connect(await memberUrl(server, project, sub));
}

/** Opens a socket and resolves once the upgrade completed, before any frame was read. */
export async function openClient(url: string): Promise<TestClient> {
  const client = new TestClient(url);
  await once(client.socket, 'open');
  return client;
}

/**
 * Asserts that the server refused the socket: exactly one frame, the error, then the close code.
 */
export async function expectRefused(
  client: TestClient,
  message: string,
  code: number,
): Promise<void> {
  const { code: closeCode } = await client.waitClosed();
  assert.deepEqual(client.frames, [{ type: 'error', message } satisfies Frame]);
  assert.equal(closeCode, code);
}

/** Opens a socket with the given URL and asserts that it is refused. */
export async function expectRefusedUrl(url: string, message: string, code: number): Promise<void> {
  await expectRefused(new TestClient(url), message, code);
}

/** Asserts that the connection still answers a ping. */
export async function expectAlive(client: TestClient): Promise<void> {
  assert.deepEqual(await client.request({ type: 'ping' }), { type: 'pong' });
}

/** The JSON body of a response, with its status. */
export async function statusAndBody(response: Response): Promise<[number, unknown]> {
  const text = await response.text();
  return [response.status, text === '' ? undefined : JSON.parse(text)];
}
