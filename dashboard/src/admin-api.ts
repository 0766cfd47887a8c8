import type { WireMessage } from '@socket-base/client';

/** The admin API as the dashboard calls it: same origin, the admin token as a bearer token. */

export interface Project {
  hash: string;
  name: string;
  createdAt: string;
}

export interface Settings {
  retention: { maxAgeSeconds: number | null; maxMessagesPerRoom: number | null };
  limits: {
    maxConnections: number | null;
    maxConnectionsPerUser: number | null;
    maxMessagesPerSecond: number | null;
  };
}

export interface ProjectDetail extends Project {
  settings: Settings;
  effective: Settings;
}

export interface Stats {
  connections: number;
  users: number;
  rooms: number;
  messagesPerSecond: number;
  storedMessages: number;
}

export interface ServerStats extends Stats {
  projects: number;
  instances: number;
}

export interface RoomSummary {
  room: string;
  lastSeq: number;
  lastTs: number | null;
  present: number;
}

/** The wire's message, as the SDK's types carry it (type-only: nothing of the SDK is bundled here). */
export type StoredMessage = WireMessage;

/** A refusal from the server: its status and its error text, shown as they are. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class AdminApi {
  /**
   * @param onUnauthorized called once, on the first 401: the token this tab kept no longer opens
   * the admin API (the server's ADMIN_TOKEN changed, or the kept one was altered).
   */
  constructor(
    readonly token: string,
    readonly onUnauthorized?: () => void,
  ) {}

  #refused = false;

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const parsed: unknown = text === '' ? undefined : JSON.parse(text);
    if (response.status === 401 && this.onUnauthorized !== undefined && !this.#refused) {
      this.#refused = true;
      this.onUnauthorized();
    }
    if (!response.ok) throw new AdminError(response.status, errorText(parsed, response.status));
    return parsed as T;
  }

  projects(): Promise<{ projects: Project[] }> {
    return this.request('GET', '/admin/projects');
  }

  project(hash: string): Promise<ProjectDetail> {
    return this.request('GET', `/admin/projects/${encodeURIComponent(hash)}`);
  }

  stats(hash: string): Promise<Stats> {
    return this.request('GET', `/admin/projects/${encodeURIComponent(hash)}/stats`);
  }

  serverStats(): Promise<ServerStats> {
    return this.request('GET', '/admin/stats');
  }

  rooms(hash: string, after?: string): Promise<{ rooms: RoomSummary[] }> {
    const query = new URLSearchParams({ limit: String(ROOMS_PAGE) });
    if (after !== undefined) query.set('after', after);
    return this.request('GET', `/admin/projects/${encodeURIComponent(hash)}/rooms?${query}`);
  }

  history(hash: string, room: string, before?: string): Promise<{ messages: StoredMessage[] }> {
    const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
    if (before !== undefined) query.set('before', before);
    const path = `/admin/projects/${encodeURIComponent(hash)}/rooms/${encodeURIComponent(room)}`;
    return this.request('GET', `${path}/messages?${query}`);
  }
}

export const ROOMS_PAGE = 50;
export const HISTORY_PAGE = 50;

function errorText(body: unknown, status: number): string {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const { error } = body as { error: unknown };
    if (typeof error === 'string') return error;
  }
  return `HTTP ${status}`;
}
