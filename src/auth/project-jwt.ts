/**
 * Verifies a user's JWT against its project's secret: HS256, HS384 or HS512 only (so `alg: none`
 * and every asymmetric algorithm are refused), `sub` a non-empty string, `exp`/`nbf` with a small
 * tolerance for clock skew. fast-jwt verifies synchronously with node:crypto, which costs a few
 * microseconds where a WebCrypto-based verifier costs a hundred: every connection checks a token.
 */
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import type { ErrorCode } from '../errors.js';

export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const CLOCK_TOLERANCE_MS = 5_000;

export type TokenCheck =
  | { ok: true; sub: string; expiresAtMs: number | undefined; issuedAtS: number | undefined }
  | { ok: false; error: Extract<ErrorCode, 'invalidToken' | 'tokenExpired'> };

/** Checks tokens of one project; build one per secret and keep it. */
export type ProjectVerifier = (token: string) => TokenCheck;

export function projectVerifier(secret: string): ProjectVerifier {
  const verify = createVerifier({
    key: secret,
    algorithms: [...JWT_ALGORITHMS],
    clockTolerance: CLOCK_TOLERANCE_MS,
    cache: false,
  });
  return (token) => {
    if (token === '') return { ok: false, error: 'invalidToken' };
    let payload: { sub?: unknown; exp?: unknown; iat?: unknown };
    try {
      payload = verify(token) as { sub?: unknown; exp?: unknown; iat?: unknown };
    } catch (error) {
      const expired = error instanceof TokenError && error.code === TokenError.codes.expired;
      return { ok: false, error: expired ? 'tokenExpired' : 'invalidToken' };
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      return { ok: false, error: 'invalidToken' };
    }
    return {
      ok: true,
      sub: payload.sub,
      expiresAtMs: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
      // For revocations: a token without a numeric iat counts as issued before any of them.
      issuedAtS: typeof payload.iat === 'number' ? payload.iat : undefined,
    };
  };
}

/**
 * Signs a token for a project's user, as the CLI and the demo banner hand out, with `iat` and any
 * other `claims` (which must not hold `sub`, `exp`, `iat` or `nbf`).
 */
export function signProjectToken(
  secret: string,
  sub: string,
  ttl: string | number,
  claims: Record<string, unknown> = {},
): string {
  const sign = createSigner({
    key: secret,
    algorithm: 'HS256',
    sub,
    expiresIn: typeof ttl === 'number' ? ttl * 1000 : ttl,
  });
  return sign({ ...claims });
}

/**
 * A token for `POST /admin/projects/:hash/tokens`: HS256, `iat` the current second, `exp` that plus
 * `ttlSeconds`, beside `claims` (which must not hold `sub`, `exp`, `iat` or `nbf`).
 */
export function mintProjectToken(
  secret: string,
  sub: string,
  ttlSeconds: number,
  claims: Readonly<Record<string, unknown>>,
  nowMs = Date.now(),
): { jwt: string; exp: number } {
  const iat = Math.floor(nowMs / 1000);
  const exp = iat + ttlSeconds;
  const sign = createSigner({ key: secret, algorithm: 'HS256' });
  return { jwt: sign({ ...claims, sub, iat, exp }), exp };
}
