/**
 * Files shipped in the package and served as they are (the SDK's browser build, the dashboard):
 * read once from their folder, kept in memory, answered with an ETag so that a browser revalidates
 * cheaply. Only the listed extensions are served, and only files under the folder.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Headers, sendError } from './io.js';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
};

interface StaticFile {
  body: Buffer;
  etag: string;
  contentType: string;
}

export class StaticFiles {
  readonly #files = new Map<string, StaticFile>();
  readonly #headers: Headers;

  /**
   * @param folder where the files are (absent: nothing is served, every path is 404)
   * @param headers added to every answer (CORS for the SDK, a content security policy for pages)
   */
  constructor(folder: string | undefined, headers: Headers = {}) {
    this.#headers = headers;
    if (folder !== undefined) this.#load(folder, folder);
  }

  /** Whether a file is there for this path (relative, with `/`). */
  has(path: string): boolean {
    return this.#files.has(path);
  }

  /** Answers GET/HEAD for `path` (relative to the folder, with `/`), 404 when it is not a file. */
  serve(request: IncomingMessage, response: ServerResponse, path: string): void {
    const file = this.#files.get(path);
    if (file === undefined) {
      sendError(response, 'notFound');
      return;
    }
    const headers = {
      ...this.#headers,
      'content-type': file.contentType,
      etag: file.etag,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    };
    if (request.headers['if-none-match'] === file.etag) {
      response.writeHead(304, headers);
      response.end();
      return;
    }
    response.writeHead(200, { ...headers, 'content-length': file.body.length });
    response.end(request.method === 'HEAD' ? undefined : file.body);
  }

  #load(root: string, folder: string): void {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) {
        this.#load(root, path);
        continue;
      }
      const contentType = CONTENT_TYPES[extname(name)];
      if (contentType === undefined) continue;
      const body = readFileSync(path);
      const etag = `"${createHash('sha1').update(body).digest('base64url')}"`;
      this.#files.set(relative(root, path).split(sep).join('/'), { body, etag, contentType });
    }
  }
}

/** The folder of a package's entry file (the SDK's build), or undefined when it is not installed. */
export function folderOf(specifier: string): string | undefined {
  try {
    return dirname(fileURLToPath(import.meta.resolve(specifier)));
  } catch {
    return undefined;
  }
}
