/**
 * Every close code the server sends, and whether a client should reconnect after it. The 4xxx codes
 * for auth and tenancy end for good; 1001, 1013, 4009 and 4029 invite a reconnect (4029 after a
 * back-off: a project's connection limit frees up as its connections close). `docs/errors.md`
 * explains each, checked by a test.
 */
export const CLOSE_CODES = {
  goingAway: { code: 1001, reason: 'Server shutting down', reconnect: true },
  protocolError: { code: 1002, reason: 'Protocol error', reconnect: false },
  invalidPayload: { code: 1007, reason: 'Invalid UTF-8', reconnect: false },
  policyViolation: { code: 1008, reason: 'Too many frames before admission', reconnect: false },
  frameTooLarge: { code: 1009, reason: 'Frame too large', reconnect: false },
  internalError: { code: 1011, reason: 'Internal error', reconnect: true },
  tryAgainLater: { code: 1013, reason: 'Store unavailable', reconnect: true },
  invalidToken: { code: 4001, reason: 'Invalid token', reconnect: false },
  tokenExpired: { code: 4002, reason: 'Token expired', reconnect: false },
  /** An admin closed the user's (or the project's) connections: a reconnect would defeat it. */
  disconnected: { code: 4003, reason: 'Disconnected', reconnect: false },
  unknownProject: { code: 4004, reason: 'Unknown project', reconnect: false },
  slowConsumer: { code: 4009, reason: 'Slow consumer', reconnect: true },
  tooManyConnections: { code: 4029, reason: 'Too many connections', reconnect: true },
} as const satisfies Record<string, CloseSpec>;

export interface CloseSpec {
  code: number;
  reason: string;
  reconnect: boolean;
}

/**
 * Every user-facing string, with the HTTP status it answers with and, for connection failures,
 * the WebSocket close code. `docs/errors.md` is kept in step with this table by a test.
 */

export const ERRORS = {
  invalidJson: { message: 'Invalid JSON', status: 400 },
  invalidRef: { message: 'Invalid ref', status: 400 },
  unknownType: { message: 'Unknown message type', status: 400 },
  roomRequired: { message: 'Room required', status: 400 },
  payloadRequired: { message: 'Payload required', status: 400 },
  roomNotString: { message: 'Room must be a string', status: 400 },
  payloadNotString: { message: 'Payload must be a string', status: 400 },
  invalidSince: { message: 'Invalid since', status: 400 },
  invalidIdempotencyKey: { message: 'Invalid idempotency key', status: 400 },
  invalidPresence: { message: 'Invalid presence', status: 400 },
  roomTooLong: { message: 'Room name too long', status: 400 },
  tooManyRooms: { message: 'Too many rooms', status: 400 },
  notMember: { message: 'You must join the room first', status: 403 },
  notAllowed: { message: 'Not allowed', status: 403 },
  notStored: { message: 'Message could not be stored', status: 503 },
  notDelivered: { message: 'Message could not be delivered', status: 503 },
  storeUnavailable: {
    message: 'Store unavailable',
    status: 503,
    close: CLOSE_CODES.tryAgainLater.code,
  },
  rateLimited: { message: 'Rate limit exceeded', status: 429 },
  hashRequired: { message: 'Project hash required', status: 400 },
  unknownProject: {
    message: 'Unknown project',
    status: 404,
    close: CLOSE_CODES.unknownProject.code,
  },
  invalidToken: { message: 'Invalid token', status: 401, close: CLOSE_CODES.invalidToken.code },
  tokenExpired: { message: 'Token expired', status: 401, close: CLOSE_CODES.tokenExpired.code },
  payloadTooLarge: { message: 'Payload too large', status: 413 },
  unknownMessageId: { message: 'Unknown message id', status: 400 },
  invalidLimit: { message: 'Limit must be a positive integer', status: 400 },
  notFound: { message: 'Not found', status: 404 },
  methodNotAllowed: { message: 'Method not allowed', status: 405 },
  unauthorized: { message: 'Unauthorized', status: 401 },
  nameRequired: { message: 'Name required', status: 400 },
  nameTooLong: { message: 'Name too long', status: 400 },
  invalidSettings: { message: 'Invalid settings', status: 400 },
  subRequired: { message: 'Sub required', status: 400 },
  invalidTtl: { message: 'Invalid ttlSeconds', status: 400 },
  invalidClaims: { message: 'Invalid claims', status: 400 },
  userRequired: { message: 'User required', status: 400 },
  invalidRevoke: { message: 'Invalid revoke', status: 400 },
  /**
   * Only ever a WebSocket error frame before close 4003; the status is there because every entry
   * has one, and no HTTP route answers it.
   */
  disconnected: { message: 'Disconnected', status: 403, close: CLOSE_CODES.disconnected.code },
  shuttingDown: { message: 'Server is shutting down', status: 503 },
  serverAtCapacity: { message: 'Server at capacity', status: 503 },
  tooManyConnections: {
    message: 'Too many connections',
    status: 429,
    close: CLOSE_CODES.tooManyConnections.code,
  },
  invalidPath: { message: 'Invalid path', status: 400 },
  internal: { message: 'Internal error', status: 500 },
} as const satisfies Record<string, ErrorSpec>;

export interface ErrorSpec {
  message: string;
  status: number;
  close?: number;
}

export type ErrorCode = keyof typeof ERRORS;

/** The body of every HTTP error answer, the WebSocket handshake's included. */
export function errorBody(code: ErrorCode): string {
  return JSON.stringify({ success: false, error: ERRORS[code].message });
}

/** An expected failure that reaches the user as one catalogued message. */
export class UserError extends Error {
  readonly spec: ErrorSpec;
  constructor(readonly code: ErrorCode) {
    super(ERRORS[code].message);
    this.spec = ERRORS[code];
  }
}
