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

/**
 * What the test reads in the page. Functions, not strings, go to the page: the dashboard's
 * content security policy refuses eval. The test's TypeScript has no DOM types, hence this.
 */
interface PageGlobals {
  injected?: number;
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

/** A Node client on the `ws` package: joins a room and sends into it. */
async function nodeClient(url: string): Promise<{ send(text: string): void; close(): void }> {
  const socket = new WebSocket(url);
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
  };
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
      await page.getByLabel(`Type ${PROJECT_NAME} to confirm`).fill('wrong');
      await page.getByRole('button', { name: 'Delete project' }).click();
      await page.getByText('Type the project name exactly').waitFor();
      await page.getByLabel(`Type ${PROJECT_NAME} to confirm`).fill(PROJECT_NAME);
      await page.getByRole('button', { name: 'Delete project' }).click();
      await page.getByText(`Project ${PROJECT_NAME} was deleted.`).waitFor();
      assert.equal((await server.admin('GET', `/admin/projects/${hash}`)).status, 404);
    });
  });
}

dashboardSuite('one port', {}, false);
dashboardSuite('ADMIN_PORT set', { ADMIN_PORT: '0' }, true);
