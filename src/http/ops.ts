/** `/healthz`, `/readyz`, `/metrics`: for load balancers and Prometheus. */
import type { ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { sendJson } from './io.js';

export interface Readiness {
  /** Resolves when the store answers. */
  store(): Promise<void>;
  bus(): boolean;
  shuttingDown(): boolean;
}

const READY_TIMEOUT_MS = 2000;

export async function healthz(response: ServerResponse): Promise<void> {
  sendJson(response, 200, { status: 'ok' });
}

export async function readyz(response: ServerResponse, readiness: Readiness): Promise<void> {
  const checks = { store: false, bus: readiness.bus(), shuttingDown: readiness.shuttingDown() };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      readiness.store(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS);
      }),
    ]);
    checks.store = true;
  } catch {
    checks.store = false;
  } finally {
    clearTimeout(timer);
  }
  const ready = checks.store && checks.bus && !checks.shuttingDown;
  sendJson(response, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', ...checks });
}

export async function metrics(response: ServerResponse, registry: Registry): Promise<void> {
  const text = await registry.metrics();
  response.writeHead(200, { 'content-type': registry.contentType });
  response.end(text);
}
