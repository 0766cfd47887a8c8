/** `/admin/*`: manage projects with the admin token. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAdmin } from '../auth/admin-token.js';
import type { ErrorCode } from '../errors.js';
import { checkProjectName } from '../tenancy/project-name.js';
import type { Projects } from '../tenancy/projects.js';
import { BodyTooLarge, decodePath, readBody, sendError, sendJson } from './io.js';

const PROJECT_PATH = /^\/admin\/projects\/([^/]+)(\/rotate-secret)?$/;

export class AdminRoutes {
  readonly #projects: Projects;
  readonly #adminToken: string;
  readonly #maxBodyBytes: number;

  constructor(projects: Projects, adminToken: string, maxBodyBytes: number) {
    this.#projects = projects;
    this.#adminToken = adminToken;
    this.#maxBodyBytes = maxBodyBytes;
  }

  async handle(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    if (!isAdmin(request.headers.authorization, this.#adminToken)) {
      return sendError(response, 'unauthorized');
    }
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
    if (match[2] !== undefined) {
      if (method !== 'POST') return sendError(response, 'methodNotAllowed');
      const secret = await this.#projects.rotateSecret(hash);
      if (secret === undefined) return sendError(response, 'unknownProject');
      return sendJson(response, 200, { hash, jwtSecret: secret });
    }
    if (method === 'GET') {
      const project = await this.#projects.get(hash);
      if (project === undefined) return sendError(response, 'unknownProject');
      const { name, createdAt } = project;
      return sendJson(response, 200, { hash, name, createdAt });
    }
    if (method === 'DELETE') {
      if (!(await this.#projects.delete(hash))) return sendError(response, 'unknownProject');
      response.writeHead(204);
      response.end();
      return;
    }
    return sendError(response, 'methodNotAllowed');
  }

  async #create(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let text: string;
    try {
      text = await readBody(request, this.#maxBodyBytes);
    } catch (error) {
      return sendError(response, error instanceof BodyTooLarge ? 'payloadTooLarge' : 'invalidJson');
    }
    const name = parseProjectName(text);
    if (typeof name !== 'string') return sendError(response, name.error);
    const project = await this.#projects.create(name);
    sendJson(response, 201, {
      hash: project.hash,
      jwtSecret: project.jwtSecret,
      name: project.name,
      createdAt: project.createdAt,
    });
  }
}

/** The `name` of a create-project body, or the error that refuses it. */
function parseProjectName(text: string): string | { error: ErrorCode } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: 'invalidJson' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { error: 'invalidJson' };
  }
  return checkProjectName((body as { name?: unknown }).name);
}
