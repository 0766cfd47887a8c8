#!/usr/bin/env node
/**
 * The `socket-base` command: `serve` (the default), `projects create|list|show|set`, `token`.
 * Every command reads the same configuration, so the CLI works on the server's database.
 */
import { parseArgs } from 'node:util';
import { signProjectToken } from '../auth/project-jwt.js';
import { MemoryBus } from '../bus/memory-bus.js';
import { type Config, loadConfig, readDotEnv } from '../config.js';
import { ERRORS } from '../errors.js';
import { openStore, startServer } from '../main.js';
import { createLogger } from '../observability/logger.js';
import { checkProjectName } from '../tenancy/project-name.js';
import {
  createdView,
  parseProjectPatch,
  projectView,
  serverDefaults,
} from '../tenancy/project-settings.js';
import { Projects } from '../tenancy/projects.js';
import { PROJECT_SET_OPTIONS, projectSetBody } from './project-flags.js';

const USAGE = `Usage:
  socket-base [serve]                              start the server
  socket-base projects create --name NAME          create a project (prints JSON with its secret)
  socket-base projects list                        list projects (JSON, no secrets)
  socket-base projects show HASH                   a project with its settings (JSON, no secret)
  socket-base projects set HASH [--name NAME] [--retention-max-age 7d|12h|3600|off]
      [--retention-max-messages N|off] [--max-connections N|off]
      [--max-connections-per-user N|off] [--max-messages-per-second N|off]
                                                   change a project (prints it as show does);
                                                   off clears a value (the default applies)
  socket-base token --hash HASH --sub USER [--ttl 1h] [--rooms 'chat:*,lobby']
      [--no-publish] [--no-broadcast]              print a JWT for a project's user; --rooms
                                                   limits it to those rooms (comma-separated,
                                                   exact names or prefixes ending in *; '' for
                                                   none), --no-publish / --no-broadcast refuse
                                                   its messages / broadcasts

Configuration comes from the environment (and a .env file): see README.md.`;

class UsageError extends Error {}

/** After the drain's timeout, how long closing the store, the bus and the sockets may take. */
const FORCED_EXIT_GRACE_MS = 5000;

const TTL = /^\d+(s|m|h|d)?$/;

/**
 * The room-permission claims the `token` flags ask for; none when no flag is given, so that the
 * token opens every room and may publish and broadcast.
 */
function permissionClaims(values: {
  rooms?: string | undefined;
  'no-publish'?: boolean | undefined;
  'no-broadcast'?: boolean | undefined;
}): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  // Split on commas exactly as given (no trimming: a room name may hold spaces); '' is no room.
  if (values.rooms !== undefined) {
    claims.rooms = values.rooms === '' ? [] : values.rooms.split(',');
  }
  if (values['no-publish'] === true) claims.publish = false;
  if (values['no-broadcast'] === true) claims.broadcast = false;
  return claims;
}

async function withProjects<T>(config: Config, work: (projects: Projects) => Promise<T>) {
  const store = await openStore(config, {});
  const bus = new MemoryBus();
  try {
    return await work(new Projects(store, bus));
  } finally {
    await store.close();
    await bus.close();
  }
}

async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  // Signals are handled from before the `listening` line, so that a supervisor that stops the
  // server as soon as it reads that line still gets an orderly shutdown.
  const started = startServer(config, { logger });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal: the operator does not want to wait for the drain.
      logger.warn({ signal }, 'second signal: exiting without finishing the shutdown');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // The drain is bounded by SHUTDOWN_TIMEOUT_MS; this guards the steps after it (closing the
    // store and the bus) against a dependency that never answers.
    setTimeout(
      () => {
        logger.error('shutdown did not finish in time: exiting');
        process.exit(1);
      },
      config.shutdownDelayMs + config.shutdownTimeoutMs + FORCED_EXIT_GRACE_MS,
    ).unref();
    started
      .then((server) => server.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await started;
}

function parseOptions(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...PROJECT_SET_OPTIONS,
        hash: { type: 'string' },
        sub: { type: 'string' },
        ttl: { type: 'string', default: '1h' },
        rooms: { type: 'string' },
        // Node 20's parseArgs has no negated options: these are options of their own.
        'no-publish': { type: 'boolean' },
        'no-broadcast': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    // Node explains some refusals (`--max-connections -1`) over several lines: keep them one.
    if (
      error instanceof TypeError &&
      'code' in error &&
      String(error.code).startsWith('ERR_PARSE_ARGS')
    ) {
      throw new UsageError(error.message.replace(/\s*\n\s*/g, ' '));
    }
    throw error;
  }
}

async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseOptions(argv);
  const [command = 'serve', sub, target] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  readDotEnv();
  const config = loadConfig();
  if (command === 'serve') return serve(config);
  if (command === 'projects' && sub === 'create') {
    const name = checkProjectName(values.name);
    if (typeof name !== 'string') throw new UsageError('projects create needs --name NAME');
    const project = await withProjects(config, (projects) => projects.create(name));
    process.stdout.write(`${JSON.stringify(createdView(project))}\n`);
    return;
  }
  if (command === 'projects' && sub === 'list') {
    const list = await withProjects(config, (projects) => projects.list());
    process.stdout.write(`${JSON.stringify({ projects: list })}\n`);
    return;
  }
  if (command === 'projects' && (sub === 'show' || sub === 'set')) {
    if (target === undefined || positionals.length > 3) {
      throw new UsageError(`projects ${sub} needs one HASH`);
    }
    const patch = sub === 'set' ? parseProjectPatch(projectSetBody(values)) : {};
    if ('error' in patch) throw new UsageError(ERRORS[patch.error].message);
    const project = await withProjects(config, (projects) =>
      sub === 'set' ? projects.update(target, patch) : projects.get(target),
    );
    if (project === undefined) throw new UsageError(`Unknown project ${target}`);
    process.stdout.write(`${JSON.stringify(projectView(project, serverDefaults(config)))}\n`);
    return;
  }
  if (command === 'token') {
    const { hash, sub: user, ttl } = values;
    if (hash === undefined || user === undefined || user === '') {
      throw new UsageError('token needs --hash HASH and --sub USER');
    }
    if (!TTL.test(ttl)) throw new UsageError('--ttl must look like 3600, 90s, 30m, 1h or 7d');
    const project = await withProjects(config, (projects) => projects.get(hash));
    if (project === undefined) throw new UsageError(`Unknown project ${hash}`);
    const token = signProjectToken(
      project.jwtSecret,
      user,
      /^\d+$/.test(ttl) ? Number(ttl) : ttl,
      permissionClaims(values),
    );
    process.stdout.write(`${token}\n`);
    return;
  }
  throw new UsageError(`Unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
}

// Every failure to start is one line naming what is wrong (a config variable, a usage error, a
// port in use), never a stack trace.
run(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`socket-base: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
