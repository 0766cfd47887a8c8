/**
 * Who was the bottleneck during a measured window. The server and the load generator share the
 * machine's cores, so a figure is the client's, not the server's (client-bound, not quoted), when
 * a generator worker was at ≥ 90 % of a core, or when the machine was ≥ 90 % busy while the server
 * itself was below 80 % of a core (it still had room; the generator took the rest).
 */
import { cpus } from 'node:os';
import type { LoadPool } from '../load/pool.js';
import { otherCpuMs, processTree, snapshot } from '../servers/proc-stats.js';
import type { Target } from '../servers/targets.js';

export const WORKER_BOUND_PCT = 90;
export const MACHINE_BUSY_PCT = 90;
export const SERVER_SATURATED_PCT = 80;

const CORES = Math.max(1, cpus().length);

export interface CpuShare {
  serverPct: number;
  /** All generator workers together, % of one core. */
  generatorPct: number;
  /** The busiest worker, % of one core. */
  workerMaxPct: number;
  /** Server + generator, % of all the machine's cores. */
  machinePct: number;
  clientBound: boolean;
}

export function cpuShare(
  serverMs: number,
  workersBefore: number[],
  workersAfter: number[],
  wallMs: number,
): CpuShare {
  const wall = Math.max(1, wallMs);
  const workers = workersAfter.map((after, i) => ((after - (workersBefore[i] ?? 0)) * 100) / wall);
  const serverPct = (serverMs * 100) / wall;
  const generatorPct = workers.reduce((sum, pct) => sum + pct, 0);
  const workerMaxPct = Math.max(0, ...workers);
  const machinePct = (serverPct + generatorPct) / CORES;
  return {
    serverPct,
    generatorPct,
    workerMaxPct,
    machinePct,
    clientBound:
      workerMaxPct >= WORKER_BOUND_PCT ||
      (machinePct >= MACHINE_BUSY_PCT && serverPct < SERVER_SATURATED_PCT),
  };
}

/** Other processes busier than this (% of one core) during a step disturbed it: it runs again. */
export const DISTURBED_PCT = 25;

/**
 * Watches the CPU that processes outside the bench (server, workers, controller) take: the
 * services (PostgreSQL, Redis), reported apart, and everything else (foreign load).
 */
export class Bystanders {
  readonly #ours: Set<number>;
  #before = snapshot();
  #started = Date.now();

  constructor(target: Target, pool: LoadPool) {
    this.#ours = new Set([
      process.pid,
      process.ppid,
      ...pool.pids,
      ...target.pids.flatMap((pid) => processTree(pid)),
    ]);
  }

  reset(): void {
    this.#before = snapshot();
    this.#started = Date.now();
  }

  /** Their CPU since the last reset: ms, and % of one core. */
  read(): { servicesMs: number; foreignMs: number; servicesPct: number; foreignPct: number } {
    const wall = Math.max(1, Date.now() - this.#started);
    const { servicesMs, foreignMs } = otherCpuMs(this.#before, snapshot(), this.#ours);
    return {
      servicesMs,
      foreignMs,
      servicesPct: (servicesMs * 100) / wall,
      foreignPct: (foreignMs * 100) / wall,
    };
  }

  pct(): number {
    return this.read().foreignPct;
  }
}

/** A note for a measurement taken while other processes were busy (it is not repeated). */
export function disturbedNote(foreignPct: number): string[] {
  return foreignPct > DISTURBED_PCT
    ? [`other processes took ${foreignPct.toFixed(0)} % of a core during the measurement`]
    : [];
}
