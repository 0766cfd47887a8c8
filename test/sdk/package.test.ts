/**
 * The package as it ships: no runtime dependencies, nothing imported from outside it (its .d.ts
 * files included), and the server serving the same build to browsers.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../helpers/server.js';

const dist = dirname(fileURLToPath(import.meta.resolve('@socket-base/client')));
const sdk = dirname(dist);

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(folder, entry.name)) : [join(folder, entry.name)],
  );
}

describe('the SDK package', () => {
  it('has no runtime dependencies', () => {
    const manifest = JSON.parse(readFileSync(join(sdk, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: object;
      peerDependencies?: object;
    };
    assert.equal(manifest.name, '@socket-base/client');
    assert.equal(manifest.dependencies, undefined);
    assert.equal(manifest.peerDependencies, undefined);
  });

  it('imports only its own files, in its .js and its .d.ts alike (the types are self-contained)', () => {
    const files = filesUnder(dist).filter((file) => /\.(d\.ts|js)$/.test(file));
    assert.ok(files.some((file) => file.endsWith('socket-base.d.ts')));
    assert.ok(files.some((file) => file.endsWith('generated/wire.d.ts')));
    const specifier = /(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g;
    for (const file of files) {
      for (const match of readFileSync(file, 'utf8').matchAll(specifier)) {
        const target = match[1] as string;
        assert.ok(target.startsWith('./') || target.startsWith('../'), `${file}: ${target}`);
        const inside = relative(dist, resolve(dirname(file), target));
        assert.ok(!inside.startsWith('..'), `${file} reaches outside the package: ${target}`);
      }
    }
  });

  it('its types compile alone: an app without DOM or Node typings, every event and result typed', () => {
    const app = mkdtempSync(join(tmpdir(), 'sb-sdk-types-'));
    try {
      writeFileSync(
        join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            lib: ['ES2022'],
            types: [],
            strict: true,
            noEmit: true,
            skipLibCheck: false,
          },
          files: ['app.ts'],
        }),
      );
      writeFileSync(join(app, 'package.json'), '{"type":"module"}');
      writeFileSync(
        join(app, 'app.ts'),
        `import { SocketBase, SocketBaseError, type RoomMessage } from ${JSON.stringify(join(dist, 'socket-base.js'))};
const client = new SocketBase({ url: ['http://a', 'http://b'], hash: 'h', token: async () => 'jwt' });
client.on('state', (state: 'connecting' | 'open' | 'reconnecting' | 'closed') => void state);
client.on('broadcast', ({ payload, from, ts }) => void [payload.length, from.length, ts + 1]);
client.on('error', (error) => void (error instanceof SocketBaseError && error.code === 'notAllowed'));
const room = client.room('general', { presence: true });
room.on('message', (message: RoomMessage) => void (message.seq + message.ts + message.payload.length));
room.on('presence', (event) => void (event.type === 'join' ? event.user : event.user));
room.on('reset', () => undefined);
export async function use(): Promise<number> {
  const joined: { seq: number } = await room.join();
  const { id, seq } = await room.send('hello');
  const page = await room.history({ limit: 50, before: id });
  const present = await room.presence();
  await room.leave();
  await client.broadcast('hi');
  client.close();
  // @ts-expect-error a payload is a string
  await room.send(1);
  return joined.seq + seq + page.messages.length + present.count + (present.users[0]?.connections ?? 0);
}
`,
      );
      const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
      try {
        execFileSync(process.execPath, [tsc, '-p', app], { encoding: 'utf8' });
      } catch (error) {
        assert.fail(`the app does not compile: ${(error as { stdout?: string }).stdout}`);
      }
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});

describe('GET /sdk/socket-base.js', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it('serves the build as JavaScript any origin may import, with an ETag that answers 304', async () => {
    const response = await fetch(`${server.url}/sdk/socket-base.js`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(response.headers.get('access-control-allow-origin'), '*');
    assert.equal(await response.text(), readFileSync(join(dist, 'socket-base.js'), 'utf8'));
    const etag = response.headers.get('etag');
    assert.ok(etag);
    const again = await fetch(`${server.url}/sdk/socket-base.js`, {
      headers: { 'if-none-match': etag },
    });
    assert.equal(again.status, 304);
    const imported = await fetch(`${server.url}/sdk/generated/wire.js`);
    assert.equal(imported.status, 200, 'the modules it imports are there too');
  });

  it('serves nothing else: types, the manifest and paths out of the folder are 404', async () => {
    for (const path of [
      '/sdk/socket-base.d.ts',
      '/sdk/../package.json',
      '/sdk/%2e%2e/package.json',
      '/sdk/',
    ]) {
      const response = await fetch(`${server.url}${path}`);
      assert.equal(response.status, 404, path);
    }
  });
});
