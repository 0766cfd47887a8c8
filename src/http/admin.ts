/**
 * `/admin/*`: manage projects and their settings, mint tokens, disconnect users, with the admin
 * token; the reads of rooms, history and figures are in admin-reads.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAdmin } from '../auth/admin-token.js';
import type { ClusterState } from '../cluster/cluster-state.js';
import type { ProjectSettings } from '../domain.js';
import type { ErrorCode } from '../errors.js';
import { checkProjectName } from '../tenancy/project-name.js';
import { createdView, parseProjectPatch, projectView } from '../tenancy/project-settings.js';
import { parseDisconnectRequest, parseTokenRequest } from '../tenancy/project-tokens.js';
import type { Projects } from '../tenancy/projects.js';
import { AdminReads, type AdminStore, adminRead } from './admin-reads.js';
import { BodyTooLarge, decodePath, readBody, sendError, sendJson } from './io.js';

/** On a 503, as every 503 of the server. */
const RETRY_AFTER = { 'retry-after': '1' };

const PROJECT_PATH = /^\/admin\/projects\/([^/]+)(?:\/(rotate-secret|tokens|disconnect))?$/;

export interface AdminOptions {
  maxBodyBytes: number;
  /** For the history read, as on the public API. */
  maxRoomLength: number;
  /** The server-wide settings, for `effective`. */
  defaults: ProjectSettings;
}

export class AdminRoutes {
  readonly #projects: Projects;
  readonly #adminToken: string;
  readonly #maxBodyBytes: number;
  readonly #defaults: ProjectSettings;
  readonly #reads: AdminReads;

  constructor(
    projects: Projects,
    store: AdminStore,
    cluster: ClusterState,
    adminToken: string,
    options: AdminOptions,
  ) {
    this.#projects = projects;
    this.#adminToken = adminToken;
    this.#maxBodyBytes = options.maxBodyBytes;
    this.#defaults = options.defaults;
    this.#reads = new AdminReads(projects, store, cluster, options);
  }

  async handle(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    if (!isAdmin(request.headers.authorization, this.#adminToken)) {
      return sendError(response, 'unauthorized');
    }
    const read = adminRead(path);
    if (read !== undefined) return this.#reads.handle(read, request, response);
    const method = request.method ?? 'GET';
    if (path === '/admin/projects') {
      if (method === 'GET') {
        const projects = await this.#projects.list();
        return sendJson(response, 200, {
          projects: projects.map(({ hash, name, createdAt }) => ({ hash, name, createdAt })),
        });
      }
      if (method === 'POST') return this.#create(request, response);
      return sendError(response, 'methodNotAllowed');
    }
    const match = PROJECT_PATH.exec(path);
    if (match === null) return sendError(response, 'notFound');
    const hash = decodePath(match[1] ?? '');
    if (hash === undefined) return sendError(response, 'invalidPath');
    const action = match[2];
    if (action !== undefined) {
      if (method !== 'POST') return sendError(response, 'methodNotAllowed');
      if (action === 'tokens') return this.#mint(request, response, hash);
      if (action === 'disconnect') return this.#disconnect(request, response, hash);
      const secret = await this.#projects.rotateSecret(hash);
      if (secret === undefined) return sendError(response, 'unknownProject');
      return sendJson(response, 200, { hash, jwtSecret: secret });
    }
    if (method === 'GET') {
      const project = await this.#projects.get(hash);
      if (project === undefined) return sendError(response, 'unknownProject');
      return sendJson(response, 200, projectView(project, this.#defaults));
    }
    if (method === 'PATCH') return this.#update(request, response, hash);
    if (method === 'DELETE') {
      if (!(await this.#projects.delete(hash))) return sendError(response, 'unknownProject');
      response.writeHead(204);
      response.end();
      return;
    }
    return sendError(response, 'methodNotAllowed');
  }

  async #create(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await this.#readObject(request);
    if ('error' in body) return sendError(response, body.error);
    const name = checkProjectName(body.value.name);
    if (typeof name !== 'string') return sendError(response, name.error);
    const project = await this.#projects.create(name);
    sendJson(response, 201, createdView(project));
  }

  async #update(request: IncomingMessage, response: ServerResponse, hash: string): Promise<void> {
    const body = await this.#readObject(request);
    if ('error' in body) return sendError(response, body.error);
    const patch = parseProjectPatch(body.value);
    if ('error' in patch) return sendError(response, patch.error);
    const project = await this.#projects.update(hash, patch);
    if (project === undefined) return sendError(response, 'unknownProject');
    sendJson(response, 200, projectView(project, this.#defaults));
  }

  async #mint(request: IncomingMessage, response: ServerResponse, hash: string): Promise<void> {
    const body = await this.#readObject(request);
    if ('error' in body) return sendError(response, body.error);
    const now = Date.now();
    const token = parseTokenRequest(body.value, Math.floor(now / 1000));
    if ('error' in token) return sendError(response, token.error);
    let minted: { jwt: string; exp: number } | undefined;
    try {
      minted = await this.#projects.mintToken(hash, token, now);
    } catch {
      return sendError(response, 'storeUnavailable', RETRY_AFTER);
    }
    if (minted === undefined) return sendError(response, 'unknownProject');
    sendJson(response, 201, minted);
  }

  async #disconnect(
    request: IncomingMessage,
    response: ServerResponse,
    hash: string,
  ): Promise<void> {
    const body = await this.#readObject(request);
    if ('error' in body) return sendError(response, body.error);
    const target = parseDisconnectRequest(body.value);
    if ('error' in target) return sendError(response, target.error);
    const done = await this.#projects.disconnect(hash, target.user, target.revoke);
    if (done !== true) {
      return sendError(response, done, done === 'unknownProject' ? {} : RETRY_AFTER);
    }
    sendJson(response, 202, { success: true });
  }

  /** The body as a JSON object, or the error that refuses it (413, or `Invalid JSON`). */
  async #readObject(
    request: IncomingMessage,
  ): Promise<{ value: Record<string, unknown> } | { error: ErrorCode }> {
    let text: string;
    try {
      text = await readBody(request, this.#maxBodyBytes);
    } catch (error) {
      return { error: error instanceof BodyTooLarge ? 'payloadTooLarge' : 'invalidJson' };
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { error: 'invalidJson' };
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { error: 'invalidJson' };
    }
    return { value: value as Record<string, unknown> };
  }
}
