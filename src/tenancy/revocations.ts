/**
 * A project's token revocations as Projects caches them: the check of a token against them, and
 * how an announced revocation is merged into the cached ones (as the store merges it).
 */
import type { Revocations } from '../domain.js';

/**
 * Whether a token of `sub` issued at `issuedAtS` (its `iat`) is revoked: issued before the user's
 * or the project's not-before, or without `iat`. `iat` counts whole seconds and a not-before is
 * the second its revocation was made in, so a token of that same second is not revoked: a token
 * minted right after the revocation must work, and the two cannot be told apart.
 */
export function isRevoked(
  revocations: Revocations | undefined,
  sub: string,
  issuedAtS: number | undefined,
): boolean {
  if (revocations === undefined) return false;
  const notBefore = Math.max(
    revocations.all ?? Number.NEGATIVE_INFINITY,
    revocations.users.get(sub) ?? Number.NEGATIVE_INFINITY,
  );
  if (notBefore === Number.NEGATIVE_INFINITY) return false;
  return issuedAtS === undefined || issuedAtS < notBefore;
}

/**
 * `revocations` with one more, merged as the store merges it: a not-before only moves forward, and
 * the project's drops the users' it covers.
 */
export function withRevocation(
  revocations: Revocations | undefined,
  user: string | null,
  notBefore: number,
): Revocations {
  const all = revocations?.all ?? null;
  const users = new Map(revocations?.users);
  if (user === null) {
    const next = Math.max(all ?? notBefore, notBefore);
    for (const [sub, at] of users) if (at <= next) users.delete(sub);
    return { all: next, users };
  }
  if (all === null || all < notBefore) {
    users.set(user, Math.max(users.get(user) ?? notBefore, notBefore));
  }
  return { all, users };
}

/** Whether two reads of a project's revocations hold the same. */
export function sameRevocations(a: Revocations | undefined, b: Revocations | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.all !== b.all || a.users.size !== b.users.size) return false;
  for (const [sub, at] of a.users) if (b.users.get(sub) !== at) return false;
  return true;
}
