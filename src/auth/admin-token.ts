import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function generateAdminToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Checks an `Authorization: Bearer …` header against the admin token in constant time: both sides
 * are hashed first, so neither the content nor the length of the token leaks through timing.
 */
export function isAdmin(header: string | undefined, adminToken: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  const given = createHash('sha256').update(header.slice(7)).digest();
  const expected = createHash('sha256').update(adminToken).digest();
  return timingSafeEqual(given, expected);
}
