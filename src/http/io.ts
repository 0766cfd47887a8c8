/** Reading bodies with a size limit, decoding paths, and writing JSON answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERRORS, type ErrorCode, errorBody } from '../errors.js';

export type Headers = Record<string, string | number>;

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Headers = {},
): void {
  sendText(response, status, JSON.stringify(body), headers);
}

function sendText(response: ServerResponse, status: number, text: string, headers: Headers): void {
  response.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

/** The error body of every HTTP answer: `{"success":false,"error":MESSAGE}`. */
export function sendError(response: ServerResponse, code: ErrorCode, headers: Headers = {}): void {
  sendText(response, ERRORS[code].status, errorBody(code), headers);
}

/**
 * A path, or one segment of it, with its % escapes decoded; undefined when an escape is malformed,
 * which the caller answers with 400 `Invalid path`.
 */
export function decodePath(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

export class BodyTooLarge extends Error {}

/**
 * Reads the whole body as UTF-8 text, whatever the content type. Rejects with BodyTooLarge as soon
 * as it passes `maxBytes` (from Content-Length or while streaming), without buffering the rest.
 */
export function readBody(request: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(request.headers['content-length'] ?? Number.NaN);
  if (declared > maxBytes) {
    request.resume();
    return Promise.reject(new BodyTooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        request.removeAllListeners('data');
        request.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (size <= maxBytes) resolve(Buffer.concat(chunks, size).toString('utf8'));
    });
    request.on('error', reject);
  });
}
