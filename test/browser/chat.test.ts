/**
 * The chat example (examples/chat) in headless Chromium: two pages of it talk both ways while the
 * socket-base server is restarted under them (SIGTERM, then started again on the same SQLite file
 * and port). Each page's DOM must end with every message of both pages exactly once, in seq order,
 * and the store must hold each once. The page is the example users copy: it imports the SDK from
 * the server's /sdk/socket-base.js and gets its tokens from the example's own backend.
 *
 * bob's page reaches socket-base through a TCP proxy (its own copy of the backend points there),
 * so that after the restart the test can keep bob away until alice's new messages are stored:
 * bob's page must then get them by the SDK's rejoin from its last seq, not by luck of timing
 * (with both pages back at once, a rejoin that forgot `since` went unnoticed in some runs).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

const ADMIN_TOKEN = 'browser-chat-admin-token';
/** Messages each page types; the server goes down after BEFORE_RESTART of them. */
const PER_PAGE = 12;
const BEFORE_RESTART = 4;
const TYPED_WHILE_DOWN = 4;
/** Then, once the server is back, typed while bob's network is still away. */
const TYPED_WHILE_BOB_AWAY = 2;
/** RECOVERY_MAX_MESSAGES of the reset test: a longer gap is not replayed. */
const RECOVERY_MAX = 5;
const WAIT_MS = 15_000;
/** The repository root, from dist/test/browser/. */
const ROOT = new URL('../../../', import.meta.url);

/** `node examples/chat/server.js`, resolved once it prints its `listening` line with the URL. */
async function startChatBackend(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string }> {
  const script = fileURLToPath(new URL('examples/chat/server.js', ROOT));
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chat backend silent: ${output}`)), WAIT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const match = /listening\b.*?(http:\/\/[^\s)]+)/.exec(output);
      if (match?.[1] === undefined) return;
      clearTimeout(timer);
      resolve(match[1]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chat backend exited (${code}): ${output}`));
    });
  });
  return { child, url };
}

/** Runs server.js, which should stop by itself (it is killed if it does not): code and stderr. */
async function runChatBackend(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  const script = fileURLToPath(new URL('examples/chat/server.js', ROOT));
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stderr };
}

/** What each page printed to its console or threw: shown when a wait on it fails. */
const pageLogs = new WeakMap<Page, string[]>();

function watchPage(page: Page): Page {
  const log: string[] = [];
  pageLogs.set(page, log);
  page.on('console', (message) => log.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));
  return page;
}

/** Waits for the page's connection badge (the SDK's `state` events) to read `state`. */
async function waitState(page: Page, state: string): Promise<void> {
  try {
    await page.waitForSelector(`#state[data-state="${state}"]`, { timeout: WAIT_MS });
  } catch (error) {
    const badge = await page.textContent('#state').catch(() => '?');
    const log = (pageLogs.get(page) ?? []).join('\n');
    throw new Error(`state ${state} not reached (badge: ${badge}); the page said:\n${log}`, {
      cause: error,
    });
  }
}

/** Waits until the page shows a message whose text is exactly `text`. */
async function waitForMessage(page: Page, text: string): Promise<void> {
  try {
    await page
      .locator('#messages > li > span', { hasText: new RegExp(`^${text}$`) })
      .waitFor({ timeout: WAIT_MS });
  } catch (error) {
    const shown = (await shownMessages(page)).map((m) => `${m.seq}:${m.text}`).join(', ');
    throw new Error(`"${text}" not shown; the page shows: ${shown}`, { cause: error });
  }
}

/** Waits until the page's list of who is present reads `users`, in order. */
async function waitForUsers(page: Page, users: readonly string[]): Promise<void> {
  try {
    await page.waitForFunction(
      `JSON.stringify([...document.querySelectorAll('#users > li')].map((li) => li.textContent)) === ${JSON.stringify(JSON.stringify(users))}`,
      undefined,
      { timeout: WAIT_MS },
    );
  } catch (error) {
    const shown = await page.$$eval('#users > li', (items) => items.map((li) => li.textContent));
    throw new Error(`present: [${shown}], not [${users}]`, { cause: error });
  }
}

/** Types one message into the page's form and submits it, as a user does. */
async function type(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** The messages a page shows: each element's data-seq, author and text, in DOM order. */
function shownMessages(page: Page): Promise<{ seq: number; from: string; text: string }[]> {
  return page.$$eval('#messages > li', (items) =>
    items.map((item) => ({
      seq: Number(item.getAttribute('data-seq')),
      from: item.querySelector('b')?.textContent ?? '',
      text: item.querySelector('span')?.textContent ?? '',
    })),
  );
}

describe("the chat example's backend (examples/chat/server.js)", () => {
  const SECRET = 'the-project-secret-of-the-backend-test';
  let backend: { child: ChildProcess; url: string } | undefined;

  before(async () => {
    backend = await startChatBackend({
      SOCKET_BASE_URL: 'http://127.0.0.1:9',
      PROJECT_HASH: 'the-hash',
      PROJECT_SECRET: SECRET,
      PORT: '0',
    });
  });
  after(() => {
    backend?.child.kill('SIGTERM');
  });

  it("POST /token signs an HS256 JWT for the name with the project's secret: sub, iat, exp ten minutes on; a bad name is 400", async () => {
    const url = (backend as { url: string }).url;
    const response = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: ' ann ' }),
    });
    assert.equal(response.status, 200);
    const { jwt } = (await response.json()) as { jwt: string };
    const { payload } = await jwtVerify(jwt, new TextEncoder().encode(SECRET), {
      algorithms: ['HS256'],
    });
    const iat = payload.iat as number;
    assert.equal(payload.sub, 'ann');
    assert.ok(Math.abs(iat - Date.now() / 1000) < 5, 'iat is now');
    assert.equal(payload.exp, iat + 600);
    for (const body of [
      '{}',
      '{"name":"  "}',
      '{"name":42}',
      `{"name":"${'n'.repeat(65)}"}`,
      'no json',
    ]) {
      const refused = await fetch(`${url}/token`, { method: 'POST', body });
      assert.equal(refused.status, 400, body);
      await refused.arrayBuffer();
    }
  });

  it("GET /config.json tells the page the socket-base URL and the hash, never the secret; only the page's files are served", async () => {
    const url = (backend as { url: string }).url;
    const text = await (await fetch(`${url}/config.json`)).text();
    assert.deepEqual(JSON.parse(text), { socketBaseUrl: 'http://127.0.0.1:9', hash: 'the-hash' });
    assert.ok(!text.includes(SECRET));
    for (const [path, type] of [
      ['/', 'text/html'],
      ['/chat.js', 'text/javascript'],
      ['/style.css', 'text/css'],
    ] as const) {
      const page = await fetch(`${url}${path}`);
      assert.equal(page.status, 200, path);
      assert.match(page.headers.get('content-type') ?? '', new RegExp(`^${type}`), path);
      await page.arrayBuffer();
    }
    for (const path of ['/server.js', '/public/chat.js', '/..%2fserver.js']) {
      const refused = await fetch(`${url}${path}`);
      assert.equal(refused.status, 404, path);
      await refused.arrayBuffer();
    }
  });

  it('without PROJECT_HASH or PROJECT_SECRET, or with a bad PORT, it stops with one line saying why', async () => {
    for (const [env, says] of [
      [{ PROJECT_SECRET: 's' }, /PROJECT_HASH and PROJECT_SECRET are required/],
      [{ PROJECT_HASH: 'h' }, /PROJECT_HASH and PROJECT_SECRET are required/],
      [{ PROJECT_HASH: 'h', PROJECT_SECRET: 's', PORT: 'eighty' }, /^PORT must be a port number/],
    ] as const) {
      const { code, stderr } = await runChatBackend(env);
      assert.equal(code, 1, stderr);
      assert.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr}`);
      assert.match(stderr.trim(), says);
    }
  });
});

describe('the chat example in Chromium across a server restart', () => {
  let cwd: string;
  let env: Record<string, string>;
  let server: ServerProcess;
  let project: { hash: string; jwtSecret: string };
  /** alice's backend: its page reaches socket-base directly. */
  let backend: { child: ChildProcess; url: string } | undefined;
  /** bob's: the same example, whose page reaches socket-base through `bobsNetwork`. */
  let bobsBackend: { child: ChildProcess; url: string } | undefined;
  let bobsNetwork: TcpProxy | undefined;
  let browser: Browser | undefined;
  const openPages = new Map<string, Page>();

  /** Opens the chat as `name` and waits until it is connected. */
  async function openChat(name: string, chatUrl: string): Promise<Page> {
    const page = watchPage(
      await (browser as Browser).newPage({ viewport: { width: 760, height: 560 } }),
    );
    // A short backoff, so that the pages come back soon after the server does.
    await page.goto(`${chatUrl}/?reconnectMin=100&reconnectMax=400`);
    // The page enables Join once it has loaded the SDK.
    await page.waitForSelector('#login button:enabled', { timeout: WAIT_MS });
    await page.fill('#name', name);
    await page.press('#name', 'Enter');
    await waitState(page, 'open');
    openPages.set(name, page);
    return page;
  }

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'sb-browser-chat-'));
    env = {
      DATABASE_URL: `sqlite:${join(cwd, 'db.sqlite')}`,
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      SHUTDOWN_DELAY_MS: '0',
    };
    server = await spawnServer(env, cwd);
    project = await createProjectAt(server.url, ADMIN_TOKEN, 'chat');
    const chatEnv = { PROJECT_HASH: project.hash, PROJECT_SECRET: project.jwtSecret, PORT: '0' };
    backend = await startChatBackend({ ...chatEnv, SOCKET_BASE_URL: server.url });
    bobsNetwork = await startTcpProxy(Number(new URL(server.url).port));
    bobsBackend = await startChatBackend({
      ...chatEnv,
      SOCKET_BASE_URL: `http://127.0.0.1:${bobsNetwork.port}`,
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    backend?.child.kill('SIGTERM');
    bobsBackend?.child.kill('SIGTERM');
    await bobsNetwork?.close();
    await server.stop('SIGTERM');
    rmSync(cwd, { recursive: true, force: true });
  });

  it('two pages talk both ways while the server restarts: each DOM shows every message once, in seq order', async () => {
    const names = ['alice', 'bob'] as const;
    const alice = await openChat('alice', (backend as { url: string }).url);
    const bob = await openChat('bob', (bobsBackend as { url: string }).url);
    const pages = [alice, bob];
    // Both joined, and each sees the other: presence drawn from room.users.
    for (const page of pages) {
      for (const name of names) {
        await page.waitForSelector(`#users > li:text-is("${name}")`, { timeout: WAIT_MS });
      }
    }

    const typeRound = async (n: number): Promise<void> => {
      for (const [i, page] of pages.entries()) await type(page, `${names[i]} ${n}`);
    };
    let n = 1;
    for (; n <= BEFORE_RESTART; n++) await typeRound(n);
    const url = server.url;
    await server.stop('SIGTERM');
    // The badge shows the drop; what is typed now waits in the SDK.
    for (const page of pages) await waitState(page, 'reconnecting');
    for (; n <= BEFORE_RESTART + TYPED_WHILE_DOWN; n++) await typeRound(n);
    // bob's network stays away after the restart, until what alice types next is stored.
    const network = bobsNetwork as TcpProxy;
    network.cut();
    server = await spawnServer({ ...env, PORT: new URL(url).port }, cwd);
    await waitState(alice, 'open');
    for (; n <= BEFORE_RESTART + TYPED_WHILE_DOWN + TYPED_WHILE_BOB_AWAY; n++) await typeRound(n);
    await waitForMessage(alice, `alice ${n - 1}`);
    assert.equal(await bob.getAttribute('#state', 'data-state'), 'reconnecting', 'bob still away');
    network.restore();
    await waitState(bob, 'open');
    for (; n <= PER_PAGE; n++) await typeRound(n);

    const total = names.length * PER_PAGE;
    const expected = names.flatMap((name) =>
      Array.from({ length: PER_PAGE }, (_, i) => `${name} ${i + 1}`),
    );
    for (const page of pages) {
      await waitState(page, 'open');
      await page
        .locator('#messages > li')
        .nth(total - 1)
        .waitFor({ timeout: WAIT_MS });
    }
    const token = await signToken(project.jwtSecret, 'reader');
    // The store's order is the order every page must show.
    const stored = await fullHistory(server.url, { hash: project.hash, token }, 'general');
    assertGapless(stored, 'the stored room');
    assert.deepEqual(
      stored.map((m) => m.payload).sort(),
      expected.slice().sort(),
      'the store holds every message once',
    );
    for (const [i, page] of pages.entries()) {
      const shown = await shownMessages(page);
      assert.deepEqual(
        shown,
        stored.map((m) => ({ seq: m.seq, from: m.from, text: m.payload })),
        `${names[i]}'s page shows every message once, in seq order`,
      );
      // Each page's own messages were stored in the order they were typed.
      for (const name of names) {
        const own = shown.filter((m) => m.from === name).map((m) => m.text);
        assert.deepEqual(
          own,
          expected.filter((text) => text.startsWith(`${name} `)),
          name,
        );
      }
    }
    // Taken on every run; written over docs/chat.png only when asked, so a run leaves the tree clean.
    const path =
      process.env.UPDATE_SCREENSHOTS === '1'
        ? fileURLToPath(new URL('docs/chat.png', ROOT))
        : undefined;
    const image = await pages[0]?.screenshot(path === undefined ? {} : { path });
    assert.ok(image !== undefined && image.length > 0, 'a screenshot of the chat');
  });

  it('a page away for longer than recovery allows redraws from history on reset: each message once, in seq order', async () => {
    const alice = openPages.get('alice') as Page;
    const bob = openPages.get('bob') as Page;
    const port = new URL(server.url).port;
    await server.stop('SIGTERM');
    server = await spawnServer(
      { ...env, PORT: port, RECOVERY_MAX_MESSAGES: String(RECOVERY_MAX) },
      cwd,
    );
    await waitState(alice, 'open');
    await waitState(bob, 'open');

    // bob's network goes away while more is stored than a rejoin may replay.
    const network = bobsNetwork as TcpProxy;
    network.cut();
    await waitState(bob, 'reconnecting');
    const token = await signToken(project.jwtSecret, 'bot');
    const missed = 2 * RECOVERY_MAX;
    for (let i = 1; i <= missed; i++) {
      const response = await fetch(`${server.url}/api/message`, {
        method: 'POST',
        headers: { 'x-hash': project.hash, authorization: `Bearer ${token}` },
        body: JSON.stringify({ room: 'general', payload: `bot ${i}` }),
      });
      assert.equal(response.status, 200);
    }
    await waitForMessage(alice, `bot ${missed}`);
    network.restore();
    await waitState(bob, 'open');
    await waitForMessage(bob, `bot ${missed}`);

    const reader = await signToken(project.jwtSecret, 'reader');
    const stored = (
      await fullHistory(server.url, { hash: project.hash, token: reader }, 'general')
    ).map((m) => ({ seq: m.seq, from: m.from, text: m.payload }));
    assert.equal(stored.length, 2 * PER_PAGE + missed);
    assert.deepEqual(await shownMessages(alice), stored, 'alice, who stayed, saw each live');
    assert.deepEqual(await shownMessages(bob), stored, "bob's page, redrawn from history");
  });

  it("a page opened later shows the room's history; presence follows who comes and goes", async () => {
    const alice = openPages.get('alice') as Page;
    const bob = openPages.get('bob') as Page;
    const carol = await openChat('carol', (backend as { url: string }).url);
    const reader = await signToken(project.jwtSecret, 'reader');
    const stored = (
      await fullHistory(server.url, { hash: project.hash, token: reader }, 'general')
    ).map((m) => ({ seq: m.seq, from: m.from, text: m.payload }));
    const last = stored.at(-1) as { text: string };
    await waitForMessage(carol, last.text);
    assert.deepEqual(await shownMessages(carol), stored, 'what was said before carol came');

    for (const page of [alice, bob, carol]) await waitForUsers(page, ['alice', 'bob', 'carol']);
    await bob.close();
    for (const page of [alice, carol]) await waitForUsers(page, ['alice', 'carol']);
  });
});
