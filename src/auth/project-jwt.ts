/**
 * Verifies a user's JWT against its project's secret: HS256, HS384 or HS512 only (so `alg: none`
 * and every asymmetric algorithm are refused), `sub` a non-empty string, `exp`/`nbf` with a small
 * tolerance for clock skew.
 */
import { errors, jwtVerify, SignJWT } from 'jose';
import type { ErrorCode } from '../errors.js';

export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
export const CLOCK_TOLERANCE_SECONDS = 5;

export type TokenCheck =
  | { ok: true; sub: string; expiresAtMs: number | undefined }
  | { ok: false; error: ErrorCode };

const encoder = new TextEncoder();

export function secretKey(secret: string): Uint8Array {
  return encoder.encode(secret);
}

export async function verifyProjectToken(token: string, key: Uint8Array): Promise<TokenCheck> {
  if (token === '') return { ok: false, error: 'invalidToken' };
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: JWT_ALGORITHMS,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    });
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      return { ok: false, error: 'invalidToken' };
    }
    return {
      ok: true,
      sub: payload.sub,
      expiresAtMs: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
    };
  } catch (error) {
    if (error instanceof errors.JWTExpired) return { ok: false, error: 'tokenExpired' };
    return { ok: false, error: 'invalidToken' };
  }
}

/** Signs a token for a project's user, as the CLI and the demo banner hand out. */
export async function signProjectToken(
  secret: string,
  sub: string,
  ttl: string | number,
): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + ttl : ttl)
    .sign(secretKey(secret));
}
