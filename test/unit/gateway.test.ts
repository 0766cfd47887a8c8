import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { signProjectToken } from '../../src/auth/project-jwt.js';
import { ControlledBus, RecordingConnection, realtime } from '../helpers/recording.js';

describe('Gateway: admission of a WebSocket client', () => {
  let bus: ControlledBus;
  let world: ReturnType<typeof realtime>;
  let project: { hash: string; jwtSecret: string };

  beforeEach(async () => {
    bus = new ControlledBus();
    world = realtime(bus);
    project = await world.projects.create('unit');
  });
  afterEach(() => world.close());

  it('admits a valid token: connected is sent and the handler is the session', async () => {
    const connection = new RecordingConnection();
    const token = signProjectToken(project.jwtSecret, 'alice', '1h');
    const admission = await world.gateway.admit(connection, project.hash, token, '');
    assert.equal(admission.ok, true);
    assert.equal(connection.frames[0]?.type, 'connected');
    assert.equal(connection.frames[0]?.user, 'alice');
  });

  it('refuses with the catalogued message and close code', async () => {
    const token = signProjectToken(project.jwtSecret, 'alice', '1h');
    const cases: [string, string, string, number][] = [
      ['nope', token, 'Unknown project', 4004],
      [project.hash, 'garbage', 'Invalid token', 4001],
      [project.hash, signProjectToken(project.jwtSecret, 'alice', -60), 'Token expired', 4002],
    ];
    for (const [hash, jwt, message, code] of cases) {
      const connection = new RecordingConnection();
      assert.deepEqual(await world.gateway.admit(connection, hash, jwt, ''), {
        ok: false,
        message,
        code,
      });
      assert.deepEqual(connection.frames, [], 'the transport sends the refusal');
    }
  });

  it('a failed project subscription rejects the admission and leaves no session in the hub', async () => {
    bus.mode = 'fail';
    const connection = new RecordingConnection();
    const token = signProjectToken(project.jwtSecret, 'alice', '1h');
    await assert.rejects(world.gateway.admit(connection, project.hash, token, ''));
    assert.deepEqual([...world.hub.projectHashes()], []);
    assert.equal(world.hub.projectMembers(project.hash), undefined);
  });
});
