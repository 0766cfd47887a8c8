/**
 * `npm run bench`: for each run, scenario and server, starts the server on 127.0.0.1, drives it
 * with the load workers, stops it by PID; then prints the comparison, writes the raw figures to
 * bench/results/latest.json and (not in smoke mode) regenerates docs/benchmarks.md and .svg.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadPool } from './load/pool.js';
import { machine } from './machine.js';
import { type Options, parseOptions, USAGE } from './options.js';
import { formatSummary, summarise } from './profile.js';
import {
  type Cell,
  type CellRun,
  chartSvg,
  markdownReport,
  medianFigures,
  type ProfileRecord,
  type Results,
  textReport,
} from './report.js';
import { chat } from './scenarios/chat.js';
import { connectScenario } from './scenarios/connect.js';
import { fanout } from './scenarios/fanout.js';
import { httpPublish } from './scenarios/http-publish.js';
import { idle } from './scenarios/idle.js';
import { multiInstance } from './scenarios/multi-instance.js';
import { multiTenant } from './scenarios/multi-tenant.js';
import { presence } from './scenarios/presence.js';
import { recovery } from './scenarios/recovery.js';
import type { Scenario, ScenarioOutcome } from './scenarios/types.js';
import { killAllNow, stopAll } from './servers/processes.js';
import {
  NotAvailable,
  SERVERS,
  type ServerDef,
  SOCKET_BASE_SETTINGS,
  type Target,
} from './servers/targets.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RESULTS_DIR = join(ROOT, 'bench', 'results');
const DOCS_DIR = join(ROOT, 'docs');
const SCENARIOS: Scenario[] = [
  fanout,
  chat,
  idle,
  connectScenario,
  httpPublish,
  multiTenant,
  multiInstance,
  recovery,
  presence,
];
/** No scenario may take longer than this; past it the cell fails and the bench goes on. */
const SCENARIO_TIMEOUT_MS = 6 * 60 * 1000;
/** Figures that must be present in a smoke run for the scenario to count as measured. */
const REQUIRED: Record<Scenario['name'], string[]> = {
  fanout: ['cpuUsPerDelivery', 'refP99Ms'],
  chat: ['cpuUsPerMessage', 'refP99Ms'],
  idle: ['rssKbPerConnection'],
  connect: ['cpuUsPerConnect', 'connectsPerSec'],
  http: ['requestsPerSec', 'cpuUsPerRequest', 'deliveryP99Ms'],
  multitenant: ['cpuUsPerMessage', 'refP99Ms'],
  multiinstance: ['cpuUsPerMessage', 'refP99Ms'],
  recovery: ['catchUpMs', 'replayedPerSec', 'cpuUsPerReplayed'],
  presence: ['cpuUsPerJoin', 'allEventsMs', 'eventsPerSec'],
};

const started = Date.now();

function log(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[${seconds}s] ${message}\n`);
}

function fdLimit(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const match = /Max open files\s+(\d+)/.exec(limits);
    return match === null ? Number.POSITIVE_INFINITY : Number(match[1]);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function checkFdLimit(options: Options): void {
  const limit = fdLimit();
  const s = options.sizes;
  const most = Math.max(
    s.idleConnections,
    s.connectConnections,
    s.fanoutMembers,
    s.chatRooms * 2,
    s.tenantProjects * s.tenantRooms * s.tenantMembers,
    s.clusterRooms * s.clusterMembers,
    s.recoveryRooms * (s.recoveryMembers + 1),
    s.presenceWatchers + s.presenceConnections,
  );
  // The server holds every connection; each worker its share. Children inherit this limit.
  if (most + 200 > limit) {
    throw new Error(
      `the file-descriptor limit is ${limit}, below the ${most} connections asked for: ` +
        `raise it (ulimit -n ${most + 1000}) or ask for fewer`,
    );
  }
  log(`file-descriptor limit ${limit} (largest scenario: ${most} connections)`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Plan {
  scenario: Scenario;
  server: ServerDef;
  cell: Cell;
}

async function runCell(
  plan: Plan,
  options: Options,
  pool: LoadPool,
  run: number,
  profileDir: string | undefined,
): Promise<CellRun> {
  const { scenario, server } = plan;
  const instances = scenario.instances(options.sizes);
  const begun = Date.now();
  let target: Target | undefined;
  try {
    target = await server.start({ instances, profileDir });
    log(`${scenario.name} / ${server.name}: started on port ${target.ports.join(', ')}`);
    const outcome: ScenarioOutcome = await withTimeout(
      scenario.run({
        server,
        target,
        pool,
        sizes: options.sizes,
        log: (message) => log(`${scenario.name} / ${server.name}: ${message}`),
      }),
      SCENARIO_TIMEOUT_MS,
      `${scenario.name} on ${server.name}`,
    );
    return { run, durationMs: Date.now() - begun, outcome };
  } catch (error) {
    if (error instanceof NotAvailable) throw error;
    const message = error instanceof Error ? error.message : String(error);
    log(`${scenario.name} / ${server.name}: FAILED: ${message}`);
    return { run, durationMs: Date.now() - begun, error: message };
  } finally {
    await pool.closeAll().catch(() => undefined);
    await target?.stop().catch(() => undefined);
  }
}

/**
 * The main thread's profile in `dir`: Node names each `CPU.<date>.<time>.<pid>.<thread>.<seq>`,
 * and a worker thread (SQLite's checkpointer, the opt-in store worker) writes its own beside it.
 * Thread 0 is the main thread; without one, the largest file.
 */
function mainThreadProfile(dir: string): string | undefined {
  try {
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    const main = files.filter((f) => f.split('.').at(-3) === '0').sort();
    const bySize = (a: string, b: string): number =>
      statSync(join(dir, b)).size - statSync(join(dir, a)).size;
    const picked = main.at(-1) ?? files.sort(bySize)[0];
    return picked === undefined ? undefined : join(dir, picked);
  } catch {
    return undefined;
  }
}

async function bench(options: Options): Promise<number> {
  checkFdLimit(options);
  const pool = new LoadPool(options.workers);
  const plans: Plan[] = [];
  const available = new Map<string, string | undefined>();
  for (const scenario of SCENARIOS.filter((s) => options.scenarios.includes(s.name))) {
    for (const server of SERVERS.filter((s) => options.servers.includes(s.name))) {
      if (!scenario.appliesTo(server)) continue;
      const instances = scenario.instances(options.sizes);
      const key = `${server.name}:${instances}`;
      if (!available.has(key)) available.set(key, await server.check(instances));
      const reason = available.get(key);
      plans.push({
        scenario,
        server,
        cell: {
          scenario: scenario.name,
          scenarioTitle: scenario.title,
          server: server.name,
          label: server.label,
          setup: server.describe(instances),
          status: reason === undefined ? 'ok' : 'skipped',
          ...(reason === undefined ? {} : { reason: `not available: ${reason}` }),
          figures: {},
          clientBound: [],
          notes: [],
          runs: [],
        },
      });
    }
  }
  for (let run = 1; run <= options.runs; run++) {
    log(`run ${run} of ${options.runs}`);
    for (const plan of plans) {
      if (plan.cell.status === 'skipped') continue;
      try {
        plan.cell.runs.push(await runCell(plan, options, pool, run, undefined));
      } catch (error) {
        plan.cell.status = 'skipped';
        plan.cell.reason = `not available: ${error instanceof Error ? error.message : String(error)}`;
        log(`${plan.scenario.name} / ${plan.server.name}: ${plan.cell.reason}`);
      }
    }
  }
  // Profiled runs come after the measured ones and are not counted: the profiler costs CPU.
  const profiles: ProfileRecord[] = [];
  for (const plan of plans) {
    if (plan.cell.status === 'skipped' || !plan.server.socketBase) continue;
    if (!options.profile.includes(plan.scenario.name)) continue;
    const dir = join(RESULTS_DIR, 'profiles', `${plan.scenario.name}-${plan.server.name}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    log(`${plan.scenario.name} / ${plan.server.name}: profiled run (not counted)`);
    await runCell(plan, options, pool, 0, dir).catch(() => undefined);
    const file = mainThreadProfile(dir);
    if (file === undefined) {
      log(`${plan.scenario.name} / ${plan.server.name}: no profile was written`);
      continue;
    }
    profiles.push({
      scenario: plan.scenario.name,
      server: plan.server.name,
      file,
      summary: summarise(file),
    });
  }
  await pool.stop();

  for (const { cell } of plans) {
    if (cell.status === 'skipped') continue;
    const outcomes = cell.runs.flatMap((r) => (r.outcome === undefined ? [] : [r.outcome]));
    if (outcomes.length === 0) {
      cell.status = 'failed';
      cell.reason = cell.runs.map((r) => r.error).join('; ');
      continue;
    }
    cell.figures = medianFigures(outcomes);
    cell.clientBound = [...new Set(outcomes.flatMap((o) => o.clientBound))];
    cell.notes = [...new Set(outcomes.flatMap((o) => o.notes))];
    const errors = cell.runs.filter((r) => r.error !== undefined);
    if (errors.length > 0) cell.notes.push(`${errors.length} run(s) failed: ${errors[0]?.error}`);
  }

  const results: Results = {
    generatedAt: new Date().toISOString(),
    durationSec: Math.round((Date.now() - started) / 1000),
    smoke: options.smoke,
    runs: options.runs,
    workers: options.workers,
    machine: machine(),
    settings: SOCKET_BASE_SETTINGS,
    sizes: options.sizes,
    cells: plans.map((p) => p.cell),
    profiles,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const jsonPath = join(RESULTS_DIR, options.smoke ? 'smoke.json' : 'latest.json');
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  publish(results, options.docs);
  process.stdout.write(`\nraw figures: ${relative(ROOT, jsonPath)}\n`);
  log(`done in ${results.durationSec} s`);
  return options.smoke ? smokeVerdict(results) : 0;
}

/** Prints the comparison and, if asked, rewrites docs/benchmarks.md and docs/benchmarks.svg. */
function publish(results: Results, docs: boolean): void {
  process.stdout.write(`${textReport(results)}\n`);
  const profileText =
    results.profiles.length === 0
      ? undefined
      : results.profiles
          .map((p) =>
            formatSummary(`${p.scenario} / ${p.server} (${relative(ROOT, p.file)})`, p.summary),
          )
          .join('\n\n');
  if (profileText !== undefined) process.stdout.write(`\n## Profiles\n\n${profileText}\n`);
  if (docs && !results.smoke) {
    mkdirSync(DOCS_DIR, { recursive: true });
    writeFileSync(join(DOCS_DIR, 'benchmarks.md'), markdownReport(results, profileText));
    writeFileSync(join(DOCS_DIR, 'benchmarks.svg'), chartSvg(results.cells));
    process.stdout.write('docs/benchmarks.md and docs/benchmarks.svg regenerated\n');
  }
}

/** Smoke mode: every scenario produced its figures on every server that could run (never a speed). */
function smokeVerdict(results: Results): number {
  const problems: string[] = [];
  for (const cell of results.cells) {
    const where = `${cell.scenario} / ${cell.server}`;
    if (cell.status === 'skipped') continue;
    if (cell.status === 'failed') {
      problems.push(`${where}: failed: ${cell.reason}`);
      continue;
    }
    for (const key of REQUIRED[cell.scenario]) {
      if (typeof cell.figures[key] !== 'number') problems.push(`${where}: no ${key}`);
    }
  }
  for (const scenario of new Set(results.cells.map((c) => c.scenario))) {
    if (!results.cells.some((c) => c.scenario === scenario && c.status === 'ok')) {
      problems.push(`${scenario}: no server produced figures`);
    }
  }
  if (problems.length > 0) {
    process.stderr.write(`smoke: FAILED\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 1;
  }
  process.stderr.write(`smoke: every scenario produced figures (${results.cells.length} cells)\n`);
  return 0;
}

async function main(): Promise<void> {
  let options: Options | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  Object.assign(SOCKET_BASE_SETTINGS, options.settings);
  if (options.report) {
    // Only the report: from the figures of the last full run, no server started.
    const results = JSON.parse(readFileSync(join(RESULTS_DIR, 'latest.json'), 'utf8')) as Results;
    publish(results, options.docs);
    return;
  }
  let stopping = false;
  const interrupt = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping every process the bench started`);
    void stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', () => interrupt('SIGINT'));
  process.on('SIGTERM', () => interrupt('SIGTERM'));
  process.on('exit', killAllNow);
  let code = 1;
  try {
    code = await bench(options);
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.stack : String(error)}\n`);
  } finally {
    await stopAll();
  }
  process.exit(code);
}

void main();
