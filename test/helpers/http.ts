/**
 * Raw HTTP requests for tests that need what `fetch` hides or normalises: an `Origin` header, a
 * chunked body sent in pieces, no `Content-Type` at all, every response header as sent.
 */
import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON (throws when it is not JSON). */
  json(): unknown;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string>;
  /** A string is sent with a Content-Length; an array is sent as chunks, chunked-encoded. */
  body?: string | Buffer | (string | Buffer)[];
}

export function rawRequest(url: string, options: RawRequest = {}): Promise<RawResponse> {
  const { method = 'GET', headers = {}, body } = options;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: () => JSON.parse(text) as unknown,
        });
      });
      res.on('error', reject);
    });
    // The server may answer (413) and stop reading before the whole body is written.
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const chunk of body) req.write(chunk);
      req.end();
    } else if (body !== undefined) {
      req.setHeader('content-length', Buffer.byteLength(body));
      req.end(body);
    } else {
      req.end();
    }
  });
}

/** A header's value as one lower-case string ('' when absent). */
export function headerText(response: RawResponse, name: string): string {
  const value = response.headers[name.toLowerCase()];
  return (Array.isArray(value) ? value.join(', ') : (value ?? '')).toLowerCase();
}
