import { SocketBaseError } from './errors.js';
import type { ErrorResponse } from './generated/wire.js';
import { type FetchFunction, host } from './host.js';

/** Calls the server's `/api` with the project's hash and the current token. */
export class Api {
  readonly #base: () => string;
  readonly #hash: string;
  readonly #token: () => Promise<string>;
  readonly #fetch: FetchFunction | undefined;

  constructor(options: {
    base: () => string;
    hash: string;
    token: () => Promise<string>;
    fetch?: FetchFunction;
  }) {
    this.#base = options.base;
    this.#hash = options.hash;
    this.#token = options.token;
    this.#fetch = options.fetch ?? host.fetch?.bind(globalThis);
  }

  async get<T>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    const search = Object.entries(query)
      .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
      .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
      .join('&');
    return this.#call<T>('GET', search === '' ? path : `${path}?${search}`);
  }

  async post<T>(path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.#call<T>('POST', path, JSON.stringify(body), headers);
  }

  async #call<T>(
    method: string,
    path: string,
    body?: string,
    extra: Record<string, string> = {},
  ): Promise<T> {
    const fetch = this.#fetch;
    if (fetch === undefined) throw SocketBaseError.client('noFetch');
    const headers: Record<string, string> = {
      'x-hash': this.#hash,
      authorization: `Bearer ${await this.#token()}`,
      ...extra,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const init = body === undefined ? { method, headers } : { method, headers, body };
    const response = await fetch(`${this.#base()}/api${path}`, init);
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SocketBaseError(
        `${SocketBaseError.client('unexpectedAnswer').message} (${response.status})`,
        'unexpectedAnswer',
        { status: response.status },
      );
    }
    if (!response.ok) {
      const error = (parsed as Partial<ErrorResponse> | null)?.error;
      throw typeof error === 'string'
        ? SocketBaseError.fromServer(error, { status: response.status })
        : new SocketBaseError(`HTTP ${response.status}`, 'unexpectedAnswer', {
            status: response.status,
          });
    }
    return parsed as T;
  }
}
