import { SocketBaseError } from './errors.js';

/** A token, or a function the SDK calls for one: at the start, before it expires, after 4001/4002. */
export type TokenSource = string | (() => string | Promise<string>);

/** Reads `exp` (seconds since the epoch) from a JWT without checking it: the server checks it. */
export function expiryOf(jwt: string): number | undefined {
  const part = jwt.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const claims: unknown = JSON.parse(decodeBase64(base64));
    if (typeof claims !== 'object' || claims === null) return undefined;
    const exp = (claims as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Base64 to a UTF-8 string (atob is Latin-1 only and not typed without the DOM). */
function decodeBase64(text: string): string {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text) {
    const digit = BASE64.indexOf(char);
    if (digit === -1) continue;
    value = (value << 6) | digit;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 0xff);
    }
  }
  return decodeURIComponent(bytes.map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join(''));
}

/** Holds the current token and asks the source for a new one when told to. */
export class Tokens {
  readonly #source: TokenSource;
  #current: string | undefined;

  constructor(source: TokenSource) {
    this.#source = source;
    if (typeof source === 'string') this.#current = source;
  }

  /** The token held now, if any. */
  get held(): string | undefined {
    return this.#current;
  }

  /** Whether a new token can be had at all: a fixed string cannot be replaced. */
  get renewable(): boolean {
    return typeof this.#source === 'function';
  }

  /** The token to use now; asks the source when there is none yet or the one held has expired. */
  async current(nowMs: number): Promise<string> {
    const held = this.#current;
    if (held !== undefined) {
      const exp = expiryOf(held);
      if (exp === undefined || exp * 1000 > nowMs || !this.renewable) return held;
    }
    const token = await this.renew();
    this.#current = token;
    return token;
  }

  /** A new token from the source (a fixed string is returned as it is); `set` adopts it. */
  async renew(): Promise<string> {
    const source = this.#source;
    if (typeof source === 'string') return source;
    let token: unknown;
    try {
      token = await source();
    } catch (error) {
      throw Object.assign(SocketBaseError.client('tokenFailed'), { cause: error });
    }
    if (typeof token !== 'string' || token === '') throw SocketBaseError.client('tokenFailed');
    return token;
  }

  /** Adopts a token: the one the next connect uses. */
  set(token: string): void {
    this.#current = token;
  }

  /** Forgets the held token, so that the next `current` asks the source. */
  drop(): void {
    if (this.renewable) this.#current = undefined;
  }
}
