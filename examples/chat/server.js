// The chat example's backend: the small server a socket-base user runs beside their app. It serves
// the page, signs a short-lived token for the name the page asks for (with the project's secret,
// which never reaches the browser), and tells the page where socket-base is.
//
//   PROJECT_HASH=… PROJECT_SECRET=… node examples/chat/server.js
//
// It signs a token for any name it is asked for, so it listens on this machine only: a real
// backend signs for the user its own login has authenticated.
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';

const TOKEN_LIFETIME_S = 10 * 60;
const MAX_NAME_LENGTH = 40;
const MAX_BODY_BYTES = 1024;

const PAGES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/chat.js': ['chat.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

const settings = readSettings(process.env);

const server = createServer((request, response) => {
  route(request, response).catch((error) => {
    console.error(error);
    if (!response.headersSent) reply(response, 500, { error: 'Internal error' });
  });
});
server.listen(settings.port, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(
    `chat example listening on http://127.0.0.1:${port} (socket-base at ${settings.url})`,
  );
});

async function route(request, response) {
  const { pathname } = new URL(request.url, 'http://localhost');
  if (request.method === 'POST' && pathname === '/token') {
    const name = validName((await readJson(request))?.name);
    if (name === undefined) {
      reply(response, 400, { error: `name: 1 to ${MAX_NAME_LENGTH} characters` });
      return;
    }
    reply(response, 200, { token: signToken(name, settings.secret) });
    return;
  }
  if (request.method === 'GET' && pathname === '/config.json') {
    // Everything the page needs to connect except the token, which it asks POST /token for.
    reply(response, 200, { url: settings.url, hash: settings.hash, reconnect: settings.reconnect });
    return;
  }
  const page = PAGES[pathname];
  if (request.method === 'GET' && page !== undefined) {
    const [file, type] = page;
    const body = await readFile(new URL(`./public/${file}`, import.meta.url));
    response.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
    response.end(body);
    return;
  }
  reply(response, 404, { error: 'Not found' });
}

/** An HS256 JWT for `sub`, valid for TOKEN_LIFETIME_S: what socket-base checks at connect. */
function signToken(sub, secret) {
  const iat = Math.floor(Date.now() / 1000);
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub, iat, exp: iat + TOKEN_LIFETIME_S })}`;
  const signature = createHmac('sha256', secret).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

function validName(value) {
  if (typeof value !== 'string') return undefined;
  const name = value.trim();
  const length = [...name].length;
  return length >= 1 && length <= MAX_NAME_LENGTH ? name : undefined;
}

/** The body as JSON, or undefined when it is too large or not JSON. */
async function readJson(request) {
  const chunks = [];
  let size = 0;
  // Read to the end even past the limit, so that the answer is not cut off by a reset.
  for await (const chunk of request) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

function reply(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}

/** The environment, checked; a missing or bad value stops the start with one line. */
function readSettings(env) {
  const fail = (message) => {
    console.error(`chat example: ${message}`);
    process.exit(1);
  };
  for (const name of ['PROJECT_HASH', 'PROJECT_SECRET']) {
    if (!env[name]) fail(`${name} is required (PROJECT_HASH=… PROJECT_SECRET=… node server.js)`);
  }
  const number = (name, fallback) => {
    const value = env[name] === undefined || env[name] === '' ? fallback : Number(env[name]);
    if (value !== undefined && !(Number.isInteger(value) && value >= 0))
      fail(`${name} must be a whole number ≥ 0`);
    return value;
  };
  const port = number('PORT', 3000);
  if (port > 65535) fail('PORT must be at most 65535');
  // Optional: the SDK's defaults (500 ms to 20 s) apply when these are unset.
  const minDelayMs = number('CHAT_RECONNECT_MIN_MS', undefined);
  const maxDelayMs = number('CHAT_RECONNECT_MAX_MS', undefined);
  const reconnect = {};
  if (minDelayMs !== undefined) reconnect.minDelayMs = minDelayMs;
  if (maxDelayMs !== undefined) reconnect.maxDelayMs = maxDelayMs;
  return {
    url: (env.SOCKET_BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
    hash: env.PROJECT_HASH,
    secret: env.PROJECT_SECRET,
    port,
    reconnect,
  };
}
