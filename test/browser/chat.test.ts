/**
 * The chat example (examples/chat) as a user runs it: its own backend (server.js, a child process)
 * signing tokens for a socket-base server (a child process on a SQLite file, so that it can be
 * stopped and started again on the same database and port), and its page in headless Chromium.
 * One page reaches socket-base through a TCP proxy, so that the test can keep that page away a
 * little longer after the restart: the other page's messages stored meanwhile must then come to
 * it by the SDK's rejoin from its last seq, not by luck of timing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { jwtVerify } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import {
  assertGapless,
  createProjectAt,
  fullHistory,
  type ServerProcess,
  spawnServer,
} from '../helpers/ops.js';
import { signToken } from '../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/** From dist/test/browser/ back to the repository. */
const REPO = new URL('../../../', import.meta.url);
const CHAT_SERVER = fileURLToPath(new URL('examples/chat/server.js', REPO));
/** Written only when asked (UPDATE_SCREENSHOTS=1), so that a test run leaves the tree clean. */
const SCREENSHOT = fileURLToPath(new URL('docs/chat.png', REPO));

const ADMIN_TOKEN = 'chat-example-admin-token';
const WAIT_MS = 10_000;
/** Each page types this many messages in each of the four phases of the restart test. */
const PER_PHASE = 6;
const PER_PAGE = 4 * PER_PHASE;
/** How many stored messages the page shows when it loads history (HISTORY_LIMIT in chat.js). */
const PAGE_HISTORY = 50;
/** RECOVERY_MAX_MESSAGES of the reset test: a longer gap cannot be replayed. */
const RECOVERY_MAX = 5;

interface ChatBackend {
  readonly url: string;
  stop(): Promise<void>;
}

function spawnChatBackend(env: Record<string, string>) {
  return spawn(process.execPath, [CHAT_SERVER], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts examples/chat/server.js with only the environment given, and waits for its URL. */
async function startChatBackend(env: Record<string, string>): Promise<ChatBackend> {
  const child = spawnChatBackend(env);
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chat backend: no listening line within ${WAIT_MS} ms: ${output.join('')}`));
    }, WAIT_MS);
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      output.push(chunk.toString('utf8'));
      const match = /listening\b.*?(http:\/\/[^\s]+)/.exec(output.join(''));
      if (match?.[1] === undefined) return;
      clearTimeout(timer);
      resolve(match[1]);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`chat backend exited: ${output.join('')}`));
    });
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs server.js, which should exit by itself (it is killed if not); its code and stderr. */
async function runChatBackend(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawnChatBackend(env);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stderr };
}

// ——— reading and driving the page (strings: the tests are compiled without the DOM's types) ———

interface ShownMessage {
  seq: number;
  from: string;
  text: string;
}

const SHOWN_MESSAGES = `[...document.querySelectorAll('#messages li')].map((item) => ({
  seq: Number(item.dataset.seq),
  from: item.querySelector('.from').textContent,
  text: item.querySelector('.text').textContent,
}))`;
const SHOWN_USERS = `[...document.querySelectorAll('#users li')].map((item) => item.textContent)`;
const SHOWN_STATE = `document.querySelector('#state').dataset.state`;

async function shownMessages(page: Page): Promise<ShownMessage[]> {
  return (await page.evaluate(SHOWN_MESSAGES)) as ShownMessage[];
}

/** Waits until `condition` (an expression) holds in the page; a timeout says what it shows instead. */
async function waitForPage(page: Page, condition: string, what: string): Promise<void> {
  try {
    await page.waitForFunction(condition, undefined, { timeout: WAIT_MS });
  } catch {
    const [state, users, messages] = (await page.evaluate(
      `[${SHOWN_STATE}, ${SHOWN_USERS}, ${SHOWN_MESSAGES}]`,
    )) as [string, string[], ShownMessage[]];
    const texts = messages.map((message) => `${message.seq}:${message.text}`).join(', ');
    assert.fail(
      `waited ${WAIT_MS} ms for ${what}; the page shows state ${state}, users [${users}], ` +
        `${messages.length} messages: ${texts}`,
    );
  }
}

function waitForState(page: Page, state: string): Promise<void> {
  return waitForPage(page, `${SHOWN_STATE} === ${JSON.stringify(state)}`, `state ${state}`);
}

function waitForUsers(page: Page, users: readonly string[]): Promise<void> {
  return waitForPage(
    page,
    `JSON.stringify(${SHOWN_USERS}) === ${JSON.stringify(JSON.stringify(users))}`,
    `users [${users}]`,
  );
}

function waitForText(page: Page, text: string): Promise<void> {
  return waitForPage(
    page,
    `${SHOWN_MESSAGES}.some((message) => message.text === ${JSON.stringify(text)})`,
    `the message "${text}"`,
  );
}

function waitForMessageCount(page: Page, count: number): Promise<void> {
  return waitForPage(
    page,
    `document.querySelectorAll('#messages li').length >= ${count}`,
    `${count} messages`,
  );
}

/** Types `${user} ${n}` for n in [first, last] into the send form, one after the other. */
async function typeSeries(
  page: Page,
  user: string,
  first: number,
  last: number,
  afterEach: (n: number) => void = () => {},
): Promise<void> {
  const input = page.locator('#send-form input[name=text]');
  for (let n = first; n <= last; n++) {
    await input.fill(`${user} ${n}`);
    await input.press('Enter');
    afterEach(n);
  }
}

function numbered(user: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${user} ${i + 1}`);
}

/** seq 1..N in the order shown, every typed message once, each sender's in the order typed. */
function assertEveryMessageOnceInOrder(
  shown: readonly ShownMessage[],
  users: readonly string[],
  what: string,
): void {
  assertGapless(shown, what);
  const expected = users.flatMap((user) => numbered(user, PER_PAGE));
  assert.deepEqual(
    shown.map((message) => message.text).sort(),
    expected.sort(),
    `${what}: every typed message once`,
  );
  for (const user of users) {
    assert.deepEqual(
      shown.filter((message) => message.from === user).map((message) => message.text),
      numbered(user, PER_PAGE),
      `${what}: ${user}'s messages, from ${user}, in the order typed`,
    );
  }
}

describe('the chat example’s backend (examples/chat/server.js)', () => {
  const SECRET = 'a-project-secret-for-the-backend-test';
  let backend: ChatBackend;

  before(async () => {
    backend = await startChatBackend({
      SOCKET_BASE_URL: 'http://127.0.0.1:9/',
      PROJECT_HASH: 'the-hash',
      PROJECT_SECRET: SECRET,
      CHAT_RECONNECT_MIN_MS: '50',
      CHAT_RECONNECT_MAX_MS: '250',
    });
  });
  after(async () => {
    await backend.stop();
  });

  it('refuses to start without PROJECT_HASH or PROJECT_SECRET, in one line naming it', async () => {
    for (const [missing, env] of [
      ['PROJECT_HASH', { PROJECT_SECRET: 's' }],
      ['PROJECT_SECRET', { PROJECT_HASH: 'h' }],
    ] as const) {
      const { code, stderr } = await runChatBackend(env);
      assert.equal(code, 1, missing);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line: ${stderr}`);
      assert.match(lines[0] ?? '', new RegExp(`${missing} is required`));
    }
  });

  it('POST /token signs an HS256 JWT for the name with the project’s secret, iat and a 10-minute exp; no name is 400', async () => {
    const response = await fetch(`${backend.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: ' ann ' }),
    });
    assert.equal(response.status, 200);
    const { token } = (await response.json()) as { token: string };
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(SECRET), {
      algorithms: ['HS256'],
    });
    assert.equal(protectedHeader.alg, 'HS256');
    assert.equal(payload.sub, 'ann');
    assert.equal(typeof payload.iat, 'number');
    assert.equal(payload.exp, (payload.iat as number) + 600);
    assert.ok(Math.abs((payload.iat as number) - Date.now() / 1000) < 5, 'iat is now');
    for (const body of ['{}', '{"name":"  "}', '{"name":42}', 'not json']) {
      const refused = await fetch(`${backend.url}/token`, { method: 'POST', body });
      assert.equal(refused.status, 400, body);
    }
  });

  it('GET /config.json tells the page the socket-base URL, the hash and the reconnect delays, never the secret', async () => {
    const response = await fetch(`${backend.url}/config.json`);
    const text = await response.text();
    assert.deepEqual(JSON.parse(text), {
      url: 'http://127.0.0.1:9',
      hash: 'the-hash',
      reconnect: { minDelayMs: 50, maxDelayMs: 250 },
    });
    assert.ok(!text.includes(SECRET));
    for (const [path, type] of [
      ['/', 'text/html'],
      ['/chat.js', 'text/javascript'],
      ['/style.css', 'text/css'],
    ] as const) {
      const page = await fetch(`${backend.url}${path}`);
      assert.equal(page.status, 200, path);
      assert.match(page.headers.get('content-type') ?? '', new RegExp(`^${type}`), path);
      await page.arrayBuffer();
    }
    assert.equal((await fetch(`${backend.url}/server.js`)).status, 404);
  });
});

describe('the chat example in Chromium, across a restart of socket-base (SQLite file)', () => {
  let cwd: string;
  let env: Record<string, string>;
  let socketBase: ServerProcess;
  let project: { hash: string; jwtSecret: string };
  /** ann's backend: its page reaches socket-base directly. */
  let backend: ChatBackend;
  /** ben's: the same example, whose page reaches socket-base through `bensNetwork`. */
  let bensBackend: ChatBackend;
  let bensNetwork: TcpProxy;
  let browser: Browser;
  const pages = new Map<string, Page>();
  /** Uncaught exceptions in any page: the example must have none. */
  const pageErrors: string[] = [];

  /** The room as stored (history over HTTP), in the shape the pages show it. */
  async function storedMessages(): Promise<ShownMessage[]> {
    const reader = await signToken(project.jwtSecret, 'reader');
    const stored = await fullHistory(
      socketBase.url,
      { hash: project.hash, token: reader },
      'general',
    );
    return stored.map(({ seq, from, payload }) => ({ seq, from, text: payload }));
  }

  async function openChat(user: string, chatUrl = backend.url): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 760, height: 480 } });
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${user}: ${error.message}`));
    await page.goto(chatUrl);
    // The form is enabled once the page has loaded the SDK from socket-base.
    await page.locator('#name-form input[name=name]').fill(user);
    await page.locator('#name-form input[name=name]').press('Enter');
    await waitForState(page, 'open');
    pages.set(user, page);
    return page;
  }

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'sb-chat-example-'));
    env = {
      DATABASE_URL: `sqlite:${join(cwd, 'db.sqlite')}`,
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      SHUTDOWN_DELAY_MS: '0',
    };
    socketBase = await spawnServer(env, cwd);
    project = await createProjectAt(socketBase.url, ADMIN_TOKEN, 'chat');
    const chatEnv = {
      PROJECT_HASH: project.hash,
      PROJECT_SECRET: project.jwtSecret,
      // Short waits between reconnects, so that the restart costs the test little time.
      CHAT_RECONNECT_MIN_MS: '50',
      CHAT_RECONNECT_MAX_MS: '250',
    };
    backend = await startChatBackend({ ...chatEnv, SOCKET_BASE_URL: socketBase.url });
    bensNetwork = await startTcpProxy(Number(new URL(socketBase.url).port));
    bensBackend = await startChatBackend({
      ...chatEnv,
      SOCKET_BASE_URL: `http://127.0.0.1:${bensNetwork.port}`,
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await backend?.stop();
    await bensBackend?.stop();
    await bensNetwork?.close();
    await socketBase?.stop('SIGTERM');
    rmSync(cwd, { recursive: true, force: true });
  });

  it('two pages talk both ways while socket-base restarts: each DOM shows every message once, in seq order, as stored', async () => {
    const ann = await openChat('ann');
    const ben = await openChat('ben', bensBackend.url);
    await waitForUsers(ann, ['ann', 'ben']);
    await waitForUsers(ben, ['ann', 'ben']);
    const port = new URL(socketBase.url).port;

    // 1. Both type; socket-base gets SIGTERM while they do (sends in flight during its drain).
    let stopped: Promise<{ code: number | null }> | undefined;
    await Promise.all([
      typeSeries(ann, 'ann', 1, PER_PHASE, (n) => {
        if (n === 2) stopped = socketBase.stop('SIGTERM');
      }),
      typeSeries(ben, 'ben', 1, PER_PHASE),
    ]);
    assert.equal((await stopped)?.code, 0, 'socket-base exits 0 on SIGTERM');

    // 2. socket-base is down: both pages show it, and type on (the SDK keeps the sends).
    await Promise.all([waitForState(ann, 'reconnecting'), waitForState(ben, 'reconnecting')]);
    await Promise.all([
      typeSeries(ann, 'ann', PER_PHASE + 1, 2 * PER_PHASE),
      typeSeries(ben, 'ben', PER_PHASE + 1, 2 * PER_PHASE),
    ]);
    assert.equal(await ann.evaluate(SHOWN_STATE), 'reconnecting');

    // 3. It starts again on the same database and port while they type; ben's network stays
    // away until ann's messages are stored, so that ben's page must recover them on its rejoin.
    bensNetwork.cut();
    await Promise.all([
      spawnServer({ ...env, PORT: port }, cwd).then((restarted) => {
        socketBase = restarted;
      }),
      typeSeries(ann, 'ann', 2 * PER_PHASE + 1, 3 * PER_PHASE),
      typeSeries(ben, 'ben', 2 * PER_PHASE + 1, 3 * PER_PHASE),
    ]);
    await waitForState(ann, 'open');
    await waitForText(ann, `ann ${3 * PER_PHASE}`);
    assert.equal(await ben.evaluate(SHOWN_STATE), 'reconnecting', 'ben is still away');
    bensNetwork.restore();

    // 4. Both are back, and type on.
    await waitForState(ben, 'open');
    await Promise.all([
      typeSeries(ann, 'ann', 3 * PER_PHASE + 1, PER_PAGE),
      typeSeries(ben, 'ben', 3 * PER_PHASE + 1, PER_PAGE),
    ]);

    const total = 2 * PER_PAGE;
    await Promise.all([waitForMessageCount(ann, total), waitForMessageCount(ben, total)]);
    const stored = await storedMessages();
    // Read after the history call, so that a late repeat would have had time to show.
    const shownByAnn = await shownMessages(ann);
    const shownByBen = await shownMessages(ben);
    assertEveryMessageOnceInOrder(shownByAnn, ['ann', 'ben'], 'ann’s page');
    assert.deepEqual(shownByBen, shownByAnn, 'both pages show the same list');
    assert.deepEqual(stored, shownByAnn, 'the store holds each message once, as the pages show it');
    await waitForUsers(ann, ['ann', 'ben']);
    await waitForUsers(ben, ['ann', 'ben']);

    const screenshot = await ann.screenshot();
    assert.equal(screenshot.subarray(1, 4).toString('latin1'), 'PNG');
    if (process.env.UPDATE_SCREENSHOTS === '1') writeFileSync(SCREENSHOT, screenshot);
    assert.deepEqual(pageErrors, []);
  });

  it('a page away for longer than recovery allows starts again from history (reset): each message once, in seq order', async () => {
    const ann = pages.get('ann') as Page;
    const ben = pages.get('ben') as Page;
    const port = new URL(socketBase.url).port;
    await socketBase.stop('SIGTERM');
    socketBase = await spawnServer(
      { ...env, PORT: port, RECOVERY_MAX_MESSAGES: String(RECOVERY_MAX) },
      cwd,
    );
    await Promise.all([waitForState(ann, 'open'), waitForState(ben, 'open')]);

    // ben's network goes away while more is stored than a rejoin may replay.
    bensNetwork.cut();
    await waitForState(ben, 'reconnecting');
    const bot = await signToken(project.jwtSecret, 'bot');
    const missed = 2 * RECOVERY_MAX;
    for (let n = 1; n <= missed; n++) {
      const response = await fetch(`${socketBase.url}/api/message`, {
        method: 'POST',
        headers: { 'x-hash': project.hash, authorization: `Bearer ${bot}` },
        body: JSON.stringify({ room: 'general', payload: `bot ${n}` }),
      });
      assert.equal(response.status, 200);
    }
    await waitForText(ann, `bot ${missed}`);
    bensNetwork.restore();

    await waitForState(ben, 'open');
    await waitForText(ben, `bot ${missed}`);
    const stored = await storedMessages();
    assert.equal(stored.length, 2 * PER_PAGE + missed);
    assert.deepEqual(await shownMessages(ann), stored, 'ann, who stayed, saw every message live');
    assert.deepEqual(
      await shownMessages(ben),
      stored.slice(-PAGE_HISTORY),
      'ben’s list is the room’s latest history, nothing twice',
    );
    assert.deepEqual(pageErrors, []);
  });

  it('a page opened later shows the room’s history; presence follows who comes and goes', async () => {
    const ann = pages.get('ann') as Page;
    const ben = pages.get('ben') as Page;
    const cy = await openChat('cy');
    const stored = await storedMessages();
    await waitForMessageCount(cy, PAGE_HISTORY);
    assert.deepEqual(await shownMessages(cy), stored.slice(-PAGE_HISTORY), 'the latest history');
    await waitForUsers(cy, ['ann', 'ben', 'cy']);
    await waitForUsers(ann, ['ann', 'ben', 'cy']);

    await ben.context().close();
    await waitForUsers(ann, ['ann', 'cy']);
    await waitForUsers(cy, ['ann', 'cy']);
    assert.deepEqual(pageErrors, []);
  });
});
