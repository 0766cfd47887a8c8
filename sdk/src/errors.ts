import { CLOSE_CODES, ERRORS } from './generated/catalogue.js';

/**
 * The SDK's own refusals, made before anything reaches the server. Together with the server's
 * catalogue (carried over from its sources) these are every `message` a SocketBaseError can have.
 */
export const CLIENT_ERRORS = {
  clientClosed: 'Client closed',
  tooManyPending: 'Too many pending sends',
  frameTooLarge: 'Frame too large',
  notJoined: 'Join the room first',
  connectionLost: 'Connection lost before the answer came',
  noWebSocket: 'No WebSocket: pass the WebSocket option',
  noFetch: 'No fetch: this runtime has no fetch',
  tokenFailed: 'The token function failed',
  connectionFailed: 'Connection failed',
  unexpectedAnswer: 'Unexpected answer from the server',
} as const;

export type ClientErrorCode = keyof typeof CLIENT_ERRORS;
/** The server's catalogue keys (`notAllowed`, `rateLimited`, …) and the SDK's own. */
export type SocketBaseErrorCode = keyof typeof ERRORS | ClientErrorCode | 'unknown';

const byMessage = new Map<string, keyof typeof ERRORS>();
for (const [code, spec] of Object.entries(ERRORS)) {
  byMessage.set(spec.message, code as keyof typeof ERRORS);
}

export class SocketBaseError extends Error {
  override readonly name = 'SocketBaseError';
  /** A stable name for the error: switch on this, not on `message`. */
  readonly code: SocketBaseErrorCode;
  /** The HTTP status, when an HTTP call failed. */
  readonly status: number | undefined;
  /** The WebSocket close code, when the connection was closed for this error. */
  readonly closeCode: number | undefined;

  constructor(
    message: string,
    code: SocketBaseErrorCode,
    details: { status?: number; closeCode?: number } = {},
  ) {
    super(message);
    this.code = code;
    this.status = details.status;
    this.closeCode = details.closeCode;
  }

  /** An error the server sent, by its exact message. */
  static fromServer(
    message: string,
    details: { status?: number; closeCode?: number } = {},
  ): SocketBaseError {
    return new SocketBaseError(message, byMessage.get(message) ?? 'unknown', details);
  }

  static client(code: ClientErrorCode, details: { closeCode?: number } = {}): SocketBaseError {
    return new SocketBaseError(CLIENT_ERRORS[code], code, details);
  }

  /** A connection closed by the server with a code and no error frame before it. */
  static fromClose(code: number, reason: string): SocketBaseError {
    for (const spec of Object.values(CLOSE_CODES)) {
      if (spec.code === code) return SocketBaseError.fromServer(spec.reason, { closeCode: code });
    }
    return new SocketBaseError(reason || CLIENT_ERRORS.connectionFailed, 'connectionFailed', {
      closeCode: code,
    });
  }
}

/** Close codes after which reconnecting would defeat what the server meant. */
export const TERMINAL_CLOSES: ReadonlySet<number> = new Set([
  CLOSE_CODES.disconnected.code,
  CLOSE_CODES.unknownProject.code,
]);

/** Close codes after which a new token may help: asked for once, then the client gives up. */
export const TOKEN_CLOSES: ReadonlySet<number> = new Set([
  CLOSE_CODES.invalidToken.code,
  CLOSE_CODES.tokenExpired.code,
]);
