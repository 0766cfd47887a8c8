/**
 * The dashboard's routes: /dashboard (its page), /dashboard/config.json (where the public side is)
 * and /dashboard/<asset> (its CSS and compiled scripts). Every answer carries a content security
 * policy, so that even a bug that put server data into markup could not run a script.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type Headers, sendError, sendJson } from './io.js';
import { StaticFiles } from './static-files.js';

export interface DashboardOptions {
  /** PUBLIC_URL, when set: where browsers reach /ws, /api and /sdk. */
  publicUrl: string | undefined;
  /**
   * The main port once it listens, when the dashboard is on ADMIN_PORT (undefined: one port, and
   * the page's own origin is the public one).
   */
  mainPort: () => number | undefined;
  /** How often the page polls the stats, in ms. */
  pollMs: number;
}

/** Where the package keeps the dashboard, from this file's place in dist/src/http/. */
const DASHBOARD_ROOT = new URL('../../../dashboard/', import.meta.url);

// A host name or an IP literal: anything else in a Host header is not put into a URL or a policy.
const SAFE_HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])$/;

export class DashboardRoutes {
  readonly #pages: StaticFiles;
  readonly #scripts: StaticFiles;
  readonly #options: DashboardOptions;

  constructor(options: DashboardOptions, root: URL = DASHBOARD_ROOT) {
    this.#options = options;
    this.#pages = new StaticFiles(fileURLToPath(new URL('public/', root)));
    this.#scripts = new StaticFiles(fileURLToPath(new URL('dist/', root)));
  }

  /** Answers GET/HEAD under /dashboard (`path` is the whole path). */
  serve(request: IncomingMessage, response: ServerResponse, path: string): void {
    const publicUrl = this.publicUrl(request.headers.host);
    const headers = securityHeaders(publicUrl ?? sameHostOrigin(request.headers.host));
    const asset = path === '/dashboard' || path === '/dashboard/' ? 'index.html' : path.slice(11);
    if (asset === 'config.json') {
      sendJson(
        response,
        200,
        { publicUrl, pollMs: this.#options.pollMs },
        { ...headers, 'cache-control': 'no-store' },
      );
      return;
    }
    for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
    if (this.#pages.has(asset)) this.#pages.serve(request, response, asset);
    else if (this.#scripts.has(asset)) this.#scripts.serve(request, response, asset);
    else sendError(response, 'notFound');
  }

  /**
   * PUBLIC_URL; else, on ADMIN_PORT, the main port on the host the browser used (it reached the
   * admin port by that name, so the main port is most likely there too); else null: the page's own
   * origin is the public one.
   */
  publicUrl(hostHeader: string | undefined): string | null {
    if (this.#options.publicUrl !== undefined) return this.#options.publicUrl;
    const port = this.#options.mainPort();
    if (port === undefined) return null;
    return `http://${hostnameOf(hostHeader) ?? '127.0.0.1'}:${port}`;
  }
}

function hostnameOf(hostHeader: string | undefined): string | undefined {
  if (hostHeader === undefined) return undefined;
  const hostname = hostHeader.startsWith('[')
    ? hostHeader.slice(0, hostHeader.indexOf(']') + 1)
    : (hostHeader.split(':')[0] ?? '');
  return SAFE_HOST.test(hostname) ? hostname : undefined;
}

/** The page's own origin, for a policy that names its WebSocket explicitly. */
function sameHostOrigin(hostHeader: string | undefined): string | undefined {
  if (hostHeader === undefined) return undefined;
  const hostname = hostnameOf(hostHeader);
  if (hostname === undefined) return undefined;
  const port = hostHeader.slice(hostname.length);
  return /^(?::\d{1,5})?$/.test(port) ? `http://${hostname}${port}` : undefined;
}

/**
 * Scripts only from this server and the public side (the SDK); connections only to this server
 * (the admin API) and the public side's HTTP and WebSocket; no inline script or style at all.
 */
export function securityHeaders(publicOrigin: string | undefined): Headers {
  const origin = publicOrigin === undefined ? undefined : new URL(publicOrigin).origin;
  const sockets =
    origin === undefined ? [] : [origin.replace(/^http/, 'ws'), origin.replace(/^https?/, 'wss')];
  const scripts = ["'self'", ...(origin === undefined ? [] : [origin])];
  const connect = [...scripts, ...new Set(sockets)];
  return {
    'content-security-policy': [
      "default-src 'none'",
      `script-src ${scripts.join(' ')}`,
      "style-src 'self'",
      "img-src 'self' data:",
      `connect-src ${connect.join(' ')}`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'referrer-policy': 'no-referrer',
  };
}
