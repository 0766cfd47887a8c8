import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestClient } from '../helpers/client.js';
import { createProjectAt, type ServerProcess, spawnServer } from '../helpers/ops.js';
import { type TestSchemas, testSchemas } from '../helpers/postgres.js';
import { memberUrl } from '../helpers/ws.js';

const ADMIN_TOKEN = 'instance-death-admin-token';

describe('an instance dies', () => {
  let schemas: TestSchemas;
  let cwd: string;
  const instances: ServerProcess[] = [];

  before(async () => {
    schemas = await testSchemas();
    cwd = mkdtempSync(join(tmpdir(), 'sb-death-'));
    const env = {
      DATABASE_URL: schemas.urlFor(await schemas.create()),
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: `sb-test-${randomBytes(6).toString('hex')}:`,
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
    };
    for (let i = 0; i < 3; i++) instances.push(await spawnServer(env, cwd));
  });
  after(async () => {
    await Promise.all(instances.map((instance) => instance.stop('SIGTERM')));
    await schemas.dropAll();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('its clients reconnect to another instance and carry on; the others are not disturbed', async () => {
    const [a, b, c] = instances as [ServerProcess, ServerProcess, ServerProcess];
    const project = await createProjectAt(a.url, ADMIN_TOKEN, 'death');
    const url = (instance: ServerProcess, sub: string): Promise<string> =>
      memberUrl(instance, project, sub);
    const onA = await TestClient.connect(await url(a, 'ann'));
    const onB = await TestClient.connect(await url(b, 'ben'));
    const onC = await TestClient.connect(await url(c, 'cy'));
    for (const client of [onA, onB, onC]) await client.join('r');
    onA.send({ type: 'message', room: 'r', payload: 'one' });
    for (const client of [onA, onB, onC]) await client.collect('message', 1);

    await a.stop('SIGKILL');
    await onA.waitClosed();

    const again = await TestClient.connect(await url(b, 'ann'));
    await again.join('r');
    again.send({ type: 'message', room: 'r', payload: 'two' });
    for (const client of [again, onB, onC]) {
      const frames = await client.collect('message', client === again ? 1 : 2);
      assert.deepEqual(frames.at(-1)?.seq, 2);
      assert.equal(frames.at(-1)?.payload, 'two');
    }
    assert.equal(onB.closeCode, undefined);
    assert.equal(onC.closeCode, undefined);
    for (const client of [again, onB, onC]) client.close();
  });
});
