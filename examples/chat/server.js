// The chat example's backend: what your own server does for socket-base. It keeps the project's
// secret (the browser never sees it), signs a short-lived token for each user, and serves the page.
// Plain Node (node:http, node:crypto): copy it into any stack.
//
//   PROJECT_HASH=… PROJECT_SECRET=… node examples/chat/server.js
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';

const SOCKET_BASE_URL = process.env.SOCKET_BASE_URL ?? 'http://127.0.0.1:8080';
const PROJECT_HASH = process.env.PROJECT_HASH;
const PROJECT_SECRET = process.env.PROJECT_SECRET;
const PORT = Number(process.env.PORT ?? 3000);
const TOKEN_TTL_SECONDS = 10 * 60;
const PUBLIC_DIR = join(import.meta.dirname, 'public');
const PAGES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/chat.js': ['chat.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

if (!PROJECT_HASH || !PROJECT_SECRET) {
  console.error(
    'PROJECT_HASH and PROJECT_SECRET are required (npx socket-base projects create --name chat prints both)',
  );
  process.exit(1);
}
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`PORT must be a port number, 0 for any free one (not ${process.env.PORT})`);
  process.exit(1);
}

const base64url = (value) => Buffer.from(value).toString('base64url');

/** An HS256 JWT for `name`: the `sub` socket-base shows as `from`, valid for ten minutes. */
function signToken(name) {
  const iat = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = base64url(JSON.stringify({ sub: name, iat, exp: iat + TOKEN_TTL_SECONDS }));
  const signature = createHmac('sha256', PROJECT_SECRET)
    .update(`${header}.${claims}`)
    .digest('base64url');
  return `${header}.${claims}.${signature}`;
}

function send(response, status, type, body) {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(body);
}

const sendJson = (response, status, value) =>
  send(response, status, 'application/json', JSON.stringify(value));

async function readJson(request) {
  let body = '';
  for await (const chunk of request) {
    body += chunk;
    // A token request is a name, not an upload.
    if (body.length > 4096) throw new Error('body too large');
  }
  return JSON.parse(body);
}

async function handle(request, response) {
  const { pathname } = new URL(request.url, 'http://localhost');
  if (request.method === 'POST' && pathname === '/token') {
    const body = await readJson(request).catch(() => undefined);
    const name = typeof body?.name === 'string' ? body.name.trim() : '';
    // This demo trusts the name it is given; a real backend signs for the user it has logged in.
    if (name === '' || name.length > 64) {
      return sendJson(response, 400, { error: 'name: 1 to 64 characters' });
    }
    return sendJson(response, 200, { jwt: signToken(name) });
  }
  if (request.method === 'GET' && pathname === '/config.json') {
    return sendJson(response, 200, { socketBaseUrl: SOCKET_BASE_URL, hash: PROJECT_HASH });
  }
  const page = PAGES[pathname];
  if (request.method === 'GET' && page !== undefined) {
    const [file, type] = page;
    return send(response, 200, type, await readFile(join(PUBLIC_DIR, file)));
  }
  sendJson(response, 404, { error: 'not found' });
}

const server = createServer((request, response) => {
  handle(request, response).catch((error) => {
    console.error(error);
    if (!response.headersSent) sendJson(response, 500, { error: 'internal error' });
  });
});
server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(
    `chat example listening on http://127.0.0.1:${port} (socket-base at ${SOCKET_BASE_URL})`,
  );
});
