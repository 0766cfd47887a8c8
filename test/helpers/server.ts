/** Starts a real server on port 0 in this process, with helpers to make projects and tokens. */
import { SignJWT } from 'jose';
import { type Config, loadConfig } from '../../src/config.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestProject {
  hash: string;
  jwtSecret: string;
  name: string;
  createdAt: string;
}

export interface TestServer extends RunningServer {
  readonly config: Config;
  readonly wsUrl: string;
  /** Lines the server printed (banner, listening line). */
  readonly printed: string[];
  createProject(name?: string): Promise<TestProject>;
  /** A call to adminUrl (the main url unless ADMIN_PORT is set) with the admin token. */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  /** POST/GET on /api with x-hash and a bearer token. */
  api(
    method: string,
    path: string,
    options: {
      hash?: string;
      token?: string;
      body?: unknown;
      rawBody?: string;
      headers?: Record<string, string>;
    },
  ): Promise<Response>;
}

export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: 'sqlite::memory:',
    ADMIN_TOKEN,
    LOG_LEVEL: 'silent',
    SHUTDOWN_DELAY_MS: '0',
    ...env,
  });
  const printed: string[] = [];
  const server = await startServer(config, {
    logger: createLogger(config.logLevel),
    print: (text) => printed.push(text),
  });
  const admin = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${server.adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return {
    ...server,
    close: () => server.close(),
    config,
    printed,
    wsUrl: server.url.replace('http://', 'ws://'),
    admin,
    async createProject(name = 'test') {
      const response = await admin('POST', '/admin/projects', { name });
      if (response.status !== 201) throw new Error(`create project: ${response.status}`);
      return (await response.json()) as TestProject;
    },
    api(method, path, { hash, token, body, rawBody, headers: extra }) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
      if (hash !== undefined) headers['x-hash'] = hash;
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      return fetch(`${server.url}${path}`, {
        method,
        headers,
        body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
      });
    },
  };
}

/** Signs a JWT for a project, with the given claims and algorithm (HS256 by default). */
export async function signToken(
  secret: string,
  sub: string | undefined,
  options: { alg?: string; expiresIn?: string | number; notBefore?: string | number } = {},
): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setIssuedAt();
  if (sub !== undefined) jwt.setSubject(sub);
  if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn);
  if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** A token with `alg: none` and no signature. */
export function unsignedToken(sub: string): string {
  const encode = (value: object): string =>
    Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ sub })}.`;
}
