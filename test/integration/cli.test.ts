import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jwtVerify } from 'jose';
import { TestClient } from '../helpers/client.js';
import { eventually } from '../helpers/eventually.js';
import { signToken } from '../helpers/server.js';
import { NO_SETTINGS, type ProjectView, type SettingsView } from '../helpers/settings.js';

/** The compiled CLI next to this compiled test, whatever the output directory. */
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ADMIN_TOKEN = 'cli-test-admin-token-0123456789';
const WAIT_MS = 10_000;
const STACK_LINE = /^\s+at\s/m;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

interface Created {
  hash: string;
  jwtSecret: string;
  name: string;
  createdAt: string;
}

let workDir: string;
let databases = 0;

/** A fresh SQLite file in this suite's temporary directory. */
function freshDatabase(): string {
  databases++;
  return `sqlite:${join(workDir, `db-${databases}.sqlite`)}`;
}

/** Only what the test sets: no PORT, DATABASE_URL or .env from the machine running the tests. */
function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', ADMIN_TOKEN, ...env };
}

function runCli(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: cliEnv(env), cwd: workDir, timeout: WAIT_MS },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** A `serve` process whose output is recorded, so that tests wait on what it prints. */
class Served {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #waiters = new Set<() => void>();

  constructor(env: Record<string, string>, nodeArgs: string[] = []) {
    this.child = spawn(process.execPath, [...nodeArgs, CLI, 'serve'], {
      env: cliEnv({ PORT: '0', HOST: '127.0.0.1', ...env }),
      cwd: workDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString('utf8');
      this.#wake();
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
      this.#wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        resolve({ code, signal });
        this.#wake();
      });
    });
  }

  get output(): string {
    return `${this.stdout}\n${this.stderr}`;
  }

  /** Waits until the output matches, and returns the match. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const match = pattern.exec(this.output);
        if (match !== null) {
          done();
          resolve(match);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`serve exited before printing ${pattern}:\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`serve did not print ${pattern} in time:\n${this.output}`));
      }, WAIT_MS);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** The http:// URL from the `listening` line. */
  async listening(): Promise<string> {
    const match = await this.waitFor(/^.*listening.*?(http:\/\/[^\s"]+:(\d+))/m);
    return match[1] ?? '';
  }

  /** Sends `signal` (unless the process already exited) and waits for the exit. */
  async stop(
    signal: NodeJS.Signals | null = 'SIGTERM',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (signal !== null && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill(signal);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`serve did not exit:\n${this.output}`)), WAIT_MS);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
  }
}

const running = new Set<Served>();

function serve(env: Record<string, string>, nodeArgs: string[] = []): Served {
  const served = new Served(env, nodeArgs);
  running.add(served);
  void served.exited.then(() => running.delete(served));
  return served;
}

before(() => {
  workDir = mkdtempSync(join(tmpdir(), 'socket-base-cli-'));
});

after(async () => {
  // A test that failed half-way must not leave its server behind.
  for (const served of running) {
    served.child.kill('SIGKILL');
    await served.exited;
  }
  rmSync(workDir, { recursive: true, force: true });
});

describe('CLI: projects and tokens on the server database', () => {
  let database: string;
  let demo: Created;

  before(() => {
    database = freshDatabase();
  });

  it('`projects create --name demo` prints one JSON line with hash, jwtSecret, name, createdAt', async () => {
    const result = await runCli(['projects', 'create', '--name', 'demo'], {
      DATABASE_URL: database,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.equal(lines(result.stdout).length, 1, result.stdout);
    assert.ok(result.stdout.endsWith('\n'));
    demo = JSON.parse(result.stdout) as Created;
    assert.deepEqual(Object.keys(demo).sort(), ['createdAt', 'hash', 'jwtSecret', 'name']);
    assert.equal(demo.name, 'demo');
    assert.match(demo.hash, /^[A-Za-z0-9_-]+$/);
    assert.match(demo.jwtSecret, /^[A-Za-z0-9_-]{43,}$/);
    assert.ok(!Number.isNaN(Date.parse(demo.createdAt)), demo.createdAt);
  });

  it('`projects list` shows the project without its secret', async () => {
    const result = await runCli(['projects', 'list'], { DATABASE_URL: database });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stdout.includes(demo.jwtSecret), 'the secret leaked');
    assert.ok(!result.stdout.includes('jwtSecret'), result.stdout);
    assert.deepEqual(JSON.parse(result.stdout), {
      projects: [{ hash: demo.hash, name: 'demo', createdAt: demo.createdAt }],
    });
  });

  it('`token --hash H --sub alice --ttl 1h` prints a JWT signed with the project secret, sub alice, expiring in an hour', async () => {
    const result = await runCli(['token', '--hash', demo.hash, '--sub', 'alice', '--ttl', '1h'], {
      DATABASE_URL: database,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(lines(result.stdout).length, 1, result.stdout);
    const token = result.stdout.trim();
    const { payload, protectedHeader } = await jwtVerify(
      token,
      new TextEncoder().encode(demo.jwtSecret),
    );
    assert.ok(['HS256', 'HS384', 'HS512'].includes(protectedHeader.alg), protectedHeader.alg);
    assert.equal(payload.sub, 'alice');
    const inAnHour = Date.now() / 1000 + 3600;
    assert.ok(Math.abs((payload.exp ?? 0) - inAnHour) < 30, `exp ${payload.exp}`);
  });

  it('`token` without --ttl prints a token that expires (one hour by default)', async () => {
    const result = await runCli(['token', '--hash', demo.hash, '--sub', 'bob'], {
      DATABASE_URL: database,
    });
    assert.equal(result.code, 0, result.stderr);
    const { payload } = await jwtVerify(
      result.stdout.trim(),
      new TextEncoder().encode(demo.jwtSecret),
    );
    assert.equal(payload.sub, 'bob');
    assert.ok(Math.abs((payload.exp ?? 0) - (Date.now() / 1000 + 3600)) < 30, `${payload.exp}`);
  });

  it('`token --rooms chat:*,lobby --no-publish --no-broadcast` adds rooms (an array), publish:false and broadcast:false beside sub, iat and exp', async () => {
    const result = await runCli(
      [
        'token',
        '--hash',
        demo.hash,
        '--sub',
        'carol',
        '--ttl',
        '90s',
        '--rooms',
        'chat:*,lobby',
        '--no-publish',
        '--no-broadcast',
      ],
      { DATABASE_URL: database },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(lines(result.stdout).length, 1, result.stdout);
    const { payload } = await jwtVerify(
      result.stdout.trim(),
      new TextEncoder().encode(demo.jwtSecret),
    );
    const { iat, exp, ...rest } = payload;
    assert.deepEqual(rest, {
      sub: 'carol',
      rooms: ['chat:*', 'lobby'],
      publish: false,
      broadcast: false,
    });
    assert.ok(typeof iat === 'number' && Math.abs(iat - Date.now() / 1000) < 30, `iat ${iat}`);
    assert.equal(exp, iat + 90);
  });

  it('`token` without the permission flags carries none of those claims; `--rooms ""` is no room; `--rooms` alone keeps publish and broadcast', async () => {
    const cases: [string[], Record<string, unknown>][] = [
      [[], {}],
      [['--rooms', ''], { rooms: [] }],
      [['--rooms', 'one'], { rooms: ['one'] }],
      [['--no-publish'], { publish: false }],
      [['--no-broadcast'], { broadcast: false }],
    ];
    for (const [flags, claims] of cases) {
      const result = await runCli(['token', '--hash', demo.hash, '--sub', 'dan', ...flags], {
        DATABASE_URL: database,
      });
      assert.equal(result.code, 0, result.stderr);
      const { payload } = await jwtVerify(
        result.stdout.trim(),
        new TextEncoder().encode(demo.jwtSecret),
      );
      const { iat, exp, ...rest } = payload;
      assert.deepEqual(rest, { sub: 'dan', ...claims }, flags.join(' '));
      assert.equal(typeof iat, 'number', 'every token carries iat (revocations compare it)');
      assert.equal(exp, (iat ?? 0) + 3600);
    }
  });

  it('`help` shows the token command with --ttl, --rooms, --no-publish and --no-broadcast', async () => {
    const result = await runCli(['help'], {});
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /socket-base token --hash HASH --sub USER \[--ttl 1h\] \[--rooms 'chat:\*,lobby'\]\n\s+\[--no-publish\] \[--no-broadcast\]/,
    );
  });

  it('`token` for an unknown hash exits 1 with one line on stderr and nothing on stdout', async () => {
    const result = await runCli(['token', '--hash', 'no-such-hash', '--sub', 'alice'], {
      DATABASE_URL: database,
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.equal(lines(result.stderr).length, 1, result.stderr);
    assert.doesNotMatch(result.stderr, STACK_LINE);
  });

  it('`projects create` refuses a missing, empty, blank or too-long name with the usage line, and creates nothing', async () => {
    const database = freshDatabase();
    for (const args of [
      ['projects', 'create'],
      ['projects', 'create', '--name', ''],
      ['projects', 'create', '--name', '   '],
      ['projects', 'create', '--name', 'x'.repeat(201)],
    ]) {
      const result = await runCli(args, { DATABASE_URL: database });
      assert.equal(result.code, 1, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
      assert.equal(
        result.stderr,
        'socket-base: projects create needs --name NAME\n',
        args.join(' '),
      );
    }
    const longest = await runCli(['projects', 'create', '--name', 'x'.repeat(200)], {
      DATABASE_URL: database,
    });
    assert.equal(longest.code, 0, longest.stderr);
    const list = await runCli(['projects', 'list'], { DATABASE_URL: database });
    const { projects } = JSON.parse(list.stdout) as { projects: Created[] };
    assert.deepEqual(
      projects.map((p) => p.name),
      ['x'.repeat(200)],
    );
  });
});

describe('CLI: projects show and set', () => {
  let database: string;
  let project: Created;

  /** Runs the CLI, expects exit 0 and one JSON line, and parses it. */
  const shown = async (args: string[], env: Record<string, string> = {}): Promise<ProjectView> => {
    const result = await runCli(args, { DATABASE_URL: database, ...env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.equal(lines(result.stdout).length, 1, result.stdout);
    return JSON.parse(result.stdout) as ProjectView;
  };

  before(async () => {
    database = freshDatabase();
    const created = await runCli(['projects', 'create', '--name', 'configured'], {
      DATABASE_URL: database,
    });
    project = JSON.parse(created.stdout) as Created;
  });

  it('`projects show HASH` prints the project as GET /admin/projects/:hash does, without its secret; effective takes the server-wide defaults', async () => {
    const result = await runCli(['projects', 'show', project.hash], { DATABASE_URL: database });
    assert.ok(!result.stdout.includes(project.jwtSecret), 'the secret leaked');
    const plain = await shown(['projects', 'show', project.hash]);
    assert.deepEqual(Object.keys(plain), ['hash', 'name', 'createdAt', 'settings', 'effective']);
    assert.deepEqual(plain, {
      hash: project.hash,
      name: 'configured',
      createdAt: project.createdAt,
      settings: NO_SETTINGS,
      effective: NO_SETTINGS,
    });
    const defaulted = await shown(['projects', 'show', project.hash], {
      RETENTION_MAX_AGE_S: '3600',
      PROJECT_MAX_MESSAGES_PER_SECOND: '40',
    });
    assert.deepEqual(defaulted.settings, NO_SETTINGS);
    assert.deepEqual(defaulted.effective, {
      retention: { maxAgeSeconds: 3600, maxMessagesPerRoom: null },
      limits: { maxConnections: null, maxConnectionsPerUser: null, maxMessagesPerSecond: 40 },
    });
  });

  it('`projects set HASH` with every option prints the project after the change, which `show` then prints too', async () => {
    const after = await shown([
      'projects',
      'set',
      project.hash,
      '--name',
      'reconfigured',
      '--retention-max-age',
      '7d',
      '--retention-max-messages',
      '500',
      '--max-connections',
      '100',
      '--max-connections-per-user',
      '3',
      '--max-messages-per-second',
      '20',
    ]);
    const expected: SettingsView = {
      retention: { maxAgeSeconds: 7 * 86400, maxMessagesPerRoom: 500 },
      limits: { maxConnections: 100, maxConnectionsPerUser: 3, maxMessagesPerSecond: 20 },
    };
    assert.equal(after.name, 'reconfigured');
    assert.deepEqual(after.settings, expected);
    assert.deepEqual(after.effective, expected);
    assert.deepEqual(await shown(['projects', 'show', project.hash]), after);
  });

  it('`--retention-max-age` takes seconds, or a number with s, m, h or d; `off` clears a value and keeps the others', async () => {
    const ages: [string, number][] = [
      ['3600', 3600],
      ['90s', 90],
      ['30m', 1800],
      ['12h', 43200],
      ['7d', 604800],
    ];
    for (const [text, seconds] of ages) {
      const after = await shown(['projects', 'set', project.hash, '--retention-max-age', text]);
      assert.equal(after.settings.retention.maxAgeSeconds, seconds, text);
    }
    const before = await shown(['projects', 'show', project.hash]);
    const cleared = await shown([
      'projects',
      'set',
      project.hash,
      '--retention-max-age',
      'off',
      '--max-connections',
      'off',
    ]);
    assert.deepEqual(cleared.settings, {
      retention: {
        maxAgeSeconds: null,
        maxMessagesPerRoom: before.settings.retention.maxMessagesPerRoom,
      },
      limits: { ...before.settings.limits, maxConnections: null },
    });
    const defaulted = await shown(['projects', 'show', project.hash], {
      RETENTION_MAX_AGE_S: '60',
    });
    assert.equal(
      defaulted.effective.retention.maxAgeSeconds,
      60,
      'a cleared value takes the default',
    );
  });

  it('a bad value, an unknown hash or no option exits 1 with one stderr line and nothing on stdout, and changes nothing', async () => {
    const before = await shown(['projects', 'show', project.hash]);
    const refused: string[][] = [
      ['--retention-max-age', 'soon'],
      ['--retention-max-age', '7w'],
      ['--retention-max-age', '0'],
      ['--retention-max-age', '0d'],
      ['--retention-max-age', '1.5h'],
      ['--retention-max-age='],
      ['--retention-max-messages', '0'],
      ['--retention-max-messages', '7d'],
      ['--max-connections', '1.5'],
      ['--max-connections=-1'],
      ['--max-connections', '-1'],
      ['--max-connections-per-user', 'ten'],
      ['--max-messages-per-second', '9007199254740992'],
      ['--max-messages-per-second', 'OFF'],
      ['--name', ''],
      ['--name', 'x'.repeat(201)],
      ['--name', 'fine', '--max-connections', '0'],
      ['--colour', 'red'],
      [],
    ];
    for (const options of refused) {
      const args = ['projects', 'set', project.hash, ...options];
      const result = await runCli(args, { DATABASE_URL: database });
      const what = args.join(' ');
      assert.equal(result.code, 1, what);
      assert.equal(result.stdout, '', what);
      assert.equal(lines(result.stderr).length, 1, `${what}: ${result.stderr}`);
      assert.match(result.stderr, /^socket-base: /, what);
      assert.doesNotMatch(result.stderr, STACK_LINE, what);
    }
    const named = await runCli(['projects', 'set', project.hash, '--max-connections', '0'], {
      DATABASE_URL: database,
    });
    assert.equal(
      named.stderr,
      'socket-base: --max-connections must be a positive whole number, or off, got "0"\n',
    );
    for (const args of [
      ['projects', 'show', 'no-such-hash'],
      ['projects', 'set', 'no-such-hash', '--max-connections', '5'],
      ['projects', 'show'],
    ]) {
      const result = await runCli(args, { DATABASE_URL: database });
      assert.equal(result.code, 1, args.join(' '));
      assert.equal(result.stdout, '', args.join(' '));
      assert.equal(lines(result.stderr).length, 1, result.stderr);
    }
    assert.deepEqual(await shown(['projects', 'show', project.hash]), before);
  });

  it('a change made with `projects set` is in force within 2 s on a server running on the same database', async () => {
    const served = serve({ DATABASE_URL: database, LOG_LEVEL: 'silent' });
    const url = await served.listening();
    const get = async (): Promise<ProjectView> => {
      const response = await fetch(`${url}/admin/projects/${project.hash}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      assert.equal(response.status, 200);
      return (await response.json()) as ProjectView;
    };
    // The server caches the project first; the CLI's change reaches it only by its refresh.
    const before = await get();
    const after = await shown([
      'projects',
      'set',
      project.hash,
      '--retention-max-messages',
      String((before.settings.retention.maxMessagesPerRoom ?? 0) + 1),
    ]);
    const changedAt = Date.now();
    await eventually(
      'the server shows the change',
      async () => JSON.stringify(await get()) === JSON.stringify(after),
      2000,
    );
    assert.ok(Date.now() - changedAt < 2000);
    assert.equal((await served.stop()).code, 0);
  });
});

describe('CLI: a start that cannot use DATABASE_URL or REDIS_URL never prints its password', {
  concurrency: true,
}, () => {
  const cases: [string, Record<string, string>, string][] = [
    [
      'DATABASE_URL',
      { DATABASE_URL: 'postgres://u:secretpw@127.0.0.1:1/x' },
      'postgres://u:***@127.0.0.1:1/x',
    ],
    [
      'DATABASE_URL',
      { DATABASE_URL: 'postgres//u:secretpw@127.0.0.1:1/x' },
      'postgres//u:***@127.0.0.1:1/x',
    ],
    [
      'REDIS_URL',
      { DATABASE_URL: 'sqlite::memory:', REDIS_URL: 'redis://:secretpw@127.0.0.1:1' },
      'redis://:***@127.0.0.1:1',
    ],
  ];
  for (const [variable, env, shown] of cases) {
    const value = env[variable] ?? '';
    it(`${variable}=${value} exits 1 with one stderr line naming ${variable} as ${shown}, and secretpw nowhere`, async () => {
      const result = await runCli(['serve'], { PORT: '0', HOST: '127.0.0.1', ...env });
      assert.equal(result.code, 1, `${result.stdout}\n${result.stderr}`);
      assert.equal(lines(result.stderr).length, 1, result.stderr);
      assert.ok(result.stderr.includes(variable), result.stderr);
      assert.ok(result.stderr.includes(shown), result.stderr);
      assert.ok(!`${result.stdout}${result.stderr}`.includes('secretpw'), result.stderr);
      assert.doesNotMatch(result.stderr, STACK_LINE);
      assert.doesNotMatch(result.stdout, /listening/);
    });
  }
});

describe('CLI: a bad configuration stops the start with one line naming the variable', {
  concurrency: true,
}, () => {
  const cases: [string, Record<string, string>][] = [
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '70000' }],
    ['MAX_FRAME_BYTES', { MAX_FRAME_BYTES: '-1' }],
    ['MAX_BODY_BYTES', { MAX_BODY_BYTES: '12kb' }],
    ['RATE_LIMIT', { RATE_LIMIT: '0' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
  ];
  for (const [variable, env] of cases) {
    const [name, value] = Object.entries(env)[0] ?? [];
    it(`${name}=${value} exits 1 with one stderr line naming ${variable}, no stack trace`, async () => {
      const result = await runCli(['serve'], {
        DATABASE_URL: 'sqlite::memory:',
        PORT: '0',
        HOST: '127.0.0.1',
        ...env,
      });
      assert.equal(result.code, 1, `${result.stdout}\n${result.stderr}`);
      assert.equal(lines(result.stderr).length, 1, result.stderr);
      assert.ok(result.stderr.includes(variable), result.stderr);
      assert.doesNotMatch(result.stderr, STACK_LINE);
      assert.doesNotMatch(result.stdout, STACK_LINE);
      assert.doesNotMatch(result.stdout, /listening/);
    });
  }
});

describe('CLI: serve', () => {
  it('on a fresh SQLite file it prints `listening` with the real port and a demo banner whose WebSocket URL connects as demo-user; SIGTERM exits 0', async () => {
    const database = freshDatabase();
    const served = serve({ DATABASE_URL: database, LOG_LEVEL: 'info' });
    const url = await served.listening();
    const port = Number(new URL(url).port);
    assert.ok(port > 0, url);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);

    const [wsUrl = ''] = await served.waitFor(/ws:\/\/[^\s"]+\?jwt=[\w.-]+/);
    const parsed = new URL(wsUrl);
    assert.equal(parsed.port, String(port));
    const hash = /^\/ws\/([^/]+)$/.exec(parsed.pathname)?.[1] ?? '';
    const jwt = parsed.searchParams.get('jwt') ?? '';
    assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const bannerLines = lines(served.stdout).filter((line) => !line.startsWith('{'));
    assert.ok(
      bannerLines.some((line) => line.includes(hash) && !line.includes('ws://')),
      `the banner shows the hash on its own:\n${served.stdout}`,
    );
    assert.ok(
      bannerLines.some((line) => line.includes(jwt) && !line.includes('ws://')),
      `the banner shows the JWT on its own:\n${served.stdout}`,
    );

    const client = await TestClient.connect(wsUrl);
    const connected = client.frames[0];
    assert.equal(connected?.user, 'demo-user');
    assert.match(
      String(connected?.connectionId),
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    assert.equal((await client.request({ type: 'join', room: 'general' })).type, 'joined');

    const exit = await served.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal((await client.waitClosed()).code, 1001);

    const list = await runCli(['projects', 'list'], { DATABASE_URL: database });
    const { projects } = JSON.parse(list.stdout) as { projects: Created[] };
    assert.deepEqual(
      projects.map((p) => [p.hash, p.name]),
      [[hash, 'demo']],
    );
  });

  it('a second start on the same file creates no second demo project and prints no banner', async () => {
    const database = freshDatabase();
    const first = serve({ DATABASE_URL: database, LOG_LEVEL: 'silent' });
    const firstUrl = await first.listening();
    await first.waitFor(/ws:\/\/\S+\?jwt=/);
    assert.equal((await fetch(`${firstUrl}/healthz`)).status, 200);
    assert.equal((await first.stop()).code, 0);

    const second = serve({ DATABASE_URL: database, LOG_LEVEL: 'silent' });
    const url = await second.listening();
    // An answered request proves start-up finished (see the SIGTERM-on-`listening` test).
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.doesNotMatch(second.output, /jwt=/);
    assert.doesNotMatch(second.output, /ws:\/\//);
    assert.equal((await second.stop()).code, 0);

    const list = await runCli(['projects', 'list'], { DATABASE_URL: database });
    const { projects } = JSON.parse(list.stdout) as { projects: Created[] };
    assert.equal(projects.length, 1, list.stdout);
    assert.equal(projects[0]?.name, 'demo');
  });

  it('SIGTERM sent the moment `listening` is printed exits 0 (signals are handled once the server says it listens)', async () => {
    // A preloaded module makes the server send itself SIGTERM right after it writes the
    // `listening` line: what a supervisor that waits for that line may do. Without a handler
    // installed by then, the signal kills the process instead of shutting it down.
    const preload = join(workDir, 'sigterm-on-listening.mjs');
    writeFileSync(
      preload,
      [
        'const write = process.stdout.write.bind(process.stdout);',
        'let sent = false;',
        'process.stdout.write = (chunk, ...rest) => {',
        '  const written = write(chunk, ...rest);',
        "  if (!sent && String(chunk).includes('listening')) {",
        '    sent = true;',
        "    process.kill(process.pid, 'SIGTERM');",
        '  }',
        '  return written;',
        '};',
      ].join('\n'),
    );
    const served = serve({ DATABASE_URL: 'sqlite::memory:', LOG_LEVEL: 'silent' }, [
      '--import',
      pathToFileURL(preload).href,
    ]);
    await served.waitFor(/listening/);
    // No second signal: that one would end the shutdown at once (the next test).
    assert.deepEqual(await served.stop(null), { code: 0, signal: null });
  });

  it('a second SIGTERM during the shutdown ends the process at once, with exit code 1', async () => {
    const served = serve({
      DATABASE_URL: 'sqlite::memory:',
      LOG_LEVEL: 'info',
      SHUTDOWN_DELAY_MS: '20000',
    });
    await served.listening();
    served.child.kill('SIGTERM');
    await served.waitFor(/shutting down/);
    const started = Date.now();
    assert.deepEqual(await served.stop('SIGTERM'), { code: 1, signal: null });
    assert.ok(Date.now() - started < 5000, 'it did not wait for SHUTDOWN_DELAY_MS');
    assert.match(served.output, /second signal/);
  });

  it('logs never contain a jwt query parameter, an Authorization header or a secret (LOG_LEVEL=debug)', async () => {
    const database = freshDatabase();
    const served = serve({ DATABASE_URL: database, LOG_LEVEL: 'debug' });
    const url = await served.listening();
    const wsBase = url.replace('http://', 'ws://');

    const createResponse = await fetch(`${url}/admin/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'quiet' }),
    });
    assert.equal(createResponse.status, 201);
    const project = (await createResponse.json()) as Created;

    // A token minted by the CLI on the database the server is using.
    const minted = await runCli(['token', '--hash', project.hash, '--sub', 'alice'], {
      DATABASE_URL: database,
    });
    assert.equal(minted.code, 0, minted.stderr);
    const wsToken = minted.stdout.trim();
    const httpToken = await signToken(project.jwtSecret, 'bob');
    const wrongSecret = await signToken('not-the-project-secret-0123456789abcdef', 'eve');
    const expired = await signToken(project.jwtSecret, 'old', { expiresIn: '-1 hour' });
    const queryToken = await signToken(project.jwtSecret, 'query');
    const unknownProjectToken = await signToken(project.jwtSecret, 'lost');

    const alice = await TestClient.connect(`${wsBase}/ws/${project.hash}?jwt=${wsToken}`);
    await alice.join('room');
    const sent = await fetch(`${url}/api/message`, {
      method: 'POST',
      headers: { 'x-hash': project.hash, authorization: `Bearer ${httpToken}` },
      body: JSON.stringify({ room: 'room', payload: 'hello' }),
    });
    assert.equal(sent.status, 200);
    await alice.collect('message', 1);
    const refused = await fetch(`${url}/api/message`, {
      method: 'POST',
      headers: { 'x-hash': project.hash, authorization: `Bearer ${wrongSecret}` },
      body: JSON.stringify({ room: 'room', payload: 'nope' }),
    });
    assert.equal(refused.status, 401);
    const notFound = await fetch(`${url}/api/nowhere?jwt=${queryToken}`, {
      headers: { 'x-hash': project.hash, authorization: `Bearer ${httpToken}` },
    });
    assert.equal(notFound.status, 404);
    await notFound.arrayBuffer();
    const expiredClient = new TestClient(`${wsBase}/ws/${project.hash}?jwt=${expired}`);
    assert.equal((await expiredClient.waitClosed()).code, 4002);
    const lostClient = new TestClient(`${wsBase}/ws/no-such-project?jwt=${unknownProjectToken}`);
    assert.equal((await lostClient.waitClosed()).code, 4004);

    assert.deepEqual(await served.stop(), { code: 0, signal: null });
    await alice.waitClosed();
    assert.match(served.stdout, /listening/);

    const secrets: [string, string][] = [
      ['the WebSocket jwt', wsToken],
      ['the HTTP bearer token', httpToken],
      ['a refused bearer token', wrongSecret],
      ['an expired WebSocket jwt', expired],
      ['a jwt query parameter on HTTP', queryToken],
      ['a jwt for an unknown project', unknownProjectToken],
      ['the admin token', ADMIN_TOKEN],
      ['the project secret', project.jwtSecret],
    ];
    for (const [what, secret] of secrets) {
      const signature = secret.split('.').at(-1) ?? secret;
      assert.ok(!served.output.includes(secret), `${what} appears in the output`);
      assert.ok(!served.output.includes(signature), `${what}'s signature appears in the output`);
    }
  });
});
