/**
 * Environment → typed Config. Every setting has one row in SETTINGS with its default; a bad value
 * throws ConfigError naming the variable, which the CLI prints as one line (no stack trace).
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  /**
   * SQLite only: run the store on a worker thread of its own (SqliteWorkerStore) rather than on
   * the event loop (SqliteStore). Off by default: see docs/decisions/0006-sqlite-store-worker.md.
   */
  sqliteWorker: boolean;
  redisUrl: string | undefined;
  redisPrefix: string;
  adminToken: string | undefined;
  maxFrameBytes: number;
  maxBodyBytes: number;
  maxRoomLength: number;
  maxRoomsPerConnection: number;
  rateLimit: number;
  rateBurst: number;
  slowConsumerBytes: number;
  heartbeatMs: number;
  shutdownDelayMs: number;
  /** Bounds the whole drain after SIGTERM/SIGINT; a second signal ends it at once. */
  shutdownTimeoutMs: number;
  maxConnections: number;
  /** Unset: no limit per client address. */
  maxConnectionsPerIp: number | undefined;
  handshakeTimeoutMs: number;
  /** Unset: /admin and /metrics are served on the main port. */
  adminPort: number | undefined;
  adminHost: string;
  /** Where browsers reach the public /ws, /api and /sdk; unset: the main port. */
  publicUrl: string | undefined;
  /** How often cached projects are read again, so that a change whose bus event was lost still applies. */
  projectRefreshMs: number;
  /** How long a Redis command (publish, subscribe) may wait for its answer. */
  redisCommandTimeoutMs: number;
  /** Server-wide retention defaults for projects without their own (undefined: keep forever). */
  retentionMaxAgeS: number | undefined;
  retentionMaxMessages: number | undefined;
  /** Server-wide limit defaults for projects without their own (undefined: no limit). */
  projectMaxConnections: number | undefined;
  projectMaxConnectionsPerUser: number | undefined;
  projectMaxMessagesPerSecond: number | undefined;
  retentionIntervalMs: number;
  idempotencyWindowS: number;
  recoveryMaxMessages: number;
  /** Tolerance for a token's `exp` and `nbf`, at connect, on HTTP and on open sockets. */
  jwtClockToleranceS: number;
  /** A token without `exp` is refused (`Invalid token`). */
  requireExp: boolean;
  /** A dead instance's connections stop being present, and counting, within this long. */
  presenceTtlMs: number;
  /** Projects with their own series on /metrics; the rest are summed under `_other`. */
  metricsMaxProjects: number;
  corsOrigins: string[];
  trustProxy: string[];
  logLevel: string;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`Invalid configuration: ${variable} ${detail}`);
  }
}

/**
 * For the catch of a connection made at start: a URL setting that is well-formed but cannot be used
 * (nothing answers, login refused) stops the start with one line naming it, its password masked.
 */
export function unusable(variable: string, url: string): (cause: unknown) => never {
  return (cause) => {
    const shown = maskCredentials(url);
    // A driver may quote the URL it was given; the message must not carry the password that way.
    const reason = (cause instanceof Error ? cause.message : String(cause)).replaceAll(url, shown);
    throw new Error(`Cannot use ${variable} ${shown}: ${reason}`);
  };
}

/**
 * A URL as it may be shown: the password of its `user:password@` part and of a `password=` query
 * parameter replaced by `***`. Malformed URLs are the ones error messages show, so this reads the
 * text instead of parsing it: everything up to the last `@` counts as credentials.
 */
export function maskCredentials(url: string): string {
  const shown = url.replace(/([?&]password=)[^&#]*/gi, '$1***');
  const at = shown.lastIndexOf('@');
  if (at === -1) return shown;
  const slashes = shown.indexOf('//');
  const userStart = slashes !== -1 && slashes < at ? slashes + 2 : 0;
  const colon = shown.indexOf(':', userStart);
  if (colon === -1 || colon > at) return shown;
  return `${shown.slice(0, colon + 1)}***${shown.slice(at)}`;
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function optionalInteger(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return integer(env, name, min, min, max);
}

function text(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? fallback : raw.trim();
}

function optional(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

function list(env: Env, name: string, fallback: string[]): string[] {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = raw.toLowerCase();
  if (TRUE.includes(value)) return true;
  if (FALSE.includes(value)) return false;
  throw new ConfigError(name, `must be true or false (or 1/0, yes/no, on/off), got "${raw}"`);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const databaseUrl = text(env, 'DATABASE_URL', 'sqlite:./data/socket-base.db');
  if (!/^sqlite:.+/.test(databaseUrl) && !/^postgres(ql)?:\/\/.+/.test(databaseUrl)) {
    throw new ConfigError(
      'DATABASE_URL',
      `must be sqlite:PATH, sqlite::memory: or postgres://…, got "${maskCredentials(databaseUrl)}"`,
    );
  }
  const redisUrl = optional(env, 'REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\/.+/.test(redisUrl)) {
    throw new ConfigError(
      'REDIS_URL',
      `must be redis://… or rediss://…, got "${maskCredentials(redisUrl)}"`,
    );
  }
  const adminToken = optional(env, 'ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new ConfigError('ADMIN_TOKEN', 'must be at least 16 characters long');
  }
  if (adminToken === undefined && databaseUrl.startsWith('postgres')) {
    throw new ConfigError('ADMIN_TOKEN', 'is required when DATABASE_URL is PostgreSQL');
  }
  const logLevel = text(env, 'LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const rateLimit = integer(env, 'RATE_LIMIT', 1000, 1, 1_000_000);
  const publicUrl = optional(env, 'PUBLIC_URL')?.replace(/\/+$/, '');
  if (publicUrl !== undefined && !/^https?:\/\/[^/]+/.test(publicUrl)) {
    throw new ConfigError('PUBLIC_URL', `must be http://… or https://…, got "${publicUrl}"`);
  }
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: text(env, 'HOST', '0.0.0.0'),
    databaseUrl,
    sqliteWorker: flag(env, 'SQLITE_WORKER', false),
    redisUrl,
    redisPrefix: text(env, 'REDIS_PREFIX', 'socket-base:'),
    adminToken,
    maxFrameBytes: integer(env, 'MAX_FRAME_BYTES', 65536, 64, 64 * 1024 * 1024),
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 131072, 64, 64 * 1024 * 1024),
    maxRoomLength: integer(env, 'MAX_ROOM_LENGTH', 256, 1, 65536),
    maxRoomsPerConnection: integer(env, 'MAX_ROOMS_PER_CONNECTION', 1000, 1, 1_000_000),
    rateLimit,
    rateBurst: integer(env, 'RATE_BURST', Math.max(2000, rateLimit), 1, 10_000_000),
    slowConsumerBytes: integer(env, 'SLOW_CONSUMER_BYTES', 8_388_608, 1024, 2 ** 40),
    heartbeatMs: integer(env, 'HEARTBEAT_MS', 30000, 50, 3_600_000),
    shutdownDelayMs: integer(env, 'SHUTDOWN_DELAY_MS', 1000, 0, 600_000),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 100, 3_600_000),
    maxConnections: integer(env, 'MAX_CONNECTIONS', 100_000, 1, 10_000_000),
    maxConnectionsPerIp: optionalInteger(env, 'MAX_CONNECTIONS_PER_IP', 1, 10_000_000),
    handshakeTimeoutMs: integer(env, 'HANDSHAKE_TIMEOUT_MS', 10000, 50, 600_000),
    adminPort: optionalInteger(env, 'ADMIN_PORT', 0, 65535),
    adminHost: text(env, 'ADMIN_HOST', '127.0.0.1'),
    publicUrl,
    projectRefreshMs: integer(env, 'PROJECT_REFRESH_MS', 1000, 50, 3_600_000),
    redisCommandTimeoutMs: integer(env, 'REDIS_COMMAND_TIMEOUT_MS', 2000, 50, 600_000),
    retentionMaxAgeS: optionalInteger(env, 'RETENTION_MAX_AGE_S', 1, 2 ** 40),
    retentionMaxMessages: optionalInteger(env, 'RETENTION_MAX_MESSAGES', 1, 2 ** 40),
    projectMaxConnections: optionalInteger(env, 'PROJECT_MAX_CONNECTIONS', 1, 2 ** 40),
    projectMaxConnectionsPerUser: optionalInteger(
      env,
      'PROJECT_MAX_CONNECTIONS_PER_USER',
      1,
      2 ** 40,
    ),
    projectMaxMessagesPerSecond: optionalInteger(
      env,
      'PROJECT_MAX_MESSAGES_PER_SECOND',
      1,
      2 ** 40,
    ),
    retentionIntervalMs: integer(env, 'RETENTION_INTERVAL_MS', 60000, 10, 86_400_000),
    idempotencyWindowS: integer(env, 'IDEMPOTENCY_WINDOW_S', 86400, 1, 2 ** 40),
    recoveryMaxMessages: integer(env, 'RECOVERY_MAX_MESSAGES', 1000, 0, 10_000_000),
    jwtClockToleranceS: integer(env, 'JWT_CLOCK_TOLERANCE_S', 5, 0, 3600),
    requireExp: flag(env, 'REQUIRE_EXP', false),
    presenceTtlMs: integer(env, 'PRESENCE_TTL_MS', 30000, 100, 3_600_000),
    metricsMaxProjects: integer(env, 'METRICS_MAX_PROJECTS', 1000, 0, 1_000_000),
    corsOrigins: list(env, 'CORS_ORIGINS', ['*']),
    trustProxy: list(env, 'TRUST_PROXY', []),
    logLevel,
  };
}

/**
 * Reads a `.env` file into the environment, never overriding a variable that is already set (the
 * real environment wins, as with dotenv).
 */
export function readDotEnv(path = '.env', env: Env = process.env): void {
  if (!existsSync(path)) return;
  for (const [key, value] of Object.entries(parseEnv(readFileSync(path, 'utf8')))) {
    if (env[key] === undefined) env[key] = value;
  }
}
