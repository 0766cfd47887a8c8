/**
 * `/api/*`: publish into rooms, broadcast, read history and presence. Checks run in the contract's
 * order: x-hash, project, token, body size, body (or the query), the token's claims (403), rate
 * limit, then the store and bus.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RoomPermissions } from '../auth/room-permissions.js';
import { isDuplicate, type Project } from '../domain.js';
import { type ErrorCode, UserError } from '../errors.js';
import { codePointLength, type HttpPublish, parseHttpBody } from '../protocol/parse.js';
import type { Messaging } from '../realtime/messaging.js';
import type { Presence } from '../realtime/presence.js';
import { TokenBucket } from '../realtime/rate-limit.js';
import type { Store } from '../store/store.js';
import type { Projects } from '../tenancy/projects.js';
import { parseHistoryQuery, parseLimit, readHistory } from './history.js';
import { BodyTooLarge, decodePath, type Headers, readBody, sendError, sendJson } from './io.js';

export interface ApiOptions {
  maxBodyBytes: number;
  maxRoomLength: number;
  rateLimit: number;
  rateBurst: number;
  corsOrigins: string[];
  onError(code: ErrorCode): void;
  onRateLimited(project: string): void;
}

const ROOM_PATH = /^\/api\/rooms\/([^/]+)\/(messages|presence)$/;
const DEFAULT_PRESENCE_LIMIT = 100;
const MAX_PRESENCE_LIMIT = 1000;
const BUCKET_SWEEP_MS = 60_000;
const EXPOSED = { 'access-control-expose-headers': 'Retry-After' };

type Fail = (code: ErrorCode, headers?: Headers) => void;

interface Caller {
  project: Project;
  sub: string;
  permissions: RoomPermissions;
}

/** Step 9 for an HTTP send: a message needs `publish` and its room; a broadcast `broadcast`. */
function mayPublish(permissions: RoomPermissions, body: HttpPublish): boolean {
  return body.type === 'message'
    ? permissions.publish && permissions.allows(body.room)
    : permissions.broadcast;
}

export class ApiRoutes {
  readonly #projects: Projects;
  readonly #messaging: Messaging;
  readonly #store: Store;
  readonly #presence: Presence;
  readonly #options: ApiOptions;
  /** One rate-limit bucket per project and user, forgotten once it has refilled. */
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(
    projects: Projects,
    messaging: Messaging,
    store: Store,
    presence: Presence,
    options: ApiOptions,
  ) {
    this.#projects = projects;
    this.#messaging = messaging;
    this.#store = store;
    this.#presence = presence;
    this.#options = options;
    this.#sweeper = setInterval(() => this.#sweep(), BUCKET_SWEEP_MS);
    this.#sweeper.unref();
  }

  close(): void {
    clearInterval(this.#sweeper);
  }

  async handle(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    const cors = this.#corsHeaders(request);
    const fail: Fail = (code, headers = {}) => {
      this.#options.onError(code);
      sendError(response, code, { ...cors, ...headers });
    };
    if (request.method === 'OPTIONS') {
      response.writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'x-hash, authorization, content-type, idempotency-key',
        'access-control-max-age': '600',
      });
      response.end();
      return;
    }
    const route = this.#route(request.method ?? 'GET', path);
    if (typeof route === 'string') return fail(route);
    const caller = await this.#authenticate(request);
    if (typeof caller === 'string') {
      return fail(caller, caller === 'storeUnavailable' ? { 'retry-after': '1' } : {});
    }
    if (route.kind === 'history') {
      return this.#history(request, response, caller, route.room, cors, fail);
    }
    if (route.kind === 'presence') {
      return this.#presenceRead(request, response, caller, route.room, cors, fail);
    }
    let text: string;
    try {
      text = await readBody(request, this.#options.maxBodyBytes);
    } catch (error) {
      return fail(error instanceof BodyTooLarge ? 'payloadTooLarge' : 'invalidJson');
    }
    const key = request.headers['idempotency-key'];
    const parsed = parseHttpBody(
      route.kind,
      text,
      this.#options,
      typeof key === 'string' ? key : undefined,
    );
    if (!parsed.ok) return fail(parsed.error);
    if (!mayPublish(caller.permissions, parsed.value)) return fail('notAllowed');
    if (!this.#spend(caller, fail)) return;
    try {
      if (parsed.value.type === 'message') {
        const { room, payload, idempotencyKey } = parsed.value;
        const appended = await this.#messaging.sendMessage(
          caller.project.hash,
          room,
          caller.sub,
          payload,
          'http',
          idempotencyKey,
        );
        const { id, seq } = appended;
        const answer = isDuplicate(appended)
          ? { success: true, id, seq, duplicate: true }
          : { success: true, id, seq };
        sendJson(response, 200, answer, cors);
      } else {
        await this.#messaging.broadcast(
          caller.project.hash,
          caller.sub,
          parsed.value.payload,
          'http',
        );
        sendJson(response, 200, { success: true }, cors);
      }
    } catch (error) {
      const code = error instanceof UserError ? error.code : 'internal';
      if (code === 'rateLimited') this.#options.onRateLimited(caller.project.hash);
      fail(code, code === 'internal' ? {} : { 'retry-after': '1' });
    }
  }

  #route(
    method: string,
    path: string,
  ):
    | { kind: 'message' | 'broadcast' }
    | { kind: 'history' | 'presence'; room: string }
    | 'notFound'
    | 'methodNotAllowed'
    | 'invalidPath' {
    if (path === '/api/message' || path === '/api/broadcast') {
      if (method !== 'POST') return 'methodNotAllowed';
      return { kind: path === '/api/message' ? 'message' : 'broadcast' };
    }
    const read = ROOM_PATH.exec(path);
    if (read === null) return decodePath(path) === undefined ? 'invalidPath' : 'notFound';
    const room = decodePath(read[1] ?? '');
    if (room === undefined) return 'invalidPath';
    if (method !== 'GET') return 'methodNotAllowed';
    return { kind: read[2] === 'presence' ? 'presence' : 'history', room };
  }

  async #authenticate(request: IncomingMessage): Promise<Caller | ErrorCode> {
    const hash = request.headers['x-hash'];
    if (typeof hash !== 'string' || hash === '') return 'hashRequired';
    const header = request.headers.authorization ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim() ?? '';
    const auth = await this.#projects.authenticate(hash, token);
    if (!auth.ok) return auth.error;
    return { project: auth.project, sub: auth.sub, permissions: auth.permissions };
  }

  async #history(
    request: IncomingMessage,
    response: ServerResponse,
    caller: Caller,
    room: string,
    cors: Headers,
    fail: Fail,
  ): Promise<void> {
    const search = new URL(request.url ?? '/', 'http://localhost').searchParams;
    const query = parseHistoryQuery(room, search, this.#options.maxRoomLength);
    if (!query.ok) return fail(query.error);
    if (!caller.permissions.allows(room)) return fail('notAllowed');
    if (!this.#spend(caller, fail)) return;
    const read = await readHistory(this.#store, caller.project.hash, room, query.value);
    if (!read.ok) {
      return fail(read.error, read.error === 'storeUnavailable' ? { 'retry-after': '1' } : {});
    }
    sendJson(response, 200, { messages: read.value }, cors);
  }

  /** `GET /api/rooms/:room/presence?limit=100&after=U`: one page of the room's users. */
  async #presenceRead(
    request: IncomingMessage,
    response: ServerResponse,
    caller: Caller,
    room: string,
    cors: Headers,
    fail: Fail,
  ): Promise<void> {
    if (codePointLength(room, this.#options.maxRoomLength) > this.#options.maxRoomLength) {
      return fail('roomTooLong');
    }
    const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
    const limit = parseLimit(query.get('limit'), DEFAULT_PRESENCE_LIMIT, MAX_PRESENCE_LIMIT);
    if (!limit.ok) return fail(limit.error);
    if (!caller.permissions.allows(room)) return fail('notAllowed');
    if (!this.#spend(caller, fail)) return;
    const page = await this.#presence.read(
      caller.project.hash,
      room,
      query.get('after') ?? undefined,
      limit.value,
    );
    const body = page.partial
      ? { users: page.users, count: page.count, partial: true }
      : { users: page.users, count: page.count };
    sendJson(response, 200, body, cors);
  }

  /**
   * Takes a token from the caller's bucket, which sends, history and presence reads share; false once the
   * 429 has been answered.
   */
  #spend(caller: Caller, fail: Fail): boolean {
    const key = `${caller.project.hash}\n${caller.sub}`;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.#options.rateLimit, this.#options.rateBurst);
      this.#buckets.set(key, bucket);
    }
    if (bucket.take()) return true;
    this.#options.onRateLimited(caller.project.hash);
    fail('rateLimited', { 'retry-after': String(bucket.retryAfterSeconds()) });
    return false;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, bucket] of this.#buckets) if (bucket.full(now)) this.#buckets.delete(key);
  }

  /** Every /api answer to an allowed origin: a browser hides Retry-After from scripts unless exposed. */
  #corsHeaders(request: IncomingMessage): Headers {
    const allowed = this.#options.corsOrigins;
    if (allowed.includes('*')) return { 'access-control-allow-origin': '*', ...EXPOSED };
    const origin = request.headers.origin;
    if (origin !== undefined && allowed.includes(origin)) {
      return { 'access-control-allow-origin': origin, vary: 'Origin', ...EXPOSED };
    }
    return {};
  }
}
