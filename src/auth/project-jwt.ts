/**
 * Verifies a user's JWT against its project's secret: HS256, HS384 or HS512 only (so `alg: none`
 * and every asymmetric algorithm are refused), `sub` a non-empty string, `exp`/`nbf` with the
 * configured tolerance for clock skew, and the room claims compiled (a claim of the wrong shape
 * makes the token invalid). fast-jwt verifies synchronously with node:crypto, which costs a few
 * microseconds where a WebCrypto-based verifier costs a hundred: every connection checks a token.
 */
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import type { ErrorCode } from '../errors.js';
import { RoomPermissions } from './room-permissions.js';

export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;

/** How tokens are judged beyond their signature: `JWT_CLOCK_TOLERANCE_S` and `REQUIRE_EXP`. */
export interface TokenRules {
  clockToleranceMs: number;
  /** A token without `exp` is invalid. */
  requireExp: boolean;
}

export const DEFAULT_TOKEN_RULES: TokenRules = { clockToleranceMs: 5_000, requireExp: false };

/** A verified token: its user, when it expires (without the tolerance), what it may do. */
export interface VerifiedToken {
  sub: string;
  expiresAtMs: number | undefined;
  /** For revocations: a token without a numeric `iat` counts as issued before any of them. */
  issuedAtS: number | undefined;
  permissions: RoomPermissions;
}

export type TokenCheck =
  | ({ ok: true } & VerifiedToken)
  | { ok: false; error: Extract<ErrorCode, 'invalidToken' | 'tokenExpired'> };

/** Checks tokens of one project; build one per secret and keep it. */
export type ProjectVerifier = (token: string) => TokenCheck;

interface Payload {
  sub?: unknown;
  exp?: unknown;
  iat?: unknown;
  rooms?: unknown;
  publish?: unknown;
  broadcast?: unknown;
}

export function projectVerifier(
  secret: string,
  rules: TokenRules = DEFAULT_TOKEN_RULES,
): ProjectVerifier {
  const verify = createVerifier({
    key: secret,
    algorithms: [...JWT_ALGORITHMS],
    clockTolerance: rules.clockToleranceMs,
    cache: false,
  });
  return (token) => {
    if (token === '') return { ok: false, error: 'invalidToken' };
    let payload: Payload;
    try {
      payload = verify(token) as Payload;
    } catch (error) {
      const expired = error instanceof TokenError && error.code === TokenError.codes.expired;
      return { ok: false, error: expired ? 'tokenExpired' : 'invalidToken' };
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      return { ok: false, error: 'invalidToken' };
    }
    // fast-jwt has refused an `exp` that is not a number already.
    const exp = typeof payload.exp === 'number' ? payload.exp : undefined;
    if (exp === undefined && rules.requireExp) return { ok: false, error: 'invalidToken' };
    const permissions = RoomPermissions.fromClaims(payload);
    if (permissions === undefined) return { ok: false, error: 'invalidToken' };
    return {
      ok: true,
      sub: payload.sub,
      expiresAtMs: exp === undefined ? undefined : exp * 1000,
      issuedAtS: typeof payload.iat === 'number' ? payload.iat : undefined,
      permissions,
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
