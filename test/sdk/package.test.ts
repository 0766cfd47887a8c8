/**
 * The package as it ships: no runtime dependencies, nothing imported from outside it (its .d.ts
 * files included), and the server serving the same build to browsers.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
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
