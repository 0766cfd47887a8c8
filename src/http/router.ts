/** Sends each HTTP request to its routes by path prefix. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import { redactUrl } from '../observability/logger.js';
import type { AdminRoutes } from './admin.js';
import type { ApiRoutes } from './api.js';
import type { DashboardRoutes } from './dashboard.js';
import { decodePath, sendError } from './io.js';
import { healthz, metrics, type Readiness, readyz } from './ops.js';
import type { StaticFiles } from './static-files.js';

export interface Routes {
  api: ApiRoutes;
  admin: AdminRoutes;
  readiness: Readiness;
  registry: Registry;
  logger: Logger;
  /** The SDK's browser build, under /sdk/ on every port (the dashboard imports it too). */
  sdk: StaticFiles;
  /** The operator's pages, under /dashboard (on ADMIN_PORT when it is set). */
  dashboard: DashboardRoutes;
}

/**
 * What one listener serves: everything on the one port, or, when ADMIN_PORT is set, the public
 * side (/api, /ws) on the main port and the operator's side (/admin, /metrics, /dashboard) on the
 * admin port. /healthz and /readyz answer on both, so that each port can be probed.
 */
export type Doors = 'all' | 'public' | 'admin';

function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** Paths only the admin port serves when there is one. */
function operatorsOnly(path: string): boolean {
  return under(path, '/admin') || path === '/metrics' || under(path, '/dashboard');
}

export function createRequestHandler(routes: Routes, doors: Doors) {
  const route = (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const closed = path.startsWith('/api/')
      ? doors === 'admin'
      : operatorsOnly(path) && doors === 'public';
    if (closed) {
      sendError(response, 'notFound');
      return Promise.resolve();
    }
    // /api checks its own paths, so that its CORS headers go on that answer too.
    if (path.startsWith('/api/')) return routes.api.handle(request, response, path);
    if (decodePath(path) === undefined) {
      sendError(response, 'invalidPath');
      return Promise.resolve();
    }
    if (under(path, '/admin')) return routes.admin.handle(request, response, path);
    if (request.method === 'GET' || request.method === 'HEAD') {
      if (path === '/healthz') return healthz(response);
      if (path === '/readyz') return readyz(response, routes.readiness);
      if (path === '/metrics') return metrics(response, routes.registry);
      if (path.startsWith('/sdk/')) {
        routes.sdk.serve(request, response, path.slice('/sdk/'.length));
        return Promise.resolve();
      }
      if (under(path, '/dashboard')) {
        routes.dashboard.serve(request, response, path);
        return Promise.resolve();
      }
    }
    sendError(response, 'notFound');
    return Promise.resolve();
  };
  return (request: IncomingMessage, response: ServerResponse): void => {
    route(request, response).catch((error: unknown) => {
      routes.logger.error(
        { err: error, method: request.method, url: redactUrl(request.url ?? '') },
        'request failed',
      );
      if (!response.headersSent) sendError(response, 'internal');
      else response.destroy();
    });
  };
}
