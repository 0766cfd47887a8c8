/**
 * Command-line options of `npm run bench -- …`: which scenarios and servers, how many runs, the
 * smoke mode, and every size (e.g. `--fanout-members=500`, `--chat-rates=500,1000,2000`).
 */

import { SCENARIO_NAMES, type ScenarioName, type Sizes } from './scenarios/types.js';
import type { ServerName } from './servers/targets.js';

export const DEFAULT_SIZES: Sizes = {
  stepMs: 2000,
  payloadBytes: 64,
  p99LimitMs: 50,
  connectConcurrency: 200,
  fanoutMembers: 1000,
  fanoutRates: [50, 100, 200, 400, 800, 1600, 3200],
  fanoutRefRate: 50,
  chatRooms: 500,
  chatRates: [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000],
  chatRefRate: 2000,
  idleConnections: 10000,
  idleRoomSize: 10,
  idleSettleMs: 3000,
  connectConnections: 5000,
  httpConcurrency: 32,
  httpMs: 5000,
  tenantProjects: 100,
  tenantRooms: 10,
  tenantMembers: 5,
  tenantRates: [1000, 2000, 4000, 8000, 16000, 32000],
  tenantRefRate: 1000,
  clusterInstances: 3,
  clusterRooms: 100,
  clusterMembers: 10,
  clusterRates: [500, 1000, 2000, 4000, 8000, 16000],
  clusterRefRate: 500,
  recoveryRooms: 100,
  recoveryMembers: 10,
  recoverySeen: 10,
  recoveryMissed: 100,
  presenceWatchers: 100,
  presenceConnections: 10000,
};

/** Tiny sizes: a few seconds per scenario, so that CI sees the whole bench run. */
export const SMOKE_SIZES: Sizes = {
  ...DEFAULT_SIZES,
  stepMs: 1000,
  connectConcurrency: 50,
  fanoutMembers: 50,
  fanoutRates: [20, 40],
  fanoutRefRate: 20,
  chatRooms: 20,
  chatRates: [100, 200],
  chatRefRate: 100,
  idleConnections: 200,
  idleSettleMs: 500,
  connectConnections: 200,
  httpConcurrency: 8,
  httpMs: 1000,
  tenantProjects: 5,
  tenantRooms: 2,
  tenantMembers: 3,
  tenantRates: [50, 100],
  tenantRefRate: 50,
  clusterRooms: 5,
  clusterMembers: 6,
  clusterRates: [50, 100],
  clusterRefRate: 50,
  recoveryRooms: 4,
  recoveryMembers: 3,
  recoverySeen: 2,
  recoveryMissed: 5,
  presenceWatchers: 10,
  presenceConnections: 500,
};

export const SERVER_NAMES: ServerName[] = [
  'socket-base',
  'socket-base-pg',
  'minimal-ws',
  'socketio',
  'uws',
];

/** Runs of the default bench: three fit in about fifteen minutes on 2 cores. */
export const DEFAULT_RUNS = 3;

export interface Options {
  smoke: boolean;
  scenarios: ScenarioName[];
  servers: ServerName[];
  runs: number;
  workers: number;
  /** Scenarios during which socket-base runs under `node --cpu-prof` (an extra, uncounted run). */
  profile: ScenarioName[];
  /** Write docs/benchmarks.md and docs/benchmarks.svg (never in smoke mode). */
  docs: boolean;
  /** Run nothing: print and publish the figures of bench/results/latest.json again. */
  report: boolean;
  /** socket-base settings beside the bench's own (`--set=SQLITE_WORKER=on`), for experiments. */
  settings: Record<string, string>;
  sizes: Sizes;
}

export const USAGE = `Usage: npm run bench -- [options]
  --smoke                 tiny sizes, a few seconds per scenario; asserts that every scenario
                          produced figures (never a speed); does not rewrite docs/benchmarks.md
  --scenarios=a,b         ${SCENARIO_NAMES.join(', ')}
  --servers=x,y           ${SERVER_NAMES.join(', ')}
  --runs=N                medians of N runs (default ${DEFAULT_RUNS}; 1 with --smoke)
  --workers=N             load-generator processes (default 2)
  --profile[=a,b]         after the measured runs, one more run of socket-base under
                          node --cpu-prof in these scenarios (default fanout), not counted;
                          prints the top frames
  --no-docs               do not rewrite docs/benchmarks.md and docs/benchmarks.svg
  --set=NAME=VALUE        a socket-base setting for this run (repeatable), e.g.
                          --set=SQLITE_WORKER=on; the report lists it with the others
  --report                run nothing: print the figures of bench/results/latest.json again
                          and rewrite the docs from them
  --SIZE=VALUE            any size, e.g. --fanout-members=500 --chat-rates=500,1000 --step-ms=2000
                          (${Object.keys(DEFAULT_SIZES).join(', ')})`;

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function list<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').filter((item) => item !== '');
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      throw new Error(`unknown ${what} "${item}" (one of ${allowed.join(', ')})`);
    }
  }
  return items as T[];
}

function positive(value: string, name: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new Error(`--${name} must be a number > 0`);
  return number;
}

export function parseOptions(argv: string[]): Options | 'help' {
  const smoke = argv.includes('--smoke');
  const options: Options = {
    smoke,
    scenarios: [...SCENARIO_NAMES],
    servers: [...SERVER_NAMES],
    runs: smoke ? 1 : DEFAULT_RUNS,
    workers: 2,
    profile: [],
    docs: !smoke,
    report: false,
    settings: {},
    sizes: structuredClone(smoke ? SMOKE_SIZES : DEFAULT_SIZES),
  };
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--smoke') continue;
    if (arg === '--report') {
      options.report = true;
      continue;
    }
    if (arg === '--no-docs') {
      options.docs = false;
      continue;
    }
    if (arg === '--profile') {
      options.profile = ['fanout'];
      continue;
    }
    const match = /^--([a-z][a-z0-9-]*)=(.*)$/i.exec(arg);
    if (match === null) throw new Error(`unknown argument "${arg}"\n\n${USAGE}`);
    const [, name = '', value = ''] = match;
    switch (name) {
      case 'scenarios':
        options.scenarios = list(value, SCENARIO_NAMES, 'scenario');
        break;
      case 'servers':
        options.servers = list(value, SERVER_NAMES, 'server');
        break;
      case 'runs':
        options.runs = Math.round(positive(value, name));
        break;
      case 'workers':
        options.workers = Math.round(positive(value, name));
        break;
      case 'profile':
        options.profile = list(value, SCENARIO_NAMES, 'scenario');
        break;
      case 'set': {
        const setting = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(value);
        if (setting === null) throw new Error(`--set wants NAME=VALUE, not "${value}"`);
        options.settings[setting[1] ?? ''] = setting[2] ?? '';
        break;
      }
      default: {
        const key = camel(name) as keyof Sizes;
        if (!(key in DEFAULT_SIZES)) throw new Error(`unknown option --${name}\n\n${USAGE}`);
        const sizes = options.sizes as unknown as Record<string, number | number[]>;
        sizes[key] = Array.isArray(DEFAULT_SIZES[key])
          ? value.split(',').map((item) => positive(item, name))
          : positive(value, name);
      }
    }
  }
  return options;
}
