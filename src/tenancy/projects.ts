/**
 * Projects (tenants): create, list, delete, rotate the secret, and a cached lookup by hash with the
 * tokens already verified for each project. A rotation or a deletion travels on the bus's control
 * topic, and every instance (this one included) drops its cache when it arrives.
 */
import { randomBytes } from 'node:crypto';
import { CLOCK_TOLERANCE_MS, type ProjectVerifier, projectVerifier } from '../auth/project-jwt.js';
import { type Bus, type BusEvent, CONTROL_TOPIC } from '../bus/bus.js';
import type { ErrorCode } from '../errors.js';
import type { Project, ProjectSummary, Store } from '../store/store.js';

/**
 * Verified tokens kept per project, for HTTP callers that send the same token on every request
 * (a WebSocket checks its token once). Bounded, so that many connections do not pin their tokens.
 */
const MAX_CACHED_TOKENS_PER_PROJECT = 1024;

interface CachedProject {
  project: Project;
  verify: ProjectVerifier;
  tokens: Map<string, { sub: string; expiresAtMs: number | undefined }>;
}

export type ProjectChange = Extract<BusEvent, { kind: 'project-rotated' | 'project-deleted' }>;

export type Authentication =
  | { ok: true; project: Project; sub: string }
  | { ok: false; error: ErrorCode };

export function newProjectHash(): string {
  return randomBytes(12).toString('base64url');
}

export function newJwtSecret(): string {
  return randomBytes(32).toString('base64url');
}

export class Projects {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #cache = new Map<string, CachedProject>();
  /** Bumped by every invalidation, so that a lookup that raced one does not cache stale data. */
  #generation = 0;
  readonly #listeners: ((event: ProjectChange) => void)[] = [];

  constructor(store: Store, bus: Bus) {
    this.#store = store;
    this.#bus = bus;
  }

  async create(name: string): Promise<Project> {
    const project: Project = {
      hash: newProjectHash(),
      name,
      jwtSecret: newJwtSecret(),
      createdAt: new Date().toISOString(),
    };
    await this.#store.createProject(project);
    return project;
  }

  list(): Promise<ProjectSummary[]> {
    return this.#store.listProjects();
  }

  async get(hash: string): Promise<Project | undefined> {
    return (await this.#lookup(hash))?.project;
  }

  /** Resolves false for an unknown project. Every instance closes the project's sockets. */
  async delete(hash: string): Promise<boolean> {
    const deleted = await this.#store.deleteProject(hash);
    if (deleted) await this.#announce({ kind: 'project-deleted', project: hash });
    return deleted;
  }

  /** Resolves the new secret, or undefined for an unknown project. */
  async rotateSecret(hash: string): Promise<string | undefined> {
    const secret = newJwtSecret();
    if (!(await this.#store.setProjectSecret(hash, secret))) return undefined;
    await this.#announce({ kind: 'project-rotated', project: hash });
    return secret;
  }

  /** Listens for project changes, whether made here or on another instance. */
  onChange(listener: (event: ProjectChange) => void): void {
    this.#listeners.push(listener);
  }

  /** Applies a change made here or received on the control topic: drops the cache, tells listeners. */
  apply(event: ProjectChange): void {
    this.#generation++;
    this.#cache.delete(event.project);
    for (const listener of this.#listeners) listener(event);
  }

  async authenticate(hash: string, token: string): Promise<Authentication> {
    let cached: CachedProject | undefined;
    try {
      cached = await this.#lookup(hash);
    } catch {
      return { ok: false, error: 'storeUnavailable' };
    }
    if (cached === undefined) return { ok: false, error: 'unknownProject' };
    const known = cached.tokens.get(token);
    if (known !== undefined) {
      if (known.expiresAtMs === undefined || known.expiresAtMs + CLOCK_TOLERANCE_MS > Date.now()) {
        return { ok: true, project: cached.project, sub: known.sub };
      }
      cached.tokens.delete(token);
    }
    const check = cached.verify(token);
    if (!check.ok) return check;
    if (cached.tokens.size >= MAX_CACHED_TOKENS_PER_PROJECT) cached.tokens.clear();
    cached.tokens.set(token, { sub: check.sub, expiresAtMs: check.expiresAtMs });
    return { ok: true, project: cached.project, sub: check.sub };
  }

  async #lookup(hash: string): Promise<CachedProject | undefined> {
    const cached = this.#cache.get(hash);
    if (cached !== undefined) return cached;
    const generation = this.#generation;
    const project = await this.#store.getProject(hash);
    if (project === undefined) return undefined;
    const entry: CachedProject = {
      project,
      verify: projectVerifier(project.jwtSecret),
      tokens: new Map(),
    };
    if (generation === this.#generation) this.#cache.set(hash, entry);
    return entry;
  }

  async #announce(event: ProjectChange): Promise<void> {
    // This instance applies the change at once, even when the bus is down; the bus carries it to
    // the others (and back here, where applying it again is harmless).
    this.apply(event);
    await this.#bus.publish(CONTROL_TOPIC, event).catch(() => undefined);
  }
}
