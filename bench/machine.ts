/** What the figures were measured on: CPU, cores, memory, OS, Node and package versions. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** The socket-base commit measured (BENCH_COMMIT, or git's HEAD and whether src/ differs). */
  commit: string;
  packages: Record<string, string>;
}

function commitOf(): string {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  try {
    const git = (args: string[]): string =>
      execFileSync('git', ['-C', ROOT, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
    const head = git(['rev-parse', '--short', 'HEAD']);
    return git(['status', '--porcelain', '--', 'src']) === '' ? head : `${head} + uncommitted src/`;
  } catch {
    return 'unknown';
  }
}

function versionOf(path: string): string {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { version?: string };
    return parsed.version ?? '?';
  } catch {
    return 'not installed';
  }
}

export function machine(): Machine {
  const packages: Record<string, string> = {
    'socket-base': versionOf(join(ROOT, 'package.json')),
  };
  for (const name of [
    'ws',
    'bufferutil',
    'socket.io',
    'engine.io',
    '@trufflesuite/uws-js-unofficial',
    'better-sqlite3',
    'fast-jwt',
    'jose',
    'ioredis',
    'pg',
  ]) {
    packages[name] = versionOf(join(ROOT, 'node_modules', name, 'package.json'));
  }
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `Linux ${release()}`,
    node: process.version,
    commit: commitOf(),
    packages,
  };
}
