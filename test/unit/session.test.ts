import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CLOSE_CODES } from '../../src/errors.js';
import { ControlledBus, prepareText, realtime, settle } from '../helpers/recording.js';

describe('Session, through a recording Connection', () => {
  let world: ReturnType<typeof realtime>;
  let project: string;

  beforeEach(async () => {
    world = realtime(new ControlledBus(), { rateLimit: 1, rateBurst: 3, slowConsumerBytes: 100 });
    project = (await world.projects.create('unit')).hash;
  });
  afterEach(() => world.close());

  it('sends connected first, with its connectionId and user, when the hub admits it', async () => {
    const { connection, session } = world.session(project, 'alice');
    await world.hub.add(session);
    assert.deepEqual(connection.frames, [
      { type: 'connected', connectionId: session.id, user: 'alice' },
    ]);
  });

  it('answers join, ping, and a message to a room not joined, in order', async () => {
    const { connection, session } = world.session(project, 'alice');
    await world.hub.add(session);
    session.onText('{"type":"message","room":"r","payload":"x"}');
    session.onText('{"type":"join","room":"r"}');
    session.onText('{"type":"ping"}');
    await settle();
    assert.deepEqual(connection.frames.slice(1), [
      { type: 'error', message: 'You must join the room first' },
      { type: 'joined', room: 'r', seq: 0 },
      { type: 'pong' },
    ]);
  });

  it('refuses the frame past the burst with Rate limit exceeded and handles nothing of it', async () => {
    const { connection, session } = world.session(project, 'alice');
    await world.hub.add(session);
    for (let i = 0; i < 4; i++) session.onText('{"type":"ping"}');
    assert.deepEqual(connection.types().slice(1), ['pong', 'pong', 'pong', 'error']);
    assert.equal(connection.frames[4]?.message, 'Rate limit exceeded');
  });

  it('closes with 4009 instead of delivering to a connection whose backlog passed the limit', async () => {
    const { connection, session } = world.session(project, 'alice');
    await world.hub.add(session);
    connection.backlog = 101;
    session.deliver(prepareText('{"type":"broadcast","payload":"x","from":"b","ts":1}'));
    assert.deepEqual(connection.types(), ['connected']);
    assert.deepEqual(connection.closed, {
      code: CLOSE_CODES.slowConsumer.code,
      reason: CLOSE_CODES.slowConsumer.reason,
    });
  });

  it('close with a message sends the error frame, then closes, then sends nothing more', async () => {
    const { connection, session } = world.session(project, 'alice');
    await world.hub.add(session);
    session.close(4004, 'Unknown project', 'Unknown project');
    session.onText('{"type":"ping"}');
    session.deliver(prepareText('{"type":"pong"}'));
    assert.deepEqual(connection.frames.slice(1), [{ type: 'error', message: 'Unknown project' }]);
    assert.deepEqual(connection.closed, { code: 4004, reason: 'Unknown project' });
    assert.deepEqual([...world.hub.projectHashes()], [], 'the hub forgot it');
  });
});
