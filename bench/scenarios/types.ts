/** What a scenario is given, and what it gives back. */
import type { LoadPool } from '../load/pool.js';
import type { ServerDef, Target } from '../servers/targets.js';

export type ScenarioName =
  | 'fanout'
  | 'chat'
  | 'idle'
  | 'connect'
  | 'http'
  | 'multitenant'
  | 'multiinstance'
  | 'recovery'
  | 'presence';

export const SCENARIO_NAMES: ScenarioName[] = [
  'fanout',
  'chat',
  'idle',
  'connect',
  'http',
  'multitenant',
  'multiinstance',
  'recovery',
  'presence',
];

/** Every size the bench uses; each one can be overridden with --NAME=VALUE. */
export interface Sizes {
  /** Length of one publishing step, ms. */
  stepMs: number;
  payloadBytes: number;
  /** p99 publish→receive latency above which a step is not sustained, ms. */
  p99LimitMs: number;
  /** Handshakes in flight at once (all workers together). */
  connectConcurrency: number;
  fanoutMembers: number;
  /** Fan-out publish rates (messages per second), tried in turn until one is not sustained. */
  fanoutRates: number[];
  /** The fan-out rate at which CPU per delivery is compared. */
  fanoutRefRate: number;
  chatRooms: number;
  chatRates: number[];
  chatRefRate: number;
  idleConnections: number;
  idleRoomSize: number;
  idleSettleMs: number;
  connectConnections: number;
  httpConcurrency: number;
  httpMs: number;
  tenantProjects: number;
  tenantRooms: number;
  tenantMembers: number;
  tenantRates: number[];
  tenantRefRate: number;
  clusterInstances: number;
  clusterRooms: number;
  clusterMembers: number;
  clusterRates: number[];
  clusterRefRate: number;
  recoveryRooms: number;
  recoveryMembers: number;
  /** Messages per room the members see live before they go away. */
  recoverySeen: number;
  /** Messages per room published while they are away: what each one's rejoin replays. */
  recoveryMissed: number;
  /** Connections that join the presence room with presence on, before the others: the watchers. */
  presenceWatchers: number;
  /** Connections (each its own user) that then join it: each join is an event to every watcher. */
  presenceConnections: number;
}

export type Figures = Record<string, number | null>;

export interface ScenarioOutcome {
  figures: Figures;
  /** Figures measured while the load generator, not the server, was the bottleneck. */
  clientBound: string[];
  notes: string[];
  /** Per-step detail, kept in the JSON only. */
  steps?: unknown[];
}

export interface ScenarioContext {
  server: ServerDef;
  target: Target;
  pool: LoadPool;
  sizes: Sizes;
  log(message: string): void;
}

export interface Scenario {
  readonly name: ScenarioName;
  readonly title: string;
  /** How many instances of the server it starts. */
  instances(sizes: Sizes): number;
  appliesTo(server: ServerDef): boolean;
  run(context: ScenarioContext): Promise<ScenarioOutcome>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function round(value: number | undefined, digits = 2): number | null {
  if (value === undefined || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
