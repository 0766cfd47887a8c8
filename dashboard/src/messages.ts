import { AdminError } from './admin-api.js';

/**
 * The dashboard's own strings (the server's are in src/errors.ts and shown as the server sent
 * them). docs/errors.md lists these too.
 */
export const MESSAGES = {
  wrongToken: 'Wrong admin token',
  notInteger: 'must be a positive whole number, or empty for none',
  nameMismatch: 'Type the project name exactly to delete it',
  confirmRotate:
    'Rotate the secret? Tokens signed with the old one stop working for new connections.',
  unreachable: 'The server did not answer',
  userRequired: 'User required: name one, or choose every connection of the project',
  confirmDisconnectAll:
    'Disconnect every connection of the project? Every client of it is closed and reconnects.',
} as const;

/** An error as the operator reads it: the server's own text, or why there was none. */
export function describeError(error: unknown): string {
  if (error instanceof AdminError) return error.message;
  return MESSAGES.unreachable;
}
