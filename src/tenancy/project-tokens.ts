/**
 * The bodies of `POST /admin/projects/:hash/tokens` and `POST /admin/projects/:hash/disconnect`,
 * checked once at the edge into typed requests, or the one error that refuses them.
 */
import { RoomPermissions } from '../auth/room-permissions.js';
import type { ErrorCode } from '../errors.js';

/** A token's lifetime when the request names none: one hour. */
export const DEFAULT_TOKEN_TTL_S = 3600;

/** Claims the server sets itself: a request may not choose them. */
const RESERVED_CLAIMS = ['sub', 'exp', 'iat', 'nbf'] as const;

export interface TokenRequest {
  sub: string;
  ttlSeconds: number;
  claims: Record<string, unknown>;
}

export interface DisconnectRequest {
  /** undefined: every user of the project (`"all":true`). */
  user: string | undefined;
  revoke: boolean;
}

type Parsed<T> = T | { error: ErrorCode };

/**
 * `{"sub","ttlSeconds"?,"claims"?}`, checked in that order; unknown keys are ignored, and `null`
 * stands for an absent `ttlSeconds` or `claims`. `nowS` bounds the lifetime, so that `exp` stays a
 * safe integer.
 */
export function parseTokenRequest(
  body: Record<string, unknown>,
  nowS: number,
): Parsed<TokenRequest> {
  const { sub, ttlSeconds = null, claims = null } = body;
  if (typeof sub !== 'string' || sub === '') return { error: 'subRequired' };
  const ttl = ttlSeconds ?? DEFAULT_TOKEN_TTL_S;
  if (!isPositiveInteger(ttl) || !Number.isSafeInteger(nowS + ttl)) return { error: 'invalidTtl' };
  const checked = checkClaims(claims ?? {});
  if (checked === undefined) return { error: 'invalidClaims' };
  return { sub, ttlSeconds: ttl, claims: checked };
}

/**
 * `{"user":S}` or `{"all":true}` (exactly one of them), each with an optional `"revoke"` (a
 * boolean; `null` is absent).
 */
export function parseDisconnectRequest(body: Record<string, unknown>): Parsed<DisconnectRequest> {
  const { user = null, all = null, revoke = null } = body;
  const named = typeof user === 'string' && user !== '';
  // Both would be ambiguous (one user, or everyone?): the caller is asked to say which.
  if (named === (all === true) || (user !== null && !named)) return { error: 'userRequired' };
  if (revoke !== null && typeof revoke !== 'boolean') return { error: 'invalidRevoke' };
  return { user: named ? user : undefined, revoke: revoke === true };
}

const PERMISSION_CLAIMS = ['rooms', 'publish', 'broadcast'] as const;

/**
 * The claims as given when they may go into a token: a JSON object without the reserved claims,
 * and the permission claims (Room permissions in the contract) of the shape a connection accepts,
 * so that no token is minted that every connection would refuse. Undefined otherwise.
 */
function checkClaims(claims: unknown): Record<string, unknown> | undefined {
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
  const record = claims as Record<string, unknown>;
  if (RESERVED_CLAIMS.some((name) => Object.hasOwn(record, name))) return undefined;
  // The connection's own parser judges their shape; a minted token states them or leaves them
  // out (a connection reads null as absent, which a token made here never needs to say).
  if (PERMISSION_CLAIMS.some((name) => record[name] === null)) return undefined;
  if (RoomPermissions.fromClaims(record) === undefined) return undefined;
  return record;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}
