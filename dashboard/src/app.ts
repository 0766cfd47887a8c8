/** What every page gets: the admin API, the server's dashboard settings, and a way to move on. */
import type { AdminApi } from './admin-api.js';

export interface DashboardConfig {
  /** Where /ws and /api are for browsers; null: this page's own origin. */
  publicUrl: string | null;
  pollMs: number;
}

export interface App {
  api: AdminApi;
  config: DashboardConfig;
  /** The public side's base URL, always set (the page's origin when the server said null). */
  publicUrl: string;
  /** How often live figures refresh (config.pollMs, or the page's `?poll=` for tests). */
  pollMs: number;
  navigate(hash: string): void;
  signOut(): void;
}

/** A page draws itself into `main` and returns what to do when the operator leaves it. */
export type Page = (app: App, main: HTMLElement, params: string[]) => (() => void) | undefined;

/**
 * Calls `work` now and every `ms` until stopped; a call still running when the next is due is not
 * doubled (a slow server gets one request at a time from this page).
 */
export function every(ms: number, work: () => Promise<void>): () => void {
  let running = false;
  const tick = (): void => {
    if (running) return;
    running = true;
    work()
      .catch(() => undefined)
      .finally(() => {
        running = false;
      });
  };
  tick();
  const timer = setInterval(tick, ms);
  return () => clearInterval(timer);
}

/** `#/projects/abc` → `['projects', 'abc']`, each part decoded; the `?query` is dropped. */
export function routeOf(hash: string): { parts: string[]; query: URLSearchParams } {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  const parts = path
    .split('/')
    .filter((part) => part !== '')
    .map((part) => decodeURIComponent(part));
  return { parts, query: new URLSearchParams(query) };
}

/** A hash link to a route, each part encoded. */
export function href(...parts: string[]): string {
  return `#/${parts.map((part) => encodeURIComponent(part)).join('/')}`;
}
