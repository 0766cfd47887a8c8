/**
 * Every process the bench starts: spawned here, remembered by PID, and stopped by PID (SIGTERM,
 * then SIGKILL after a grace period) at the end of its scenario, on error, and on SIGINT.
 */
import { type ChildProcess, fork, type SpawnOptions, spawn } from 'node:child_process';

const running = new Map<number, ChildProcess>();

function remember(child: ChildProcess, what: string): number {
  if (child.pid === undefined) throw new Error(`${what} did not start`);
  const pid = child.pid;
  running.set(pid, child);
  child.once('exit', () => running.delete(pid));
  return pid;
}

export interface Started {
  child: ChildProcess;
  pid: number;
  /** What the process printed, kept for error reports (the last 64 KiB). */
  output(): string;
}

/** Spawns `node ARGS` with its output captured; the caller waits for its ready line. */
export function startNode(
  args: string[],
  env: NodeJS.ProcessEnv,
  what: string,
  cwd?: string,
): Started {
  const options: SpawnOptions = { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] };
  const child = spawn(process.execPath, args, options);
  const pid = remember(child, what);
  let text = '';
  const keep = (chunk: Buffer): void => {
    text = (text + chunk.toString()).slice(-65536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, pid, output: () => text };
}

/** Forks a module with an IPC channel (the load workers). */
export function forkModule(path: string, what: string): { child: ChildProcess; pid: number } {
  const child = fork(path, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return { child, pid: remember(child, what) };
}

/** Resolves with the first match of `pattern` in the process's output, or rejects on exit/timeout. */
export function waitForLine(started: Started, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const match = pattern.exec(started.output());
      if (match === null) return false;
      cleanup();
      resolve(match[1] ?? match[0]);
      return true;
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`exited with ${code} before it was ready: ${started.output().trim()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not ready after ${timeoutMs} ms: ${started.output().trim()}`));
    }, timeoutMs);
    const onData = (): void => {
      check();
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      started.child.stdout?.off('data', onData);
      started.child.stderr?.off('data', onData);
      started.child.off('exit', onExit);
    };
    started.child.stdout?.on('data', onData);
    started.child.stderr?.on('data', onData);
    started.child.once('exit', onExit);
    check();
  });
}

/** Stops one process by PID: SIGTERM, and SIGKILL if it is still there after `graceMs`. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  const child = running.get(pid);
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  if ((await Promise.race([exited, late])) === 'late') {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }
  clearTimeout(timer);
}

/** Stops every process still running, each by its PID. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running.keys()].map((pid) => stopPid(pid, 3000)));
}

/** Last resort on exit: SIGKILL whatever is left, synchronously. */
export function killAllNow(): void {
  for (const pid of running.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
