/**
 * The dashboard's entry: reads /dashboard/config.json, then draws the page the location hash names.
 * Hash routing keeps every page on the one file the server serves, and makes the back button work.
 */
import { AdminApi } from './admin-api.js';
import type { App, DashboardConfig, Page } from './app.js';
import { href, routeOf } from './app.js';
import { el, replaceChildren } from './dom.js';
import { MESSAGES } from './messages.js';
import { historyPage } from './pages/history.js';
import { playgroundPage } from './pages/playground.js';
import { projectPage } from './pages/project.js';
import { projectsPage } from './pages/projects.js';
import { roomsPage } from './pages/rooms.js';
import { serverPage } from './pages/server.js';
import { signInPage } from './pages/sign-in.js';
import { forgetToken, savedToken } from './session.js';

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;

async function loadConfig(): Promise<DashboardConfig> {
  const response = await fetch('/dashboard/config.json');
  return (await response.json()) as DashboardConfig;
}

/** Which page a route is, and its parameters. */
function pageOf(parts: string[]): { page: Page; params: string[] } {
  const [first, hash, section, room] = parts;
  if (first === 'server') return { page: serverPage, params: [] };
  if (first === 'projects' && hash !== undefined) {
    if (section === 'rooms' && room !== undefined)
      return { page: historyPage, params: [hash, room] };
    if (section === 'rooms') return { page: roomsPage, params: [hash] };
    if (section === 'playground') return { page: playgroundPage, params: [hash] };
    return { page: projectPage, params: [hash] };
  }
  return { page: projectsPage, params: [] };
}

async function start(): Promise<void> {
  const config = await loadConfig();
  // A test (or an impatient operator) may poll faster with `?poll=MS` in the hash; it sticks.
  let pollMs = config.pollMs;
  let leave: (() => void) | undefined;
  // Why the tab was signed out, shown once on the sign-in page.
  let signedOutBecause: string | undefined;
  const render = (): void => {
    leave?.();
    leave = undefined;
    const { parts, query } = routeOf(location.hash);
    const asked = Number(query.get('poll'));
    if (Number.isInteger(asked) && asked >= 50) pollMs = asked;
    const token = savedToken();
    const app: App = {
      // A 401 later in the session: the kept token no longer works; back to signing in.
      api: new AdminApi(token ?? '', () => {
        if (savedToken() !== token) return;
        signedOutBecause = MESSAGES.wrongToken;
        forgetToken();
        render();
      }),
      config,
      publicUrl: config.publicUrl ?? location.origin,
      pollMs,
      navigate: (hash) => {
        // The same hash fires no hashchange: draw again ourselves (after signing in, say).
        if (location.hash === hash) render();
        else location.hash = hash;
      },
      signOut: () => {
        forgetToken();
        render();
      },
    };
    drawNav(token !== null, app);
    if (token === null) {
      const notice = signedOutBecause;
      signedOutBecause = undefined;
      leave = signInPage(app, main, notice === undefined ? [] : [notice]) ?? undefined;
      return;
    }
    const { page, params } = pageOf(parts);
    replaceChildren(main);
    leave = page(app, main, params) ?? undefined;
    main.focus();
  };
  window.addEventListener('hashchange', render);
  render();
}

function drawNav(signedIn: boolean, app: App): void {
  if (!signedIn) {
    replaceChildren(nav);
    return;
  }
  const signOut = el('button', { type: 'button', class: 'link' }, 'Sign out');
  signOut.addEventListener('click', () => app.signOut());
  replaceChildren(
    nav,
    el('a', { href: href('projects') }, 'Projects'),
    el('a', { href: href('server') }, 'Server'),
    signOut,
  );
}

start().catch((error: unknown) => {
  replaceChildren(
    main,
    el('p', { class: 'status error' }, `Dashboard failed to start: ${String(error)}`),
  );
});
