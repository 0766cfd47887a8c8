/**
 * A project's settings as the admin API and the CLI read and change them: the one parser of a
 * `PATCH /admin/projects/:hash` body, how a change is laid over the settings a project has, and
 * what applies (the project's value, else the server-wide default, else none). Pure: no I/O.
 */
import type { Config } from '../config.js';
import {
  type LimitSettings,
  noSettings,
  type Project,
  type ProjectSettings,
  type RetentionSettings,
} from '../domain.js';
import type { ErrorCode } from '../errors.js';
import { checkProjectName } from './project-name.js';

/** Only the values a change names; `null` clears one (the default applies again). */
export interface SettingsChange {
  retention: Partial<RetentionSettings>;
  limits: Partial<LimitSettings>;
}

export interface ProjectPatch {
  name?: string;
  settings?: SettingsChange;
}

export type PatchRefusal = Extract<ErrorCode, 'invalidSettings' | 'nameRequired' | 'nameTooLong'>;

const RETENTION_KEYS = [
  'maxAgeSeconds',
  'maxMessagesPerRoom',
] as const satisfies readonly (keyof RetentionSettings)[];
const LIMIT_KEYS = [
  'maxConnections',
  'maxConnectionsPerUser',
  'maxMessagesPerSecond',
] as const satisfies readonly (keyof LimitSettings)[];
const PATCH_KEYS = ['name', 'settings'] as const;
const SETTINGS_KEYS = ['retention', 'limits'] as const;

/**
 * A PATCH body (already parsed from JSON) as a change, or why it is refused. Any subset of the keys
 * may come; an unknown key anywhere, a value that is neither `null` nor a positive safe integer, or
 * a `settings`/`retention`/`limits` that is not an object refuses the whole body, so that nothing
 * of it is applied. `null` for `name`, `settings`, `retention` or `limits` is treated as absent
 * (the contract's rule for optional fields); `null` for a value clears it.
 */
export function parseProjectPatch(body: unknown): ProjectPatch | { error: PatchRefusal } {
  const top = objectWith(body, PATCH_KEYS);
  if (top === undefined) return { error: 'invalidSettings' };
  const patch: ProjectPatch = {};
  if (top.settings !== undefined && top.settings !== null) {
    const groups = objectWith(top.settings, SETTINGS_KEYS);
    if (groups === undefined) return { error: 'invalidSettings' };
    const retention = valuesOf(groups.retention, RETENTION_KEYS);
    const limits = valuesOf(groups.limits, LIMIT_KEYS);
    if (retention === undefined || limits === undefined) return { error: 'invalidSettings' };
    patch.settings = { retention, limits };
  }
  if (top.name !== undefined && top.name !== null) {
    const name = checkProjectName(top.name);
    if (typeof name !== 'string') return name;
    patch.name = name;
  }
  return patch;
}

/** The settings a project has once `change` is laid over `current`. */
export function changedSettings(current: ProjectSettings, change: SettingsChange): ProjectSettings {
  return ordered({
    retention: { ...current.retention, ...change.retention },
    limits: { ...current.limits, ...change.limits },
  });
}

/** What applies to a project: its own value, else the server-wide default, else null (none). */
export function effectiveSettings(
  own: ProjectSettings,
  defaults: ProjectSettings,
): ProjectSettings {
  return ordered({
    retention: {
      maxAgeSeconds: own.retention.maxAgeSeconds ?? defaults.retention.maxAgeSeconds,
      maxMessagesPerRoom: own.retention.maxMessagesPerRoom ?? defaults.retention.maxMessagesPerRoom,
    },
    limits: {
      maxConnections: own.limits.maxConnections ?? defaults.limits.maxConnections,
      maxConnectionsPerUser:
        own.limits.maxConnectionsPerUser ?? defaults.limits.maxConnectionsPerUser,
      maxMessagesPerSecond: own.limits.maxMessagesPerSecond ?? defaults.limits.maxMessagesPerSecond,
    },
  });
}

/**
 * A hot-path reader of each project's effective limits: one object per settings value, built once
 * (settings are replaced, never changed in place, when a project is updated).
 */
export function limitsReader(
  settingsOf: (hash: string) => ProjectSettings | undefined,
  defaults: ProjectSettings,
): (hash: string) => LimitSettings {
  const none = noSettings();
  const built = new WeakMap<ProjectSettings, LimitSettings>();
  return (hash) => {
    const own = settingsOf(hash) ?? none;
    let limits = built.get(own);
    if (limits === undefined) {
      limits = effectiveSettings(own, defaults).limits;
      built.set(own, limits);
    }
    return limits;
  };
}

/** The server-wide defaults from the configuration; an unset variable is null (none). */
export function serverDefaults(
  config: Pick<
    Config,
    | 'retentionMaxAgeS'
    | 'retentionMaxMessages'
    | 'projectMaxConnections'
    | 'projectMaxConnectionsPerUser'
    | 'projectMaxMessagesPerSecond'
  >,
): ProjectSettings {
  return {
    retention: {
      maxAgeSeconds: config.retentionMaxAgeS ?? null,
      maxMessagesPerRoom: config.retentionMaxMessages ?? null,
    },
    limits: {
      maxConnections: config.projectMaxConnections ?? null,
      maxConnectionsPerUser: config.projectMaxConnectionsPerUser ?? null,
      maxMessagesPerSecond: config.projectMaxMessagesPerSecond ?? null,
    },
  };
}

export interface ProjectView {
  hash: string;
  name: string;
  createdAt: string;
  settings: ProjectSettings;
  effective: ProjectSettings;
}

/** The project as `GET /admin/projects/:hash` answers it (no secret). */
export function projectView(project: Project, defaults: ProjectSettings): ProjectView {
  return {
    hash: project.hash,
    name: project.name,
    createdAt: project.createdAt,
    settings: ordered(project.settings),
    effective: effectiveSettings(project.settings, defaults),
  };
}

/**
 * The project as its creation answers it (`POST /admin/projects`, `projects create`): the one
 * answer that shows the secret.
 */
export function createdView(project: Project): Omit<Project, 'settings'> {
  const { hash, jwtSecret, name, createdAt } = project;
  return { hash, jwtSecret, name, createdAt };
}

export function sameSettings(a: ProjectSettings, b: ProjectSettings): boolean {
  return JSON.stringify(ordered(a)) === JSON.stringify(ordered(b));
}

/** The settings with every key, in the contract's order, whatever order a store gave them in. */
function ordered(settings: ProjectSettings): ProjectSettings {
  return {
    retention: {
      maxAgeSeconds: settings.retention.maxAgeSeconds ?? null,
      maxMessagesPerRoom: settings.retention.maxMessagesPerRoom ?? null,
    },
    limits: {
      maxConnections: settings.limits.maxConnections ?? null,
      maxConnectionsPerUser: settings.limits.maxConnectionsPerUser ?? null,
      maxMessagesPerSecond: settings.limits.maxMessagesPerSecond ?? null,
    },
  };
}

/** `value` when it is a JSON object with no key outside `keys`, else undefined. */
function objectWith<K extends string>(
  value: unknown,
  keys: readonly K[],
): Partial<Record<K, unknown>> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const allowed: readonly string[] = keys;
  if (Object.keys(value).some((key) => !allowed.includes(key))) return undefined;
  return value as Partial<Record<K, unknown>>;
}

/** The values of one group (`retention` or `limits`), or undefined when any of them is refused. */
function valuesOf<K extends string>(
  group: unknown,
  keys: readonly K[],
): Partial<Record<K, number | null>> | undefined {
  if (group === undefined || group === null) return {};
  const entries = objectWith(group, keys);
  if (entries === undefined) return undefined;
  const values: Partial<Record<K, number | null>> = {};
  for (const key of keys) {
    const value = entries[key];
    if (value === undefined) continue;
    if (value !== null && !isPositiveSafeInteger(value)) return undefined;
    values[key] = value;
  }
  return values;
}

function isPositiveSafeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}
