import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { projectTopic, roomTopic } from '../../src/bus/bus.js';
import { ControlledBus, realtime, settle } from '../helpers/recording.js';

describe('Hub: who is where on this instance, and the subscriptions that follow', () => {
  let bus: ControlledBus;
  let world: ReturnType<typeof realtime>;
  let project: string;

  beforeEach(async () => {
    bus = new ControlledBus();
    world = realtime(bus);
    project = (await world.projects.create('unit')).hash;
  });
  afterEach(() => world.close());

  it('subscribes a project on its first connection and a room on its first member, and lets both go with the last', async () => {
    const a = world.session(project, 'a').session;
    const b = world.session(project, 'b').session;
    await world.hub.add(a);
    await world.hub.add(b);
    a.onText('{"type":"join","room":"r"}');
    b.onText('{"type":"join","room":"r"}');
    await settle();
    assert.deepEqual(
      bus.subscribed.filter((t) => t !== 'control'),
      [projectTopic(project), roomTopic(project, 'r')],
    );
    a.onClose();
    assert.deepEqual(bus.unsubscribed, []);
    b.onClose();
    assert.deepEqual(bus.unsubscribed, [roomTopic(project, 'r'), projectTopic(project)]);
    assert.deepEqual([...world.hub.projectHashes()], []);
  });

  it('a broadcast published while the project subscription is pending never comes before connected', async () => {
    const { connection, session } = world.session(project, 'alice');
    bus.mode = 'hold';
    const adding = world.hub.add(session);
    await settle();
    await world.messaging.broadcast(project, 'bob', 'too early', 'http');
    await settle();
    bus.release();
    await adding;
    await world.messaging.broadcast(project, 'bob', 'after', 'http');
    await settle();
    assert.deepEqual(connection.types(), ['connected', 'broadcast']);
    assert.equal(connection.frames[1]?.payload, 'after');
  });

  it('a connection whose project subscription fails is not kept, and nor is the subscription', async () => {
    const { connection, session } = world.session(project, 'alice');
    bus.mode = 'fail';
    await assert.rejects(world.hub.add(session));
    assert.deepEqual(connection.frames, [], 'never greeted');
    assert.deepEqual([...world.hub.projectHashes()], []);
    assert.deepEqual(bus.unsubscribed, [projectTopic(project)]);
    bus.mode = 'pass';
    await world.messaging.broadcast(project, 'bob', 'x', 'http');
    await settle();
    assert.deepEqual(connection.frames, [], 'it receives nothing afterwards');
  });

  it('closeProject sends every connection of the project Unknown project, then closes it with 4004', async () => {
    const other = (await world.projects.create('other')).hash;
    const a = world.session(project, 'a');
    const b = world.session(other, 'b');
    await world.hub.add(a.session);
    await world.hub.add(b.session);
    world.hub.closeProject(project, 4004, 'Unknown project', 'Unknown project');
    assert.deepEqual(a.connection.frames.slice(1), [{ type: 'error', message: 'Unknown project' }]);
    assert.deepEqual(a.connection.closed, { code: 4004, reason: 'Unknown project' });
    assert.equal(b.connection.closed, undefined);
    assert.deepEqual([...world.hub.projectHashes()], [other]);
  });

  it('a member gone while its join waited for the room leaves no room (nor subscription) behind', async () => {
    const { session } = world.session(project, 'ann');
    await world.hub.add(session);
    bus.mode = 'hold';
    session.onText('{"type":"join","room":"brief"}');
    await settle();
    session.onClose();
    bus.release();
    await settle();
    await settle();
    assert.ok(bus.unsubscribed.includes(roomTopic(project, 'brief')));
    assert.deepEqual([...world.hub.projectHashes()], []);
  });
});
