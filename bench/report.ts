/**
 * Turns the cells (scenario × server, medians of the runs) into the comparison tables printed to
 * stdout, the bar check of issue 4, docs/benchmarks.md and the hand-written SVG chart.
 */
import type { Machine } from './machine.js';
import type { ProfileSummary } from './profile.js';
import type { Figures, ScenarioName, ScenarioOutcome, Sizes } from './scenarios/types.js';
import type { ServerName } from './servers/targets.js';

export interface CellRun {
  run: number;
  durationMs: number;
  outcome?: ScenarioOutcome;
  error?: string;
}

export interface Cell {
  scenario: ScenarioName;
  scenarioTitle: string;
  server: ServerName;
  label: string;
  setup: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  /** Medians over the runs that produced the figure. */
  figures: Figures;
  clientBound: string[];
  notes: string[];
  runs: CellRun[];
}

export interface ProfileRecord {
  scenario: ScenarioName;
  server: ServerName;
  file: string;
  summary: ProfileSummary;
}

export interface Results {
  generatedAt: string;
  durationSec: number;
  smoke: boolean;
  runs: number;
  workers: number;
  machine: Machine;
  settings: Record<string, string>;
  sizes: Sizes;
  cells: Cell[];
  profiles: ProfileRecord[];
}

interface Column {
  key: string;
  title: string;
  /** Show the ratio to the minimal ws server and to Socket.IO after the value. */
  ratio?: boolean;
}

const COSTS: Column[] = [
  { key: 'cpuUsPerMessage', title: 'CPU µs/msg @ref' },
  { key: 'cpuUsPerDelivery', title: 'CPU µs/delivery @ref' },
  { key: 'servicesCpuUsPerMessage', title: 'PostgreSQL + Redis CPU µs/msg @ref' },
  { key: 'sustainedMsgPerSec', title: 'sustained msg/s' },
  { key: 'sustainedDeliveriesPerSec', title: 'sustained deliveries/s' },
  { key: 'saturationDeliveriesPerSec', title: 'max deliveries/s' },
  { key: 'refP50Ms', title: 'p50 ms @ref' },
  { key: 'refP99Ms', title: 'p99 ms @ref' },
  { key: 'refMaxMs', title: 'max ms @ref' },
  { key: 'lostBelowSaturation', title: 'lost ≤ sustained' },
  { key: 'lostTotal', title: 'lost, all steps' },
  { key: 'closes4009', title: '4009 closes' },
  { key: 'generatorCpuPct', title: 'generator CPU %' },
];

export const COLUMNS: Record<ScenarioName, Column[]> = {
  fanout: [
    { key: 'cpuUsPerDelivery', title: 'CPU µs/delivery @ref', ratio: true },
    { key: 'sustainedMsgPerSec', title: 'sustained msg/s', ratio: true },
    { key: 'sustainedCpuUsPerDelivery', title: 'CPU µs/delivery @sustained', ratio: true },
    ...COSTS.filter(
      (c) =>
        ![
          'cpuUsPerMessage',
          'cpuUsPerDelivery',
          'servicesCpuUsPerMessage',
          'sustainedMsgPerSec',
        ].includes(c.key),
    ),
  ],
  chat: [
    { key: 'cpuUsPerMessage', title: 'CPU µs/msg @ref', ratio: true },
    { key: 'cpuUsPerDelivery', title: 'CPU µs/delivery @ref' },
    { key: 'servicesCpuUsPerMessage', title: 'PostgreSQL + Redis CPU µs/msg @ref' },
    { key: 'sustainedMsgPerSec', title: 'sustained msg/s', ratio: true },
    { key: 'sustainedCpuUsPerMessage', title: 'CPU µs/msg @sustained', ratio: true },
    { key: 'halfRate', title: 'half rate msg/s' },
    { key: 'halfP99Ms', title: 'p99 ms @half' },
    ...COSTS.filter((c) =>
      [
        'refP50Ms',
        'refP99Ms',
        'lostBelowSaturation',
        'lostTotal',
        'closes4009',
        'generatorCpuPct',
      ].includes(c.key),
    ),
  ],
  idle: [
    { key: 'rssKbPerConnection', title: 'RSS KiB/connection', ratio: true },
    { key: 'connections', title: 'connections' },
    { key: 'rssBeforeMb', title: 'RSS before MiB' },
    { key: 'rssAfterMb', title: 'RSS after MiB' },
  ],
  connect: [
    { key: 'cpuUsPerConnect', title: 'CPU µs/connect', ratio: true },
    { key: 'connectsPerSec', title: 'connects/s', ratio: true },
    { key: 'connections', title: 'connections' },
    { key: 'serverCpuPct', title: 'server CPU %' },
    { key: 'generatorCpuPct', title: 'generator CPU %' },
  ],
  http: [
    { key: 'requestsPerSec', title: 'requests/s' },
    { key: 'cpuUsPerRequest', title: 'CPU µs/request' },
    { key: 'requestP50Ms', title: 'request p50 ms' },
    { key: 'requestP99Ms', title: 'request p99 ms' },
    { key: 'deliveryP50Ms', title: 'delivery p50 ms' },
    { key: 'deliveryP99Ms', title: 'delivery p99 ms' },
    { key: 'lostTotal', title: 'lost' },
    { key: 'failed', title: 'failed requests' },
    { key: 'generatorCpuPct', title: 'generator CPU %' },
  ],
  multitenant: COSTS,
  multiinstance: COSTS,
  recovery: [
    { key: 'catchUpMs', title: 'time to catch up ms' },
    { key: 'replayedPerSec', title: 'replayed msg/s' },
    { key: 'cpuUsPerReplayed', title: 'CPU µs/replayed msg' },
    { key: 'servicesCpuUsPerReplayed', title: 'PostgreSQL + Redis CPU µs/replayed msg' },
    { key: 'members', title: 'members' },
    { key: 'replayed', title: 'replayed messages' },
    { key: 'lostTotal', title: 'lost' },
    { key: 'duplicated', title: 'duplicated' },
    { key: 'serverCpuPct', title: 'server CPU %' },
    { key: 'generatorCpuPct', title: 'generator CPU %' },
  ],
  presence: [
    { key: 'cpuUsPerJoin', title: 'CPU µs/connect + join' },
    { key: 'joinsPerSec', title: 'joins/s' },
    { key: 'allEventsMs', title: 'time to all events ms' },
    { key: 'eventsPerSec', title: 'events/s' },
    { key: 'connections', title: 'connections' },
    { key: 'watchers', title: 'watchers' },
    { key: 'events', title: 'events' },
    { key: 'serverCpuPct', title: 'server CPU %' },
    { key: 'generatorCpuPct', title: 'generator CPU %' },
  ],
};

const YARDSTICK: ServerName = 'minimal-ws';
const PEER: ServerName = 'socketio';

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const value =
    sorted.length % 2 === 1
      ? (sorted[middle] ?? 0)
      : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return Math.round(value * 1000) / 1000;
}

/** Medians of every figure over the runs that produced it. */
export function medianFigures(outcomes: ScenarioOutcome[]): Figures {
  const keys = new Set(outcomes.flatMap((o) => Object.keys(o.figures)));
  const figures: Figures = {};
  for (const key of keys) {
    const values = outcomes
      .map((o) => o.figures[key])
      .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    figures[key] = median(values);
  }
  return figures;
}

function format(value: number | null | undefined): string {
  if (value === null || value === undefined) return '–';
  const abs = Math.abs(value);
  if (Number.isInteger(value) && abs < 1000) return String(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

function ratio(cell: Cell, other: Cell | undefined, key: string): string {
  const mine = cell.figures[key];
  const theirs = other?.status === 'ok' ? other.figures[key] : undefined;
  if (typeof mine !== 'number' || typeof theirs !== 'number' || theirs === 0) return '–';
  const value = mine / theirs;
  const bound = cell.clientBound.includes(key) || other?.clientBound.includes(key);
  return `${value.toFixed(2)}×${bound ? '†' : ''}`;
}

function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(header),
    `| ${widths.map((w) => '-'.repeat(Math.max(3, w))).join(' | ')} |`,
    ...rows.map(line),
  ].join('\n');
}

export function scenarioTable(scenario: ScenarioName, cells: Cell[]): string {
  const mine = cells.filter((c) => c.scenario === scenario);
  const yardstick = mine.find((c) => c.server === YARDSTICK);
  const peer = mine.find((c) => c.server === PEER);
  const columns = COLUMNS[scenario];
  const showRatios = yardstick !== undefined || peer !== undefined;
  const header = ['server'];
  for (const column of columns) {
    header.push(column.title);
    if (column.ratio && showRatios) header.push('vs ws', 'vs Socket.IO');
  }
  const rows = mine.map((cell) => {
    const row = [cell.label];
    for (const column of columns) {
      if (cell.status !== 'ok') {
        row.push(column === columns[0] ? cell.status : '');
        if (column.ratio && showRatios) row.push('', '');
        continue;
      }
      const bound = cell.clientBound.includes(column.key) ? '†' : '';
      row.push(`${format(cell.figures[column.key])}${bound}`);
      if (column.ratio && showRatios) {
        row.push(ratio(cell, yardstick, column.key), ratio(cell, peer, column.key));
      }
    }
    return row;
  });
  return markdownTable(header, rows);
}

export interface BarCheck {
  what: string;
  measured: string;
  limit: string;
  verdict: 'met' | 'not met' | 'not measured' | 'client-bound';
}

function figure(cells: Cell[], scenario: ScenarioName, server: ServerName, key: string) {
  const cell = cells.find((c) => c.scenario === scenario && c.server === server);
  if (cell?.status !== 'ok') return undefined;
  const value = cell.figures[key];
  return typeof value === 'number' ? { value, bound: cell.clientBound.includes(key) } : undefined;
}

interface StepFigures {
  rate: number;
  sustained: boolean;
  [key: string]: unknown;
}

/**
 * The ratio of `key` between two servers at the highest rate both sustained in the same run,
 * median over the runs: the same load for both, as heavy as the weaker one takes.
 */
export function commonRateRatio(
  cells: Cell[],
  scenario: ScenarioName,
  mine: ServerName,
  other: ServerName,
  key: string,
): { ratio: number; rate: number } | undefined {
  const a = cellOf(cells, scenario, mine);
  const b = cellOf(cells, scenario, other);
  if (a === undefined || b === undefined) return undefined;
  const ratios: number[] = [];
  const rates: number[] = [];
  for (const runA of a.runs) {
    const runB = b.runs.find((r) => r.run === runA.run);
    const stepsA = (runA.outcome?.steps ?? []) as StepFigures[];
    const stepsB = (runB?.outcome?.steps ?? []) as StepFigures[];
    const sustainedB = new Map(stepsB.filter((s) => s.sustained).map((s) => [s.rate, s]));
    const both = stepsA
      .filter((s) => s.sustained && sustainedB.has(s.rate))
      .sort((x, y) => y.rate - x.rate)[0];
    if (both === undefined) continue;
    const valueA = both[key];
    const valueB = sustainedB.get(both.rate)?.[key];
    if (typeof valueA === 'number' && typeof valueB === 'number' && valueB > 0) {
      ratios.push(valueA / valueB);
      rates.push(both.rate);
    }
  }
  const ratio = median(ratios);
  const rate = median(rates);
  return ratio === null || rate === null ? undefined : { ratio, rate };
}

const PEER_NAMES: Partial<Record<ServerName, string>> = {
  'minimal-ws': 'minimal ws',
  socketio: 'Socket.IO',
  uws: 'uWebSockets.js',
};

type RatioArgs = [
  what: string,
  scenario: ScenarioName,
  key: string,
  other: ServerName,
  limit: number,
  direction: 'at most' | 'at least',
];

/** socket-base's median figure over another server's, against a limit. */
function ratioCheck(
  cells: Cell[],
  ...[what, scenario, key, other, limit, direction]: RatioArgs
): BarCheck {
  const mine = figure(cells, scenario, 'socket-base', key);
  const theirs = figure(cells, scenario, other, key);
  const limitText = `${direction} ${limit} × ${PEER_NAMES[other] ?? other}`;
  if (mine === undefined || theirs === undefined || theirs.value === 0) {
    return { what, measured: '–', limit: limitText, verdict: 'not measured' };
  }
  const value = mine.value / theirs.value;
  const met = direction === 'at most' ? value <= limit : value >= limit;
  return {
    what,
    measured: `${value.toFixed(2)}× (${format(mine.value)} vs ${format(theirs.value)})`,
    limit: limitText,
    verdict: mine.bound || theirs.bound ? 'client-bound' : met ? 'met' : 'not met',
  };
}

/** Chat's p99 at half the sustained rate, against a limit in ms. */
function halfRateLatencyCheck(cells: Cell[], limitMs: number): BarCheck {
  const half = figure(cells, 'chat', 'socket-base', 'halfP99Ms');
  return {
    what: 'chat: p99 at half the sustained rate',
    measured: half === undefined ? '–' : `${format(half.value)} ms`,
    limit: `at most ${limitMs} ms`,
    verdict: half === undefined ? 'not measured' : half.value <= limitMs ? 'met' : 'not met',
  };
}

/** The bar of issue 4, for socket-base (SQLite, one instance), from the medians. */
export function barChecks(cells: Cell[]): BarCheck[] {
  const checks: BarCheck[] = [];
  const against = (...args: RatioArgs): void => {
    checks.push(ratioCheck(cells, ...args));
  };
  const common = (
    what: string,
    scenario: ScenarioName,
    key: string,
    other: ServerName,
    limit: number,
  ): void => {
    const found = commonRateRatio(cells, scenario, 'socket-base', other, key);
    checks.push({
      what: `${what}, at the highest rate both sustain`,
      measured:
        found === undefined ? '–' : `${found.ratio.toFixed(2)}× at ${format(found.rate)} msg/s`,
      limit: `at most ${limit} × ${PEER_NAMES[other] ?? other}`,
      verdict: found === undefined ? 'not measured' : found.ratio <= limit ? 'met' : 'not met',
    });
  };
  const fanoutRef = 'fan-out: CPU per delivery, at the reference rate';
  against(fanoutRef, 'fanout', 'cpuUsPerDelivery', YARDSTICK, 0.8, 'at most');
  against(fanoutRef, 'fanout', 'cpuUsPerDelivery', PEER, 0.5, 'at most');
  common('fan-out: CPU per delivery', 'fanout', 'cpuUsPerDelivery', YARDSTICK, 0.8);
  common('fan-out: CPU per delivery', 'fanout', 'cpuUsPerDelivery', PEER, 0.5);
  const sustained = 'fan-out: sustained throughput';
  against(sustained, 'fanout', 'sustainedMsgPerSec', YARDSTICK, 1.5, 'at least');
  const chatRef = 'chat: CPU per message, at the reference rate';
  against(chatRef, 'chat', 'cpuUsPerMessage', YARDSTICK, 1.0, 'at most');
  common('chat: CPU per message', 'chat', 'cpuUsPerMessage', YARDSTICK, 1.0);
  checks.push(halfRateLatencyCheck(cells, 10));
  against('idle: memory per connection', 'idle', 'rssKbPerConnection', YARDSTICK, 1.15, 'at most');
  against('connect: CPU per connect', 'connect', 'cpuUsPerConnect', YARDSTICK, 1.15, 'at most');
  const losses = cells
    .filter((c) => c.status === 'ok' && c.server === 'socket-base')
    .map((c) => c.figures.lostBelowSaturation ?? 0)
    .reduce((sum, n) => sum + (n ?? 0), 0);
  checks.push({
    what: 'no delivery lost below saturation (socket-base, every scenario)',
    measured: `${losses} lost`,
    limit: '0',
    verdict: losses === 0 ? 'met' : 'not met',
  });
  return checks;
}

export function barTable(checks: BarCheck[]): string {
  return markdownTable(
    ['requirement', 'measured', 'limit', 'verdict'],
    checks.map((c) => [c.what, c.measured, c.limit, c.verdict]),
  );
}

function cellOf(cells: Cell[], scenario: ScenarioName, server: ServerName): Cell | undefined {
  return cells.find((c) => c.scenario === scenario && c.server === server && c.status === 'ok');
}

function stepsOf(run: CellRun | undefined): StepFigures[] {
  return (run?.outcome?.steps ?? []) as StepFigures[];
}

/**
 * Per run: socket-base's p99 over uWebSockets.js's at every fan-out rate uWebSockets.js sustained
 * (a rate socket-base did not sustain counts as infinitely worse); the worst ratio of each run.
 */
function fanoutLatencyCheck(cells: Cell[]): BarCheck {
  const what = 'fan-out: p99 at every step uWebSockets.js sustains';
  const limit = 'at most 1.5 × uWebSockets.js';
  const mine = cellOf(cells, 'fanout', 'socket-base');
  const theirs = cellOf(cells, 'fanout', 'uws');
  if (mine === undefined || theirs === undefined) {
    return { what, measured: '–', limit, verdict: 'not measured' };
  }
  const worst: { ratio: number; rate: number }[] = [];
  for (const run of mine.runs) {
    const uws = stepsOf(theirs.runs.find((r) => r.run === run.run));
    const ours = new Map(stepsOf(run).map((s) => [s.rate, s]));
    let runWorst = { ratio: 0, rate: 0 };
    for (const step of uws) {
      if (!step.sustained || typeof step.p99Ms !== 'number' || step.p99Ms <= 0) continue;
      const own = ours.get(step.rate);
      const ratio =
        own?.sustained === true && typeof own.p99Ms === 'number'
          ? own.p99Ms / step.p99Ms
          : Number.POSITIVE_INFINITY;
      if (ratio > runWorst.ratio) runWorst = { ratio, rate: step.rate };
    }
    if (runWorst.rate > 0) worst.push(runWorst);
  }
  if (worst.length === 0) return { what, measured: '–', limit, verdict: 'not measured' };
  worst.sort((a, b) => a.ratio - b.ratio);
  const middle = worst[Math.floor((worst.length - 1) / 2)] ?? { ratio: 0, rate: 0 };
  const shown = Number.isFinite(middle.ratio)
    ? `${middle.ratio.toFixed(2)}×`
    : 'not sustained by socket-base';
  return {
    what,
    measured: `worst ${shown} at ${format(middle.rate)} msg/s (median of the runs' worst)`,
    limit,
    verdict: middle.ratio <= 1.5 ? 'met' : 'not met',
  };
}

/** A ratio to the minimal ws server that must hold in every run, not only in the median. */
function everyRunCheck(
  cells: Cell[],
  what: string,
  scenario: ScenarioName,
  key: string,
  limit: number,
): BarCheck {
  const limitText = `at most ${limit} × minimal ws, in every run`;
  const mine = cellOf(cells, scenario, 'socket-base');
  const theirs = cellOf(cells, scenario, YARDSTICK);
  const ratios: number[] = [];
  for (const run of mine?.runs ?? []) {
    const a = run.outcome?.figures[key];
    const b = theirs?.runs.find((r) => r.run === run.run)?.outcome?.figures[key];
    if (typeof a === 'number' && typeof b === 'number' && b > 0) ratios.push(a / b);
  }
  if (ratios.length === 0)
    return { what, measured: '–', limit: limitText, verdict: 'not measured' };
  return {
    what,
    measured: ratios.map((r) => `${r.toFixed(2)}×`).join(', '),
    limit: limitText,
    verdict: ratios.every((r) => r <= limit) ? 'met' : 'not met',
  };
}

/** The bar of issue 14 (the stored chat path, fan-out latency, idle memory, connect). */
export function performanceChecks(cells: Cell[]): BarCheck[] {
  const checks: BarCheck[] = [];
  const against = (...args: RatioArgs): void => {
    checks.push(ratioCheck(cells, ...args));
  };
  against('chat: sustained throughput', 'chat', 'sustainedMsgPerSec', YARDSTICK, 1, 'at least');
  against(
    'chat: CPU per message, at the reference rate',
    'chat',
    'cpuUsPerMessage',
    YARDSTICK,
    1,
    'at most',
  );
  checks.push(halfRateLatencyCheck(cells, 5));
  checks.push(fanoutLatencyCheck(cells));
  against('fan-out: sustained throughput', 'fanout', 'sustainedMsgPerSec', 'uws', 0.9, 'at least');
  against('idle: memory per connection', 'idle', 'rssKbPerConnection', YARDSTICK, 0.75, 'at most');
  checks.push(everyRunCheck(cells, 'connect: CPU per connect', 'connect', 'cpuUsPerConnect', 0.9));
  return checks;
}

/**
 * One figure of every step, server by server (median over the runs that ran the step); ✗ marks a
 * step not sustained in most of them. The latency under load that a single column hides.
 */
export function stepTable(scenario: ScenarioName, cells: Cell[], key: string): string | undefined {
  const mine = cells.filter((c) => c.scenario === scenario && c.status === 'ok');
  const rates = [
    ...new Set(mine.flatMap((c) => c.runs.flatMap((r) => stepsOf(r).map((s) => s.rate)))),
  ].sort((a, b) => a - b);
  if (rates.length === 0) return undefined;
  const rows = mine.map((cell) => [
    cell.label,
    ...rates.map((rate) => {
      const steps = cell.runs.flatMap((r) => stepsOf(r).filter((s) => s.rate === rate));
      const values = steps.map((s) => s[key]).filter((v): v is number => typeof v === 'number');
      const value = median(values);
      if (value === null) return '';
      const sustained = steps.filter((s) => s.sustained).length;
      return `${format(value)}${sustained * 2 > steps.length ? '' : ' ✗'}`;
    }),
  ]);
  return markdownTable(['server', ...rates.map((rate) => `${format(rate)}/s`)], rows);
}

function cellNotes(cells: Cell[]): string[] {
  const lines: string[] = [];
  const skips = new Map<string, string[]>();
  for (const cell of cells) {
    if (cell.status !== 'skipped') continue;
    const key = `${cell.label}: skipped: ${cell.reason ?? ''}`;
    skips.set(key, [...(skips.get(key) ?? []), cell.scenarioTitle]);
  }
  for (const [text, scenarios] of skips) lines.push(`${text} (${scenarios.join(', ')})`);
  for (const cell of cells) {
    const where = `${cell.scenarioTitle} / ${cell.label}`;
    if (cell.status === 'failed') lines.push(`${where}: failed: ${cell.reason ?? ''}`);
    for (const note of cell.notes) lines.push(`${where}: ${note}`);
    if (cell.clientBound.length > 0) {
      lines.push(`${where}: client-bound (†): ${cell.clientBound.join(', ')}`);
    }
  }
  return lines;
}

/** The whole comparison, as printed to stdout. */
export function textReport(results: Results): string {
  const parts: string[] = [];
  const scenarios = [...new Set(results.cells.map((c) => c.scenario))];
  for (const scenario of scenarios) {
    const title = results.cells.find((c) => c.scenario === scenario)?.scenarioTitle ?? scenario;
    parts.push(`\n## ${title}\n\n${scenarioTable(scenario, results.cells)}`);
  }
  parts.push(
    `\n## The bar (issue 4), socket-base with SQLite\n\n${barTable(barChecks(results.cells))}`,
  );
  parts.push(`\n## The bar (issue 14)\n\n${barTable(performanceChecks(results.cells))}`);
  const fanoutSteps = stepTable('fanout', results.cells, 'p99Ms');
  if (fanoutSteps !== undefined) parts.push(`\n## fan-out p99 ms by step\n\n${fanoutSteps}`);
  const notes = cellNotes(results.cells);
  if (notes.length > 0) parts.push(`\n## Notes\n\n${notes.map((n) => `- ${n}`).join('\n')}`);
  return parts.join('\n');
}

const COLOURS: Record<ServerName, string> = {
  'socket-base': '#2563eb',
  'socket-base-pg': '#7c3aed',
  'minimal-ws': '#6b7280',
  socketio: '#f59e0b',
  uws: '#10b981',
};

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Bars of each server's cost relative to the minimal ws server (1.0), one group per scenario. */
export function chartSvg(cells: Cell[]): string {
  const metrics: { scenario: ScenarioName; key: string; title: string; unit: string }[] = [
    {
      scenario: 'fanout',
      key: 'cpuUsPerDelivery',
      title: 'fan-out: CPU per delivery at the reference rate',
      unit: 'µs',
    },
    {
      scenario: 'fanout',
      key: 'sustainedCpuUsPerDelivery',
      title: "fan-out: CPU per delivery at each server's sustained rate",
      unit: 'µs',
    },
    {
      scenario: 'chat',
      key: 'cpuUsPerMessage',
      title: 'chat: CPU per message at the reference rate',
      unit: 'µs',
    },
    {
      scenario: 'idle',
      key: 'rssKbPerConnection',
      title: 'idle: memory per connection',
      unit: 'KiB',
    },
    { scenario: 'connect', key: 'cpuUsPerConnect', title: 'connect: CPU per connect', unit: 'µs' },
  ];
  const groups = metrics
    .map((metric) => {
      const base = figure(cells, metric.scenario, YARDSTICK, metric.key);
      const bars = cells
        .filter((c) => c.scenario === metric.scenario && c.status === 'ok')
        .map((c) => ({ cell: c, value: c.figures[metric.key] }))
        .filter((b): b is { cell: Cell; value: number } => typeof b.value === 'number')
        .map((b) => ({
          server: b.cell.server,
          label: b.cell.label,
          value: b.value,
          ratio: base === undefined || base.value === 0 ? Number.NaN : b.value / base.value,
          bound: b.cell.clientBound.includes(metric.key),
        }))
        .filter((b) => Number.isFinite(b.ratio));
      return { ...metric, bars };
    })
    .filter((group) => group.bars.length > 0);
  const width = 860;
  const left = 240;
  const right = 150;
  const barHeight = 16;
  const gap = 4;
  const maxRatio = Math.max(2, ...groups.flatMap((g) => g.bars.map((b) => Math.min(b.ratio, 6))));
  const scale = (width - left - right) / maxRatio;
  let y = 56;
  const body: string[] = [];
  for (const group of groups) {
    body.push(`<text x="12" y="${y + 12}" font-weight="bold">${escapeXml(group.title)}</text>`);
    y += 20;
    for (const bar of group.bars) {
      const shown = Math.min(bar.ratio, maxRatio);
      const w = Math.max(1, shown * scale);
      body.push(
        `<text x="${left - 8}" y="${y + 12}" text-anchor="end">${escapeXml(bar.label)}</text>`,
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLOURS[bar.server]}"/>`,
        `<text x="${(left + w + 6).toFixed(1)}" y="${y + 12}">${bar.ratio.toFixed(2)}×${bar.bound ? '†' : ''}${bar.ratio > maxRatio ? ' ▸' : ''} (${format(bar.value)} ${group.unit})</text>`,
      );
      y += barHeight + gap;
    }
    y += 14;
  }
  const one = left + scale;
  const height = y + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">Cost relative to the minimal ws server (1.0×; lower is better)</text>`,
    `<text x="12" y="40" fill="#555">Medians of the runs; † = measured while the load generator was the bottleneck.</text>`,
    ...body,
    `<line x1="${one.toFixed(1)}" y1="50" x2="${one.toFixed(1)}" y2="${y}" stroke="#111" stroke-dasharray="4 3"/>`,
    `<text x="${one.toFixed(1)}" y="${y + 14}" text-anchor="middle">1.0× minimal ws</text>`,
    '</svg>',
    '',
  ].join('\n');
}

/** docs/benchmarks.md: how it was run, on what, the bar, the tables, the chart, the notes. */
export function markdownReport(results: Results, profileText: string | undefined): string {
  const m = results.machine;
  const s = results.sizes;
  const scenarios = [...new Set(results.cells.map((c) => c.scenario))];
  const setups = [
    ...new Set(
      results.cells.map(
        (c) => `${c.label}${c.scenario === 'multiinstance' ? ', multi-instance' : ''}: ${c.setup}`,
      ),
    ),
  ];
  const lines = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` on ${results.generatedAt} (${results.runs} run${results.runs === 1 ? '' : 's'}, medians; ${Math.round(results.durationSec / 60)} min). Do not edit by hand: run the bench again.`,
    '',
    '## How to run',
    '',
    '```sh',
    'npm run bench                      # every scenario and server, medians of 3 runs (~15 min on 2 cores)',
    'npm run bench -- --smoke           # tiny sizes, a few seconds per scenario (CI); does not touch this file',
    'npm run bench -- --scenarios=fanout,chat --servers=socket-base,minimal-ws --runs=1',
    'npm run bench -- --profile=fanout  # then one more, uncounted run of socket-base under node --cpu-prof',
    'npm run bench -- --report          # no run: print bench/results/latest.json again, rewrite this file',
    'node dist/bench/floor.js           # the floor under light fan-out: one loopback write, no server',
    '```',
    '',
    'Raw figures (every step of every run) go to `bench/results/latest.json`.',
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.cores} cores; memory ${m.memoryGiB} GiB; ${m.os}`,
    `- socket-base at commit ${m.commit ?? 'unknown'}`,
    `- Node ${m.node}; ${Object.entries(m.packages)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}`,
    '',
    '## Method',
    '',
    `- Every server runs as its own process on 127.0.0.1, started and stopped by PID by the bench; a fresh one (fresh storage) for each scenario. The load generator is ${results.workers} worker processes with raw TCP WebSocket clients (handshake by hand, masked frames, the send time read from the payload without a JSON parse), on the same ${m.cores} cores as the server.`,
    ...setups.map((line) => `- ${line}`),
    `- socket-base runs with persistence and auth on: every connection signs its own JWT (a distinct token for each, so no cache makes authentication free). Its rate limiter is raised out of the way (${Object.entries(
      results.settings,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(
        ', ',
      )}): the bench measures throughput, not the limiter. Every other setting is the default (SLOW_CONSUMER_BYTES 8 MiB).`,
    '- The minimal ws server is the yardstick: `ws` + `bufferutil`, `perMessageDeflate: false`, a Map of room → Set, `JSON.parse` per frame, one `JSON.stringify` into one Buffer per message, `ws.send` to every member; no auth, no storage. Socket.IO 4.8 uses `socket.join` and `io.to(room).emit`, driven over a plain WebSocket in the engine.io v4 framing. uWebSockets.js (the unofficial npm build) publishes to uWS topics.',
    '- Server CPU is utime + stime of the whole process tree from `/proc/PID/stat` (all instances, for multi-instance); the CPU of PostgreSQL and Redis is counted apart (its own column), and steps during which any other process took more than 25 % of a core are run again (twice at most); memory is VmRSS from `/proc/PID/status`.',
    `- Rates are stepped (${s.stepMs} ms each, payload ${s.payloadBytes} bytes): a step is *sustained* when no delivery is lost, no client is closed, p99 publish→receive ≤ ${s.p99LimitMs} ms and the rate is reached. After the reference rate, the search stops at the first step not sustained and tries once in between. CPU per message / per delivery is quoted at the reference rate (the same for every server: fan-out ${s.fanoutRefRate} msg/s to ${s.fanoutMembers} members, chat ${s.chatRefRate} msg/s over ${s.chatRooms} rooms of 2, multi-tenant ${s.tenantRefRate} msg/s, multi-instance ${s.clusterRefRate} msg/s). Chat's half-rate step comes last, after ${Math.min(3, s.stepMs / 1000)} s idle: it measures a steady moderate load, not the recovery from the overloaded steps before it.`,
    "- A figure marked † was measured while the load generator was the bottleneck: one of its workers at ≥ 90 % of a core, or the machine ≥ 90 % busy while the server stayed below 80 % of a core, or the publisher behind its schedule. Such a figure is a floor set by the client, not the server's, and is not quoted.",
    `- Connect: ${Math.min(1000, Math.ceil(s.connectConnections / 5))} connects first, closed again and not counted, so that every server's JIT is warm; then ${s.connectConnections} handshakes + join, ${s.connectConcurrency} at a time.`,
    `- Recovery (socket-base only; no other server recovers): ${s.recoveryRooms * s.recoveryMembers} members in ${s.recoveryRooms} rooms of ${s.recoveryMembers} (and one publisher per room) join and see ${s.recoverySeen} messages per room live, then close; ${s.recoveryMissed} messages are published into each room while they are away; their sockets open again (handshakes not measured), then all send \`join\` with \`since\` = the highest \`seq\` each had seen, at once. Time to catch up runs from the first of those joins to the last replayed message received; CPU per replayed message is the server's CPU over that window ÷ the messages missed (${s.recoveryRooms * s.recoveryMembers * s.recoveryMissed}). The workers check every member's \`seq\`s: one missing, repeated or out of order, or a join not recovered, fails the scenario.`,
    `- Presence (socket-base only; no other server has presence): ${s.presenceWatchers} watchers join one room with \`"presence":true\` (each ready once its snapshot came), then ${s.presenceConnections} connections, each its own user, handshake + join it (plain joins, ${s.connectConcurrency} at a time, after ${Math.min(1000, Math.ceil(s.presenceConnections / 5))} uncounted warm-up joins): every join is one \`presence_join\` to each watcher. CPU per connect + join is the server's CPU from the first handshake until every watcher has all ${s.presenceConnections} events, ÷ the joins; time to all events runs over the same window; events/s = the ${s.presenceWatchers * s.presenceConnections} events ÷ that time. A watcher with any other number of \`presence_join\` fails the scenario.`,
    '- Closes with 4009 (slow consumer) are counted apart from lost deliveries. "generator CPU %" is all load workers together, in % of one core (highest step).',
    '- The bar is checked two ways for CPU per delivery / message: at the reference rate (a light load every server sustains), and at the highest rate both servers sustained in the same run (median over runs). A server that coalesces writes gets cheaper per delivery as the load grows; one that writes each frame at once does not.',
    '',
    '## The bar (issue 4)',
    '',
    barTable(barChecks(results.cells)),
    '',
    '## The bar (issue 14)',
    '',
    barTable(performanceChecks(results.cells)),
    '',
    '![Cost relative to the minimal ws server](benchmarks.svg)',
    '',
    '## Results',
  ];
  for (const scenario of scenarios) {
    const title = results.cells.find((c) => c.scenario === scenario)?.scenarioTitle ?? scenario;
    lines.push('', `### ${title}`, '', scenarioTable(scenario, results.cells));
    if (scenario === 'fanout') {
      const steps = stepTable('fanout', results.cells, 'p99Ms');
      if (steps !== undefined) {
        lines.push(
          '',
          'p99 publish→receive (ms) at each step, median of the runs that ran it; ✗: not sustained in most of them; empty: the search stopped before it.',
          '',
          steps,
        );
      }
    }
  }
  const notes = cellNotes(results.cells);
  if (notes.length > 0) lines.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  if (profileText !== undefined) {
    lines.push('', '## Profile of socket-base', '', '```', profileText, '```');
  }
  lines.push('');
  return lines.join('\n');
}
