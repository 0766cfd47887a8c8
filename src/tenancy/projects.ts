/**
 * Projects (tenants): create, list, update, delete, rotate the secret, disconnect (and revoke) its
 * users, and a cached lookup by hash with the tokens already verified for each project and its
 * revocations. A creation, change, rotation, deletion or disconnection travels on the bus's control
 * topic, and every instance (this one included) updates its cache when it arrives. The control
 * topic is at most once, so `refresh` reads the cached projects and their revocations again (every
 * PROJECT_REFRESH_MS, and when the bus comes back): a change whose event was lost still applies.
 */
import { randomBytes } from 'node:crypto';
import {
  DEFAULT_TOKEN_RULES,
  mintProjectToken,
  type ProjectVerifier,
  projectVerifier,
  type TokenRules,
  type VerifiedToken,
} from '../auth/project-jwt.js';
import { type Bus, type BusEvent, CONTROL_TOPIC } from '../bus/bus.js';
import {
  noSettings,
  type Project,
  type ProjectSettings,
  type ProjectSummary,
  type Revocations,
} from '../domain.js';
import type { ErrorCode } from '../errors.js';
import type { Store, ProjectChange as StoredChange } from '../store/store.js';
import { changedSettings, type ProjectPatch, sameSettings } from './project-settings.js';
import type { TokenRequest } from './project-tokens.js';
import { isRevoked, sameRevocations, withRevocation } from './revocations.js';

/**
 * Verified tokens kept per project, with their compiled room permissions, for HTTP callers that
 * send the same token on every request (a WebSocket checks its token once, and on refresh).
 * Bounded, so that many connections do not pin their tokens.
 */
const MAX_CACHED_TOKENS_PER_PROJECT = 1024;
/**
 * An unknown hash is remembered this long, so that a flood of attempts with made-up hashes costs
 * one lookup per hash, not one per attempt; a project created meanwhile drops its miss at once.
 */
export const MISS_TTL_MS = 2000;
/** Misses remembered at most (a flood of distinct hashes must not grow memory without bound). */
const MAX_CACHED_MISSES = 10_000;

interface CachedProject {
  project: Project;
  verify: ProjectVerifier;
  tokens: Map<string, VerifiedToken>;
  /** As last read or announced; undefined: none. Replaced, never changed in place. */
  revocations: Revocations | undefined;
}

export type ProjectChange = Extract<
  BusEvent,
  {
    kind:
      | 'project-created'
      | 'project-rotated'
      | 'project-updated'
      | 'project-deleted'
      | 'project-disconnected';
  }
>;

export type Disconnection = Extract<ProjectChange, { kind: 'project-disconnected' }>;

/** Why a disconnection was not carried out everywhere. */
export type DisconnectFailure = Extract<
  ErrorCode,
  'unknownProject' | 'storeUnavailable' | 'notDelivered'
>;

/** Why a connection or a call is refused before it reaches a project. */
export type AuthFailure = Extract<
  ErrorCode,
  'storeUnavailable' | 'unknownProject' | 'invalidToken' | 'tokenExpired'
>;

export type Authentication =
  | ({ ok: true; project: Project } & VerifiedToken)
  | { ok: false; error: AuthFailure };

/**
 * 12 random bytes in base64url; never starting with `-`, so that `--hash HASH` on a command line
 * is not read as another option.
 */
export function newProjectHash(): string {
  for (;;) {
    const hash = randomBytes(12).toString('base64url');
    if (!hash.startsWith('-')) return hash;
  }
}

export function newJwtSecret(): string {
  return randomBytes(32).toString('base64url');
}

const REVOKED: Authentication = { ok: false, error: 'invalidToken' };

export class Projects {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #cache = new Map<string, CachedProject>();
  /** Unknown hashes, with when each was last found missing. */
  readonly #misses = new Map<string, number>();
  /**
   * Each known project's settings as last read: kept while its cache entry is dropped and read
   * again, so that the hot path (limits) never waits for the store.
   */
  readonly #settings = new Map<string, ProjectSettings>();
  /** Bumped by every invalidation, so that a lookup that raced one does not cache stale data. */
  #generation = 0;
  readonly #listeners: ((event: ProjectChange) => void)[] = [];
  readonly #revokedListeners: ((project: string) => void)[] = [];
  readonly #rules: TokenRules;

  constructor(store: Store, bus: Bus, rules: TokenRules = DEFAULT_TOKEN_RULES) {
    this.#store = store;
    this.#bus = bus;
    this.#rules = rules;
  }

  async create(name: string): Promise<Project> {
    const project: Project = {
      hash: newProjectHash(),
      name,
      jwtSecret: newJwtSecret(),
      createdAt: new Date().toISOString(),
      settings: noSettings(),
    };
    await this.#store.createProject(project);
    // Instances that cached a miss for this hash (a client that tried too early) drop it.
    await this.#announce({ kind: 'project-created', project: project.hash });
    return project;
  }

  list(): Promise<ProjectSummary[]> {
    return this.#store.listProjects();
  }

  async get(hash: string): Promise<Project | undefined> {
    return (await this.#lookup(hash))?.project;
  }

  /**
   * Changes the name and/or settings (only the values the patch names), and resolves the project
   * as it is now, or undefined for an unknown project. Every instance drops its cached copy.
   */
  async update(hash: string, patch: ProjectPatch): Promise<Project | undefined> {
    // Read from the store, not the cache: another instance may have changed the settings since,
    // and the values this patch does not name must stay as they are there.
    const current = await this.#store.getProject(hash);
    if (current === undefined) return undefined;
    const change: StoredChange = {};
    if (patch.name !== undefined) change.name = patch.name;
    if (patch.settings !== undefined) {
      change.settings = changedSettings(current.settings, patch.settings);
    }
    if (change.name === undefined && change.settings === undefined) return current;
    const updated = await this.#store.updateProject(hash, change);
    if (updated !== undefined) await this.#announce({ kind: 'project-updated', project: hash });
    return updated;
  }

  /** Resolves false for an unknown project. Every instance closes the project's sockets. */
  async delete(hash: string): Promise<boolean> {
    const deleted = await this.#store.deleteProject(hash);
    if (deleted) await this.#announce({ kind: 'project-deleted', project: hash });
    return deleted;
  }

  /**
   * Closes the connections of `user` (undefined: of every user) of the project, on every instance;
   * with `revoke`, first stores that their tokens issued before the current second are refused
   * from then on (see `isRevoked`). Resolves true when done, else why not: an unknown project or a
   * store that does not answer (nothing is closed); a bus that does not take the event
   * (`notDelivered`: this instance closed its connections and any revocation is stored, so the
   * other instances refuse the tokens within PROJECT_REFRESH_MS, but may keep their connections).
   */
  async disconnect(
    hash: string,
    user: string | undefined,
    revoke: boolean,
  ): Promise<true | DisconnectFailure> {
    let notBefore: number | null = null;
    try {
      if (revoke) {
        notBefore = Math.floor(Date.now() / 1000);
        if (!(await this.#store.revokeTokens(hash, user, notBefore))) return 'unknownProject';
      } else if ((await this.#lookup(hash)) === undefined) {
        return 'unknownProject';
      }
    } catch {
      return 'storeUnavailable';
    }
    const event: Disconnection = {
      kind: 'project-disconnected',
      project: hash,
      user: user ?? null,
      notBefore,
    };
    this.apply(event);
    try {
      await this.#bus.publish(CONTROL_TOPIC, event);
    } catch {
      return 'notDelivered';
    }
    return true;
  }

  /**
   * A token for a user of the project (see mintProjectToken), signed with the secret the store
   * holds now rather than a cached one that a rotation elsewhere may have outdated. Resolves
   * undefined for an unknown project; rejects when the store cannot answer.
   */
  async mintToken(
    hash: string,
    request: TokenRequest,
    nowMs = Date.now(),
  ): Promise<{ jwt: string; exp: number } | undefined> {
    const project = await this.#store.getProject(hash);
    if (project === undefined) return undefined;
    const { sub, ttlSeconds, claims } = request;
    return mintProjectToken(project.jwtSecret, sub, ttlSeconds, claims, nowMs);
  }

  /** Resolves the new secret, or undefined for an unknown project. */
  async rotateSecret(hash: string): Promise<string | undefined> {
    const secret = newJwtSecret();
    if (!(await this.#store.setProjectSecret(hash, secret))) return undefined;
    await this.#announce({ kind: 'project-rotated', project: hash });
    return secret;
  }

  /** Listens for project changes, whether made here or on another instance. */
  /**
   * Called when a refresh found revocations whose event never arrived here: the caller closes the
   * connections whose tokens `isRevokedNow` refuses.
   */
  onRevokedLate(listener: (project: string) => void): void {
    this.#revokedListeners.push(listener);
  }

  /** Whether the cached revocations refuse a token of `user` issued at `issuedAtS`. */
  isRevokedNow(project: string, user: string, issuedAtS: number | undefined): boolean {
    return isRevoked(this.#cache.get(project)?.revocations, user, issuedAtS);
  }

  onChange(listener: (event: ProjectChange) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Applies a change made here or received on the control topic: drops the cache (a disconnection
   * with a revocation updates the cached revocations instead), tells listeners.
   */
  apply(event: ProjectChange): void {
    // Also for a revocation: a lookup or refresh that read the store before it was written must
    // not cache what it read.
    this.#generation++;
    if (event.kind === 'project-disconnected') {
      const cached = this.#cache.get(event.project);
      // Not cached here: the next lookup reads the revocation from the store, written before the
      // event was sent.
      if (cached !== undefined && event.notBefore !== null) {
        cached.revocations = withRevocation(cached.revocations, event.user, event.notBefore);
      }
    } else {
      this.#cache.delete(event.project);
      this.#misses.delete(event.project);
      if (event.kind === 'project-deleted') this.#settings.delete(event.project);
      else if (this.#settings.has(event.project)) {
        // Its settings are in use here: read them again now rather than at the next lookup.
        this.#lookup(event.project).catch(() => undefined);
      }
    }
    for (const listener of this.#listeners) listener(event);
  }

  /** A project's settings as last read, at once; undefined for a project not read here yet. */
  settingsOf(hash: string): ProjectSettings | undefined {
    return this.#settings.get(hash);
  }

  /**
   * Reads the cached projects, and `active` ones (with connections here), again in one query, and
   * applies what changed as if its event had arrived. Rejects when the store cannot answer.
   */
  async refresh(active: Iterable<string> = []): Promise<void> {
    const hashes = new Set([...this.#cache.keys(), ...active]);
    if (hashes.size === 0) return;
    const generation = this.#generation;
    const [projects, revocations] = await Promise.all([
      this.#store.getProjects([...hashes]),
      this.#store.revocations([...hashes]),
    ]);
    const current = new Map(projects.map((project) => [project.hash, project]));
    // A change applied while the queries ran is newer than what they read.
    if (generation !== this.#generation) return;
    for (const hash of hashes) {
      const project = current.get(hash);
      if (project === undefined) {
        this.apply({ kind: 'project-deleted', project: hash });
        continue;
      }
      const entry = this.#cache.get(hash);
      if (entry === undefined) continue;
      const cached = entry.project;
      if (cached.jwtSecret !== project.jwtSecret) {
        this.apply({ kind: 'project-rotated', project: hash });
      } else if (cached.name !== project.name || !sameSettings(cached.settings, project.settings)) {
        this.apply({ kind: 'project-updated', project: hash });
      } else if (!sameRevocations(entry.revocations, revocations.get(hash))) {
        // A revocation whose event was lost: in force from now on, like one that arrived, and
        // the open connections it revokes are closed.
        entry.revocations = revocations.get(hash);
        for (const listener of this.#revokedListeners) listener(hash);
      }
    }
  }

  /**
   * Checks a token of the project: from the verified tokens kept for it when it is one of them,
   * else verified (and kept, unless `remember` is false: a WebSocket's token, checked once).
   */
  async authenticate(hash: string, token: string, remember = true): Promise<Authentication> {
    let cached: CachedProject | undefined;
    try {
      cached = await this.#lookup(hash);
    } catch {
      return { ok: false, error: 'storeUnavailable' };
    }
    if (cached === undefined) return { ok: false, error: 'unknownProject' };
    const known = cached.tokens.get(token);
    if (known !== undefined) {
      // The verifier's own rule: valid up to and including exp + the tolerance.
      const { expiresAtMs } = known;
      if (expiresAtMs === undefined || Date.now() <= expiresAtMs + this.#rules.clockToleranceMs) {
        if (isRevoked(cached.revocations, known.sub, known.issuedAtS)) return REVOKED;
        return { ok: true, project: cached.project, ...known };
      }
      cached.tokens.delete(token);
    }
    const check = cached.verify(token);
    if (!check.ok) return check;
    if (isRevoked(cached.revocations, check.sub, check.issuedAtS)) return REVOKED;
    const { sub, expiresAtMs, issuedAtS, permissions } = check;
    if (remember) {
      if (cached.tokens.size >= MAX_CACHED_TOKENS_PER_PROJECT) cached.tokens.clear();
      cached.tokens.set(token, { sub, expiresAtMs, issuedAtS, permissions });
    }
    return { ok: true, project: cached.project, sub, expiresAtMs, issuedAtS, permissions };
  }

  async #lookup(hash: string): Promise<CachedProject | undefined> {
    const cached = this.#cache.get(hash);
    if (cached !== undefined) return cached;
    const missedAt = this.#misses.get(hash);
    if (missedAt !== undefined) {
      if (Date.now() - missedAt < MISS_TTL_MS) return undefined;
      this.#misses.delete(hash);
    }
    const generation = this.#generation;
    const project = await this.#store.getProject(hash);
    if (project === undefined) {
      if (generation === this.#generation) this.#rememberMiss(hash);
      return undefined;
    }
    // Only for a project found: a flood of made-up hashes costs one query each, not two.
    const revocations = await this.#store.revocations([hash]);
    const entry: CachedProject = {
      project,
      verify: projectVerifier(project.jwtSecret, this.#rules),
      tokens: new Map(),
      revocations: revocations.get(hash),
    };
    if (generation === this.#generation) {
      this.#cache.set(hash, entry);
      this.#settings.set(hash, project.settings);
    }
    return entry;
  }

  #rememberMiss(hash: string): void {
    if (this.#misses.size >= MAX_CACHED_MISSES) {
      const now = Date.now();
      for (const [missed, at] of this.#misses) {
        if (now - at >= MISS_TTL_MS) this.#misses.delete(missed);
      }
      if (this.#misses.size >= MAX_CACHED_MISSES) this.#misses.clear();
    }
    this.#misses.set(hash, Date.now());
  }

  async #announce(event: ProjectChange): Promise<void> {
    // This instance applies the change at once, even when the bus is down; the bus carries it to
    // the others (and back here, where applying it again is harmless).
    this.apply(event);
    await this.#bus.publish(CONTROL_TOPIC, event).catch(() => undefined);
  }
}
