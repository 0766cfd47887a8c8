/**
 * The servers under test: how each is started on 127.0.0.1 (a free port), which framing it speaks,
 * how projects are made for it, and how its CPU and memory are read. Each start is a new process
 * (or three, for multi-instance) with fresh storage, stopped by PID.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Protocol } from '../load/messages.js';
import { createSchema, dropSchema, postgresUrl, schemaUrl } from './postgres.js';
import { cpuMsOfTree, rssKbOfTree } from './proc-stats.js';
import { type Started, startNode, stopPid, waitForLine } from './processes.js';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const SOCKET_BASE_MAIN = join(DIST, 'src', 'cli', 'main.js');
const READY = /listening on http:\/\/[^\s]+:(\d+)/;
const START_TIMEOUT_MS = 20000;
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Environment variables of socket-base that the bench sets itself, never inherited. */
const SOCKET_BASE_VARIABLES = [
  'PORT',
  'HOST',
  'DATABASE_URL',
  'REDIS_URL',
  'REDIS_PREFIX',
  'ADMIN_TOKEN',
  'MAX_FRAME_BYTES',
  'MAX_BODY_BYTES',
  'MAX_ROOM_LENGTH',
  'MAX_ROOMS_PER_CONNECTION',
  'RATE_LIMIT',
  'RATE_BURST',
  'SLOW_CONSUMER_BYTES',
  'HEARTBEAT_MS',
  'MAX_CONNECTIONS',
  'MAX_CONNECTIONS_PER_IP',
  'HANDSHAKE_TIMEOUT_MS',
  'SHUTDOWN_DELAY_MS',
  'SHUTDOWN_TIMEOUT_MS',
  'PROJECT_REFRESH_MS',
  'REDIS_COMMAND_TIMEOUT_MS',
  'ADMIN_PORT',
  'ADMIN_HOST',
  'PUBLIC_URL',
  'CORS_ORIGINS',
  'TRUST_PROXY',
  'LOG_LEVEL',
  'RECOVERY_MAX_MESSAGES',
  'RETENTION_MAX_AGE_S',
  'RETENTION_MAX_MESSAGES',
  'RETENTION_INTERVAL_MS',
  'IDEMPOTENCY_WINDOW_S',
  'PROJECT_MAX_CONNECTIONS',
  'PROJECT_MAX_CONNECTIONS_PER_USER',
  'PROJECT_MAX_MESSAGES_PER_SECOND',
  'PRESENCE_TTL_MS',
  'METRICS_MAX_PROJECTS',
  'JWT_CLOCK_TOLERANCE_S',
  'REQUIRE_EXP',
  'SQLITE_WORKER',
];

/**
 * socket-base's settings in the bench: the rate limiter is raised far out of the way (the bench
 * measures throughput, not the limiter); everything else is the default (so the per-address
 * limit is off, and no connection pays for looking its address up), persistence and auth on. The
 * load generator spreads its sockets over 250 source addresses all the same, so a run with
 * MAX_CONNECTIONS_PER_IP set stays under it.
 */
export const SOCKET_BASE_SETTINGS: Record<string, string> = {
  RATE_LIMIT: '1000000',
  RATE_BURST: '10000000',
  LOG_LEVEL: 'warn',
};

export interface Project {
  hash: string;
  secret: string;
}

export interface Target {
  readonly ports: number[];
  readonly pids: number[];
  /** Creates projects (socket-base); the other servers have no projects and get blanks. */
  createProjects(count: number): Promise<Project[]>;
  /** CPU time of every instance's process tree so far, in ms. */
  cpuMs(): number;
  /** Resident memory of every instance's process tree, in KiB. */
  rssKb(): number;
  /** socket-base's /metrics, every sample summed by name over labels and instances. */
  metrics?(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

export interface StartOptions {
  instances: number;
  /** Write a V8 CPU profile (`node --cpu-prof`) of each instance into this folder. */
  profileDir?: string | undefined;
}

export type ServerName = 'socket-base' | 'socket-base-pg' | 'minimal-ws' | 'socketio' | 'uws';

export interface ServerDef {
  readonly name: ServerName;
  readonly label: string;
  readonly protocol: Protocol;
  readonly socketBase: boolean;
  /** What storage and bus a run of `instances` instances uses, for the report. */
  describe(instances: number): string;
  /** undefined when it can run here with that many instances, else why it cannot. */
  check(instances: number): Promise<string | undefined>;
  start(options: StartOptions): Promise<Target>;
}

/** A server that could not start for a reason outside the bench (e.g. postgres:// not wired yet). */
export class NotAvailable extends Error {}

function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of SOCKET_BASE_VARIABLES) delete env[name];
  return env;
}

async function startInstance(
  args: string[],
  env: NodeJS.ProcessEnv,
  what: string,
  cwd?: string,
): Promise<{ started: Started; port: number }> {
  const started = startNode(args, env, what, cwd);
  try {
    const port = Number(await waitForLine(started, READY, START_TIMEOUT_MS));
    return { started, port };
  } catch (error) {
    await stopPid(started.pid, 2000);
    throw error;
  }
}

function measured(pids: number[]): Pick<Target, 'cpuMs' | 'rssKb'> {
  return {
    cpuMs: () => pids.reduce((sum, pid) => sum + cpuMsOfTree(pid), 0),
    rssKb: () => pids.reduce((sum, pid) => sum + rssKbOfTree(pid), 0),
  };
}

function blanks(count: number): Promise<Project[]> {
  return Promise.resolve(Array.from({ length: count }, () => ({ hash: '', secret: '' })));
}

function adminPost(port: number, token: string, body: string): Promise<Project> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/admin/projects',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          if (res.statusCode !== 201) {
            reject(new Error(`POST /admin/projects answered ${res.statusCode}: ${text}`));
            return;
          }
          const parsed = JSON.parse(text) as { hash: string; jwtSecret: string };
          resolve({ hash: parsed.hash, secret: parsed.jwtSecret });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function createSocketBaseProjects(
  port: number,
  token: string,
  count: number,
): Promise<Project[]> {
  const projects: Project[] = [];
  for (let i = 0; i < count; i += 10) {
    const batch = Array.from({ length: Math.min(10, count - i) }, (_, j) =>
      adminPost(port, token, JSON.stringify({ name: `bench-${i + j}` })),
    );
    projects.push(...(await Promise.all(batch)));
  }
  return projects;
}

function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sums Prometheus samples by metric name (labels dropped) over every instance. */
async function scrape(ports: number[]): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  for (const port of ports) {
    const text = await httpGet(port, '/metrics');
    for (const line of text.split('\n')) {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)$/.exec(line);
      if (match === null) continue;
      const value = Number(match[2]);
      if (!Number.isFinite(value)) continue;
      totals.set(match[1] ?? '', (totals.get(match[1] ?? '') ?? 0) + value);
    }
  }
  return totals;
}

export function redisAnswers(url = REDIS_URL): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

interface SocketBaseStorage {
  /** DATABASE_URL (and extra env) for this run; `cleanup` undoes what `prepare` made. */
  prepare(instances: number): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;
}

const sqliteStorage: SocketBaseStorage = {
  prepare(instances) {
    const dir = mkdtempSync(join(tmpdir(), 'socket-base-bench-'));
    const env: Record<string, string> = { DATABASE_URL: `sqlite:${join(dir, 'bench.db')}` };
    // Several instances share one SQLite file and meet on Redis (the contract allows it).
    if (instances > 1) {
      env.REDIS_URL = REDIS_URL;
      env.REDIS_PREFIX = `sb-bench-${randomBytes(6).toString('hex')}:`;
    }
    return Promise.resolve({
      env,
      cleanup: () => {
        rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    });
  },
};

const postgresStorage: SocketBaseStorage = {
  async prepare() {
    const schema = await createSchema();
    return {
      env: {
        DATABASE_URL: schemaUrl(schema),
        REDIS_URL,
        REDIS_PREFIX: `sb-bench-${randomBytes(6).toString('hex')}:`,
      },
      cleanup: () => dropSchema(schema),
    };
  },
};

function socketBase(
  name: ServerName,
  label: string,
  storage: SocketBaseStorage,
  describe: (instances: number) => string,
): ServerDef {
  const def: ServerDef = {
    name,
    label,
    protocol: 'plain',
    socketBase: true,
    describe,
    async check(instances) {
      const needsRedis = name === 'socket-base-pg' || instances > 1;
      if (needsRedis && !(await redisAnswers())) return `Redis does not answer at ${REDIS_URL}`;
      if (name === 'socket-base-pg') {
        try {
          await dropSchema(await createSchema());
        } catch (error) {
          return `PostgreSQL does not answer at ${postgresUrl()}: ${String(error)}`;
        }
      }
      return undefined;
    },
    async start(options) {
      const prepared = await storage.prepare(options.instances);
      const adminToken = randomBytes(24).toString('hex');
      const cwd = mkdtempSync(join(tmpdir(), 'socket-base-cwd-'));
      const env: NodeJS.ProcessEnv = {
        ...baseEnv(),
        ...SOCKET_BASE_SETTINGS,
        ...prepared.env,
        PORT: '0',
        HOST: '127.0.0.1',
        ADMIN_TOKEN: adminToken,
      };
      const nodeArgs =
        options.profileDir === undefined
          ? []
          : ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`];
      const instances: { started: Started; port: number }[] = [];
      const cleanup = async (): Promise<void> => {
        // Enough time for a profile to be written at exit.
        await Promise.all(instances.map((i) => stopPid(i.started.pid, 15000)));
        await prepared.cleanup().catch(() => undefined);
        rmSync(cwd, { recursive: true, force: true });
      };
      try {
        // One after the other: the first one migrates the shared database.
        for (let i = 0; i < options.instances; i++) {
          instances.push(
            await startInstance(
              [...nodeArgs, SOCKET_BASE_MAIN, 'serve'],
              env,
              `${name} instance ${i}`,
              cwd,
            ),
          );
        }
      } catch (error) {
        await cleanup();
        const message = error instanceof Error ? error.message : String(error);
        if (name === 'socket-base-pg') throw new NotAvailable(message);
        throw error;
      }
      const pids = instances.map((i) => i.started.pid);
      const ports = instances.map((i) => i.port);
      return {
        ports,
        pids,
        createProjects: (count) => createSocketBaseProjects(ports[0] ?? 0, adminToken, count),
        metrics: () => scrape(ports),
        ...measured(pids),
        stop: cleanup,
      };
    },
  };
  return def;
}

function script(name: ServerName, label: string, protocol: Protocol): ServerDef {
  const path = join(DIST, 'bench', 'servers', `${name}.js`);
  return {
    name,
    label,
    protocol,
    socketBase: false,
    describe: () => 'in memory, no auth',
    check: (instances) =>
      Promise.resolve(instances === 1 ? undefined : 'one instance only (no cross-instance bus)'),
    async start(options) {
      if (options.instances !== 1) throw new NotAvailable('one instance only');
      const env: NodeJS.ProcessEnv = { ...baseEnv(), PORT: '0', HOST: '127.0.0.1' };
      let instance: { started: Started; port: number };
      try {
        instance = await startInstance([path], env, name);
      } catch (error) {
        if (name === 'uws') throw new NotAvailable(String(error));
        throw error;
      }
      const pids = [instance.started.pid];
      return {
        ports: [instance.port],
        pids,
        createProjects: blanks,
        ...measured(pids),
        stop: () => stopPid(instance.started.pid, 5000),
      };
    },
  };
}

export const SERVERS: ServerDef[] = [
  socketBase('socket-base', 'socket-base (SQLite)', sqliteStorage, (instances) =>
    instances > 1
      ? `${instances} instances, Redis + one shared SQLite file`
      : 'SQLite, in-process bus',
  ),
  socketBase('socket-base-pg', 'socket-base (Redis + PostgreSQL)', postgresStorage, (instances) =>
    instances > 1 ? `${instances} instances, Redis + PostgreSQL` : 'Redis + PostgreSQL',
  ),
  script('minimal-ws', 'minimal ws', 'plain'),
  script('socketio', 'Socket.IO 4.8', 'socketio'),
  script('uws', 'uWebSockets.js 20.30', 'plain'),
];
