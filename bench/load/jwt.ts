/** HS256 JWTs signed by the load generator: one distinct token per connection. */
import { createHmac, randomBytes, randomInt } from 'node:crypto';

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/**
 * Every token expires, between 30 and 60 minutes from now (longer than any scenario runs): an
 * open socket then holds a deadline in the server's expiry wheel, spread over some 1800 seconds as
 * real clients' are, so that the idle figure counts what expiry costs a connection.
 */
function spreadTtl(): number {
  return 1800 + randomInt(1800);
}

export function signHs256(secret: string, sub: string, ttlSeconds = spreadTtl()): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub, iat: now, exp: now + ttlSeconds, jti: randomBytes(8).toString('hex') };
  const body = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${signature}`;
}
