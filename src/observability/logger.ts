import { pino } from 'pino';

export type Logger = pino.Logger;

/** The `jwt` query parameter of a URL, replaced so that no log line carries a token. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]jwt=)[^&#]*/gi, '$1[redacted]');
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'socket-base' },
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        'authorization',
        'jwt',
        'token',
        'jwtSecret',
        'adminToken',
      ],
      censor: '[redacted]',
    },
  });
}
