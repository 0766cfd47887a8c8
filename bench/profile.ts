/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the functions with the most self time, and the
 * files (or packages) they live in. Also a command: `node dist/bench/profile.js FILE.cpuprofile`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Frame {
  name: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Sampled time not idle (GC and `(program)`, V8's native time, included). */
  busyMs: number;
  topFunctions: Frame[];
  topFiles: Frame[];
}

function where(url: string): string {
  if (url === '') return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('node_modules/');
  if (modules !== -1) {
    const rest = path.slice(modules + 'node_modules/'.length).split('/');
    const name = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    return `${name}/${rest.slice(rest[0]?.startsWith('@') ? 2 : 1).join('/')}`;
  }
  if (path.startsWith('node:')) return path;
  const dist = path.lastIndexOf('/dist/');
  return dist === -1 ? path : path.slice(dist + '/dist/'.length);
}

export function summarise(path: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    totalUs += us;
    const name = frame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    const file = where(frame.url);
    const key = frame.url === '' ? name : `${name} ${file}:${frame.lineNumber + 1}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
    files.set(
      frame.url === '' ? name : file,
      (files.get(frame.url === '' ? name : file) ?? 0) + us,
    );
  }
  const busyUs = totalUs - idleUs;
  const rank = (map: Map<string, number>): Frame[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({
        name,
        selfMs: Math.round(us / 100) / 10,
        pct: Math.round((us * 1000) / Math.max(1, busyUs)) / 10,
      }));
  return {
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    topFunctions: rank(functions),
    topFiles: rank(files),
  };
}

export function formatSummary(title: string, summary: ProfileSummary): string {
  const lines = [
    `${title}: ${summary.busyMs} ms busy of ${summary.totalMs} ms sampled`,
    '  self time by function (% of busy):',
    ...summary.topFunctions.map((f) => `    ${f.pct.toFixed(1).padStart(5)}%  ${f.name}`),
    '  self time by file:',
    ...summary.topFiles.slice(0, 15).map((f) => `    ${f.pct.toFixed(1).padStart(5)}%  ${f.name}`),
  ];
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const file of process.argv.slice(2)) {
    process.stdout.write(`${formatSummary(file, summarise(file, 40))}\n`);
  }
}
