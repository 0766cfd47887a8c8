/**
 * The dashboard in headless Chromium against a real server, once on one port and once with
 * ADMIN_PORT set (the page on the admin port, the playground's socket on the main one). The steps
 * run in order on one page, as an operator would: each waits on what the page shows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, Response } from 'playwright-core';
import WebSocket from 'ws';
import { launchChromium } from '../helpers/browser.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Screenshots of every page, always taken; written over docs/dashboard/ only when asked
 * (UPDATE_SCREENSHOTS=1), so that a test run leaves the tree as it found it.
 */
const SCREENSHOTS =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? new URL('../../../docs/dashboard/', import.meta.url)
    : undefined;
const FIRST_LOAD_LIMIT = 150 * 1024;
/** Server data that would run, or break out of an attribute, if it were put in as markup. */
const HOSTILE = `<script>window.injected = 1</script><img src=x onerror="window.injected=2"> "double" 'single'`;
const PROJECT_NAME = `shop <b>"bold"</b>`;
/** The name the project is renamed to, markup and quotes included: it must show as text. */
const RENAMED = `shop <i>"renamed"</i> & 'co'`;
/** Where the dashboard keeps the admin token (dashboard/src/session.ts). */
const TOKEN_KEY = 'socket-base.admin-token';
const TIME_AXIS = [
  '\u22125 min',
  '\u22124 min',
  '\u22123 min',
  '\u22122 min',
  '\u22121 min',
  'now',
];

/**
 * What the test reads in the page. Functions, not strings, go to the page: the dashboard's
 * content security policy refuses eval. The test's TypeScript has no DOM types, hence this.
 */
interface PageGlobals {
  injected?: number;
  sessionStorage: {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
  };
  document: {
    querySelector(selector: string): { textContent: string | null } | null;
    querySelectorAll(selector: string): { length: number };
    documentElement: { scrollWidth: number };
  };
}

/** Whether the live messages/s figure shows a number above `start`. */
function figureAbove(start: number): boolean {
  const { document } = globalThis as unknown as PageGlobals;
  const text = document.querySelector('[data-figure="messagesPerSecond"]')?.textContent ?? '';
  return /\d/.test(text) && Number(text) > start;
}

/** A Node client on the `ws` package: joins a room and sends into it; `closed` once its socket is. */
async function nodeClient(
  url: string,
): Promise<{ send(text: string): void; close(): void; closed: Promise<void> }> {
  const socket = new WebSocket(url);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const frames: { type: string }[] = [];
  const waitFor = (type: string) =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (frames.some((frame) => frame.type === type)) resolve();
      };
      socket.on('message', (data) => {
        frames.push(JSON.parse(String(data)) as { type: string });
        check();
      });
      socket.on('close', () => reject(new Error(`closed before ${type}`)));
      check();
    });
  await waitFor('connected');
  socket.send(JSON.stringify({ type: 'join', room: 'lobby', presence: true }));
  await waitFor('joined');
  return {
    send: (text) => socket.send(JSON.stringify({ type: 'message', room: 'lobby', payload: text })),
    close: () => socket.close(),
    closed,
  };
}

/** The messages/s chart's current-value label and its figure, read at once. */
function currentLabel(): { label: string; figure: string } {
  const { document } = globalThis as unknown as PageGlobals;
  const chart = '[data-chart="messagesPerSecond"]';
  return {
    label: document.querySelector(`${chart} svg text.current`)?.textContent ?? '',
    figure: document.querySelector(`${chart} [data-figure]`)?.textContent ?? '',
  };
}

/** Whether the messages/s chart's current-value label shows a number (runs in the page alone). */
function currentLabelShown(): boolean {
  const { document } = globalThis as unknown as PageGlobals;
  const text = document.querySelector('[data-chart="messagesPerSecond"] svg text.current');
  return /\d/.test(text?.textContent ?? '');
}

function dashboardSuite(label: string, env: Record<string, string>, screenshots: boolean): void {
  describe(`the dashboard (${label})`, () => {
    let server: TestServer;
    let browser: Browser;
    let page: Page;
    let hash = '';
    let firstSecret = '';
    let base = '';

    const shot = async (name: string): Promise<void> => {
      if (!screenshots) return;
      const image = await page.screenshot({
        ...(SCREENSHOTS === undefined
          ? {}
          : { path: new URL(`${name}.png`, SCREENSHOTS).pathname }),
        fullPage: true,
      });
      assert.ok(image.length > 0, `a screenshot of ${name}`);
    };
    const go = async (route: string): Promise<void> => {
      await page.goto(`${base}/dashboard#${route}`);
    };

    before(async () => {
      server = await startTestServer(env);
      base = server.adminUrl;
      browser = await launchChromium();
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    });
    after(async () => {
      await browser.close();
      await server.close();
    });

    it('loads in under 150 KB and refuses a wrong admin token, then signs in', async () => {
      const bodies: Promise<number>[] = [];
      const count = (response: Response): void => {
        bodies.push(response.body().then((body) => body.length));
      };
      page.on('response', count);
      await go('/projects?poll=200');
      await page.waitForSelector('form[aria-label="Sign in"]');
      await page.waitForLoadState('networkidle');
      page.off('response', count);
      const bytes = (await Promise.all(bodies)).reduce((sum, size) => sum + size, 0);
      assert.ok(bytes > 0 && bytes < FIRST_LOAD_LIMIT, `first load ${bytes} bytes`);
      console.log(`# first load: ${bytes} bytes`);
      await page.getByLabel('Admin token').fill('not-the-admin-token-at-all');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('Wrong admin token').waitFor();
      await shot('sign-in');
      await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
    });

    it('creates a project, shows its secret once, and lists it', async () => {
      await page.getByLabel('Project name').fill(PROJECT_NAME);
      await page.getByRole('button', { name: 'Create' }).click();
      await page.getByText('Created project').waitFor();
      firstSecret = (await page.textContent('[data-secret]')) ?? '';
      const listed = (await (await server.admin('GET', '/admin/projects')).json()) as {
        projects: { hash: string; name: string }[];
      };
      hash = listed.projects.find((project) => project.name === PROJECT_NAME)?.hash ?? '';
      assert.notEqual(hash, '');
      await page.locator('table').getByText(PROJECT_NAME).waitFor();
      await shot('projects');
    });

    it('changes the retention, refusing a value that is not a positive integer', async () => {
      await go(`/projects/${hash}`);
      await page.getByLabel('Keep messages for (seconds)').fill('0');
      await page.getByRole('button', { name: 'Save settings' }).click();
      await page.getByText('must be a positive whole number').waitFor();
      await page.getByLabel('Keep messages for (seconds)').fill('3600');
      await page.getByLabel('Keep at most messages per room').fill('500');
      await page.getByRole('button', { name: 'Save settings' }).click();
      await page.getByText('Settings saved.').waitFor();
      const saved = (await (await server.admin('GET', `/admin/projects/${hash}`)).json()) as {
        settings: { retention: unknown };
      };
      assert.deepEqual(saved.settings.retention, { maxAgeSeconds: 3600, maxMessagesPerRoom: 500 });
    });

    it("renames the project, showing the server's refusals, and the new name as text", async () => {
      const rename = page.getByRole('button', { name: 'Rename', exact: true });
      await page.getByLabel('New name').fill('');
      await rename.click();
      await page.getByText('Name required').waitFor();
      await page.getByLabel('New name').fill('x'.repeat(201));
      await rename.click();
      await page.getByText('Name too long').waitFor();
      await page.getByLabel('New name').fill(RENAMED);
      await rename.click();
      await page.getByText(`Renamed to ${RENAMED}.`).waitFor();
      assert.equal(await page.locator('main h1').textContent(), RENAMED);
      // The delete form now asks for the new name.
      await page.getByLabel(`Type ${RENAMED} to confirm`).waitFor();
      assert.equal(await page.locator('main i').count(), 0, 'the name is not markup');
      const saved = (await (await server.admin('GET', `/admin/projects/${hash}`)).json()) as {
        name: string;
      };
      assert.equal(saved.name, RENAMED);
      await go('/projects');
      await page.locator('table').getByText(RENAMED).waitFor();
    });

    it('playground: mints, connects, joins, sends; the frame log and presence show it', async () => {
      await go(`/projects/${hash}/playground`);
      await page.getByLabel('User (sub)').fill('operator');
      await page.getByRole('button', { name: 'Mint token' }).click();
      await page.getByText('Token minted').waitFor();
      await page.getByRole('button', { name: 'Connect', exact: true }).click();
      await page.waitForSelector('[data-state="open"]');
      await page.getByLabel('Room', { exact: true }).first().fill('lobby');
      await page.getByRole('button', { name: 'Join' }).click();
      await page.getByText('Joined lobby').waitFor();
      await page.getByRole('textbox', { name: 'Message' }).fill(HOSTILE);
      await page.getByRole('button', { name: 'Send', exact: true }).click();
      await page.getByText('Stored as seq 1.').waitFor();
      // The frame is JSON: the payload shows with its quotes escaped, as the wire carries it.
      const onTheWire = JSON.stringify(HOSTILE).slice(1, -1);
      await page
        .locator('.frame-log li[data-direction="in"] code', { hasText: onTheWire })
        .first()
        .waitFor();
      assert.ok(
        (await page.locator('.frame-log li[data-direction="out"]').count()) >= 2,
        'join and message frames logged going out',
      );
      await page.getByRole('textbox', { name: 'Broadcast' }).fill('hello everyone');
      await page.getByRole('button', { name: 'Broadcast', exact: true }).click();
      await page.getByText('Broadcast sent.').waitFor();
      const minted = (await (
        await server.admin('POST', `/admin/projects/${hash}/tokens`, { sub: 'node-bot' })
      ).json()) as { jwt: string };
      const bot = await nodeClient(`${server.wsUrl}/ws/${hash}?jwt=${minted.jwt}`);
      await page.locator('[data-room="lobby"] li', { hasText: 'node-bot' }).waitFor();
      await shot('playground');
      bot.close();
    });

    it('playground: leaves the room and closes the connection, both in the frame log', async () => {
      await page.getByRole('button', { name: 'Leave lobby' }).click();
      await page.getByText('Left lobby.').waitFor();
      await page
        .locator('.frame-log li[data-direction="out"] code', { hasText: '"type":"leave"' })
        .first()
        .waitFor();
      await page.locator('[data-room="lobby"]').waitFor({ state: 'detached' });
      await page.getByRole('button', { name: 'Close connection' }).click();
      await page.waitForSelector('[data-state="closed"]');
      await page.getByText('Connection closed.').waitFor();
      await page
        .locator('.frame-log li[data-direction="out"] code', { hasText: '(close' })
        .first()
        .waitFor();
      await page
        .locator('.frame-log li[data-direction="in"] code', { hasText: '(closed: code 1000' })
        .first()
        .waitFor();
      assert.ok(
        await page.getByRole('button', { name: 'Connect', exact: true }).isEnabled(),
        'the playground can connect again',
      );
    });

    it("a Node client's messages move the live messages/s figure", async () => {
      await go(`/projects/${hash}`);
      const figure = page.locator('[data-figure="messagesPerSecond"]');
      await page.waitForFunction(figureAbove, -1);
      const before = Number(await figure.textContent());
      const minted = (await (
        await server.admin('POST', `/admin/projects/${hash}/tokens`, { sub: 'node-bot' })
      ).json()) as { jwt: string };
      const bot = await nodeClient(`${server.wsUrl}/ws/${hash}?jwt=${minted.jwt}`);
      for (let n = 0; n < 30; n++) bot.send(`from node ${n}`);
      await page.waitForFunction(figureAbove, before);
      await shot('project');
      bot.close();
    });

    it("labels each chart's time axis (\u22125 min … now) and its current value", async () => {
      await go(`/projects/${hash}`);
      for (const chart of ['connections', 'users', 'rooms', 'messagesPerSecond']) {
        const ticks = page.locator(`[data-chart="${chart}"] svg text.tick`);
        assert.deepEqual(await ticks.allTextContents(), TIME_AXIS, `${chart}'s time axis`);
      }
      await page.waitForFunction(currentLabelShown);
      const { label, figure } = await page.evaluate(currentLabel);
      assert.equal(label, figure, 'the current value is labelled on the chart');
      const named = await page
        .locator('[data-chart="messagesPerSecond"] svg')
        .getAttribute('aria-label');
      assert.match(named ?? '', /over the last 5 minutes, now \d/);
    });

    it('disconnects a user; an empty user sends nothing; everyone only when chosen and confirmed', async () => {
      await go(`/projects/${hash}`);
      const sent: string[] = [];
      const watch = (request: { url(): string }): void => {
        if (request.url().endsWith('/disconnect')) sent.push(request.url());
      };
      page.on('request', watch);
      const mint = async (sub: string): Promise<string> =>
        (
          (await (
            await server.admin('POST', `/admin/projects/${hash}/tokens`, { sub })
          ).json()) as { jwt: string }
        ).jwt;
      const alice = await nodeClient(`${server.wsUrl}/ws/${hash}?jwt=${await mint('alice')}`);
      const bob = await nodeClient(`${server.wsUrl}/ws/${hash}?jwt=${await mint('bob')}`);
      const disconnect = page.getByRole('button', { name: 'Disconnect', exact: true });
      const user = page.getByLabel('User', { exact: true });
      await user.fill('');
      await disconnect.click();
      await page.getByText('User required').waitFor();
      await user.fill('alice');
      await disconnect.click();
      await page.getByText('Every connection of alice is being closed.').waitFor();
      await alice.closed;
      await page.getByLabel('Every connection of the project').check();
      assert.ok(await user.isDisabled(), 'the user field is off while everyone is chosen');
      page.once('dialog', (dialog) => {
        dialog.dismiss().catch(() => undefined);
      });
      await disconnect.click();
      await page.getByText('Nothing was disconnected.').waitFor();
      page.once('dialog', (dialog) => {
        dialog.accept().catch(() => undefined);
      });
      await disconnect.click();
      await page.getByText('Every connection of the project is being closed.').waitFor();
      await bob.closed;
      page.off('request', watch);
      assert.equal(sent.length, 2, 'the empty user and the dismissed confirm sent nothing');
    });

    it('lists the room and shows its history as text, hostile payloads included', async () => {
      await go(`/projects/${hash}/rooms`);
      await page.getByRole('link', { name: 'lobby' }).click();
      await page.getByRole('heading', { name: 'History of lobby' }).waitFor();
      await page.locator('pre.payload', { hasText: 'from node 29' }).waitFor();
      // The rooms page showed 31 messages: the newest 50 are on one page.
      assert.equal(await page.locator('pre.payload').count(), 31);
      assert.equal(await page.locator('pre.payload').first().textContent(), HOSTILE);
      const injected = await page.evaluate(() => {
        const { document, injected: flag } = globalThis as unknown as PageGlobals;
        return {
          flag,
          scripts: document.querySelectorAll('main script, main img').length,
          bold: document.querySelectorAll('main b').length,
        };
      });
      assert.deepEqual(injected, { flag: undefined, scripts: 0, bold: 0 });
      await shot('history');
      await go(`/projects/${hash}/rooms`);
      await page.locator('table').getByText('lobby').waitFor();
      await shot('rooms');
    });

    it('shows the server-wide figures', async () => {
      await go('/server');
      await page.getByText(/\d+ projects · \d+ instances/).waitFor();
      await shot('server');
    });

    it('signs the tab out when a later admin call answers 401, saying the token is wrong', async () => {
      await page.evaluate((key) => {
        (globalThis as unknown as PageGlobals).sessionStorage.setItem(key, 'changed-on-the-server');
      }, TOKEN_KEY);
      await go('/projects');
      await page.waitForSelector('form[aria-label="Sign in"]');
      await page.getByText('Wrong admin token').waitFor();
      const kept = await page.evaluate(
        (key) => (globalThis as unknown as PageGlobals).sessionStorage.getItem(key),
        TOKEN_KEY,
      );
      assert.equal(kept, null, 'the token that no longer works is forgotten');
      assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0);
      await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Projects' }).waitFor();
    });

    it('is readable 390 px wide: nothing wider than the screen', async () => {
      await page.setViewportSize({ width: 390, height: 800 });
      await go(`/projects/${hash}`);
      await page.getByRole('button', { name: 'Save settings' }).waitFor();
      const width = await page.evaluate(
        () => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth,
      );
      assert.ok(width <= 390, `page is ${width} px wide`);
      await shot('project-phone');
      await page.setViewportSize({ width: 1280, height: 800 });
    });

    it('rotates the secret after a confirm and shows the new one once', async () => {
      await go(`/projects/${hash}`);
      page.once('dialog', (dialog) => {
        dialog.accept().catch(() => undefined);
      });
      await page.getByRole('button', { name: 'Rotate secret' }).click();
      await page.getByText('Secret rotated').waitFor();
      const secret = await page.textContent('[data-secret]');
      assert.ok(secret !== null && secret.length > 10 && secret !== firstSecret);
    });

    it('deletes the project once its name is typed, and says so', async () => {
      await page.getByLabel(`Type ${RENAMED} to confirm`).fill(PROJECT_NAME);
      await page.getByRole('button', { name: 'Delete project' }).click();
      await page.getByText('Type the project name exactly').waitFor();
      await page.getByLabel(`Type ${RENAMED} to confirm`).fill(RENAMED);
      await page.getByRole('button', { name: 'Delete project' }).click();
      await page.getByText(`Project ${RENAMED} was deleted.`).waitFor();
      assert.equal((await server.admin('GET', `/admin/projects/${hash}`)).status, 404);
    });
  });
}

dashboardSuite('one port', {}, false);
dashboardSuite('ADMIN_PORT set', { ADMIN_PORT: '0' }, true);
