/**
 * CPU time and resident memory of a process and all its descendants, from /proc (Linux only):
 * utime + stime of /proc/PID/stat, VmRSS of /proc/PID/status.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface StatLine {
  comm: string;
  ppid: number;
  ticks: number;
}

function readStat(pid: number): StatLine | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
    };
  } catch {
    return undefined;
  }
}

/** The PID and every descendant of it that is alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] ?? -1) ?? []));
  return tree;
}

/** CPU time (user + system) of the whole tree, in ms. */
export function cpuMsOfTree(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return (ticks * 1000) / clockTicks();
}

/** CPU time of one process, in ms. */
export function cpuMsOf(pid: number): number {
  return ((readStat(pid)?.ticks ?? 0) * 1000) / clockTicks();
}

/** Resident memory of the whole tree, in KiB. */
export function rssKbOfTree(root: number): number {
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
      total += Number(match?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return total;
}

/** The services socket-base may use: their CPU is counted apart, not as foreign load. */
const SERVICES = /^(postgres|redis-server)/;

export interface Snapshot {
  /** CPU ticks of every user-space process (kernel threads left out), by PID. */
  ticks: Map<number, number>;
  services: Set<number>;
}

export function snapshot(): Snapshot {
  const ticks = new Map<number, number>();
  const services = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const stat = readStat(pid);
    if (stat === undefined || pid === 2 || stat.ppid === 2) continue;
    ticks.set(pid, stat.ticks);
    if (SERVICES.test(stat.comm)) services.add(pid);
  }
  return { ticks, services };
}

/**
 * CPU time (ms) between two snapshots of the services (PostgreSQL, Redis) and of every other
 * process outside `ours`: other work on the machine (a build, a test run) that competed with the
 * bench for the cores.
 */
export function otherCpuMs(
  before: Snapshot,
  after: Snapshot,
  ours: Set<number>,
): { servicesMs: number; foreignMs: number } {
  let services = 0;
  let foreign = 0;
  for (const [pid, now] of after.ticks) {
    if (ours.has(pid)) continue;
    const delta = Math.max(0, now - (before.ticks.get(pid) ?? 0));
    if (after.services.has(pid)) services += delta;
    else foreign += delta;
  }
  const scale = 1000 / clockTicks();
  return { servicesMs: services * scale, foreignMs: foreign * scale };
}
