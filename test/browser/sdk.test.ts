/** The SDK's browser build in headless Chromium: imported from the server, on the browser's own WebSocket. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import {
  signToken,
  startTestServer,
  type TestProject,
  type TestServer,
} from '../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

interface PageClient {
  states: string[];
  payloads: string[];
}

describe('the SDK in Chromium', () => {
  let server: TestServer;
  let project: TestProject;
  let proxy: TcpProxy;
  let browser: Browser;
  let page: Page;

  before(async () => {
    server = await startTestServer();
    project = await server.createProject('browser');
    proxy = await startTcpProxy(Number(new URL(server.url).port));
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(`${server.url}/healthz`);
  });
  after(async () => {
    await browser.close();
    await proxy.close();
    await server.close();
  });

  it('imports /sdk/socket-base.js, connects with the global WebSocket, sends and receives', async () => {
    const token = await signToken(project.jwtSecret, 'page');
    const result = await page.evaluate(
      async ({ base, hash, jwt }) => {
        const { SocketBase } = await import(`${base}/sdk/socket-base.js`);
        const client = new SocketBase({ url: base, hash, token: jwt });
        const room = client.room('b');
        const got = new Promise<string>((resolve) => {
          room.on('message', (m: { payload: string }) => resolve(m.payload));
        });
        await room.join();
        const sent = await room.send('from the page');
        const payload = await got;
        client.close();
        return { seq: sent.seq, payload, state: client.state };
      },
      { base: server.url, hash: project.hash, jwt: token },
    );
    assert.deepEqual(result, { seq: 1, payload: 'from the page', state: 'closed' });
  });

  it('the online event reconnects at once instead of waiting out the backoff', async () => {
    const token = await signToken(project.jwtSecret, 'roamer');
    await page.evaluate(
      async ({ base, hash, jwt }) => {
        const { SocketBase } = await import(`${base}/sdk/socket-base.js`);
        const watched: PageClient = { states: [], payloads: [] };
        // A backoff far longer than the test: only the online event can bring it back in time.
        const client = new SocketBase({
          url: base,
          hash,
          token: jwt,
          reconnect: { minDelayMs: 60_000, maxDelayMs: 120_000 },
        });
        client.on('state', (state: string) => watched.states.push(state));
        await client.room('o').join();
        Object.assign(globalThis, { watched, roamer: client });
      },
      { base: `http://127.0.0.1:${proxy.port}`, hash: project.hash, jwt: token },
    );
    proxy.cut();
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { watched: PageClient }).watched.states.at(-1) === 'reconnecting',
    );
    proxy.restore();
    // A string, evaluated in the page: the tests are compiled without the DOM's types.
    await page.evaluate("window.dispatchEvent(new Event('online'))");
    await page.waitForFunction(
      () => (globalThis as unknown as { watched: PageClient }).watched.states.at(-1) === 'open',
      undefined,
      { timeout: 5000 },
    );
    const states = await page.evaluate(() => {
      const { watched, roamer } = globalThis as unknown as {
        watched: PageClient;
        roamer: { close(): void };
      };
      roamer.close();
      return watched.states;
    });
    assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'open', 'closed']);
  });
});
