import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { projectVerifier } from '../../src/auth/project-jwt.js';
import { RoomPermissions } from '../../src/auth/room-permissions.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { Projects } from '../../src/tenancy/projects.js';
import { nowSeconds, signClaims } from '../helpers/ws.js';

function compiled(claims: Record<string, unknown>): RoomPermissions {
  const permissions = RoomPermissions.fromClaims(claims);
  assert.ok(permissions !== undefined, `claims ${JSON.stringify(claims)} refused`);
  return permissions;
}

describe('RoomPermissions: the rooms, publish and broadcast claims, compiled', () => {
  it('a token with none of the claims gets the one shared unrestricted object: every room, publish and broadcast', () => {
    const permissions = compiled({ sub: 'alice' });
    assert.equal(permissions, RoomPermissions.UNRESTRICTED);
    assert.equal(permissions.allows('anything'), true);
    assert.equal(permissions.publish, true);
    assert.equal(permissions.broadcast, true);
  });

  it('claims that are null count as absent', () => {
    assert.equal(
      compiled({ rooms: null, publish: null, broadcast: null }),
      RoomPermissions.UNRESTRICTED,
    );
  });

  it('rooms ["chat:*","lobby"]: every room starting with chat: and lobby exactly, nothing else', () => {
    const permissions = compiled({ rooms: ['chat:*', 'lobby'] });
    for (const room of ['chat:1', 'chat:', 'chat:a:b', 'lobby']) {
      assert.equal(permissions.allows(room), true, room);
    }
    for (const room of ['chat', 'Chat:1', 'lobby2', 'lobb', 'x', 'xchat:1', ' lobby']) {
      assert.equal(permissions.allows(room), false, room);
    }
    assert.equal(permissions.publish, true);
    assert.equal(permissions.broadcast, true);
  });

  it('"*" matches every room; a * that does not end the pattern is part of an exact name', () => {
    assert.equal(compiled({ rooms: ['lobby', '*'] }).allows('any room at all'), true);
    const inner = compiled({ rooms: ['a*b'] });
    assert.equal(inner.allows('a*b'), true);
    assert.equal(inner.allows('axb'), false);
    assert.equal(inner.allows('a'), false);
  });

  it('rooms [] opens no room', () => {
    const none = compiled({ rooms: [] });
    for (const room of ['lobby', 'chat:1', '*', 'x']) assert.equal(none.allows(room), false);
  });

  it('overlapping patterns keep their meaning (a prefix covering another, an exact name under a prefix)', () => {
    const permissions = compiled({ rooms: ['chat:vip*', 'chat:*', 'chat:1', 'chat:*', 'news'] });
    for (const room of ['chat:vip1', 'chat:1', 'chat:2', 'news']) {
      assert.equal(permissions.allows(room), true, room);
    }
    assert.equal(permissions.allows('chat'), false);
    assert.equal(permissions.allows('news2'), false);
  });

  it('publish:false and broadcast:false are read, and leave the rooms as the rooms claim says', () => {
    const quiet = compiled({ publish: false });
    assert.equal(quiet.publish, false);
    assert.equal(quiet.broadcast, true);
    assert.equal(quiet.allows('any'), true);
    const narrow = compiled({ rooms: ['lobby'], broadcast: false, publish: true });
    assert.equal(narrow.publish, true);
    assert.equal(narrow.broadcast, false);
    assert.equal(narrow.allows('lobby'), true);
    assert.equal(narrow.allows('other'), false);
  });

  it('a claim of the wrong shape is refused: rooms not an array of strings, publish or broadcast not booleans', () => {
    for (const claims of [
      { rooms: 'chat:*' },
      { rooms: {} },
      { rooms: [1] },
      { rooms: ['lobby', null] },
      { rooms: [['lobby']] },
      { rooms: true },
      { publish: 'false' },
      { publish: 0 },
      { broadcast: 1 },
      { broadcast: [] },
    ]) {
      assert.equal(RoomPermissions.fromClaims(claims), undefined, JSON.stringify(claims));
    }
  });
});

describe('projectVerifier: claims and the token rules', () => {
  const secret = 's'.repeat(43);
  const strict = { clockToleranceMs: 0, requireExp: false };

  it('compiles the claims of a valid token once, with it', () => {
    const verify = projectVerifier(secret, strict);
    const check = verify(signClaims(secret, { sub: 'alice', rooms: ['lobby'], publish: false }));
    assert.ok(check.ok);
    assert.equal(check.sub, 'alice');
    assert.equal(check.expiresAtMs, undefined);
    assert.equal(check.permissions.allows('lobby'), true);
    assert.equal(check.permissions.allows('other'), false);
    assert.equal(check.permissions.publish, false);
  });

  it('a validly signed token with a claim of the wrong shape is Invalid token', () => {
    const verify = projectVerifier(secret, strict);
    for (const claims of [{ rooms: 'lobby' }, { publish: 'no' }, { broadcast: 0 }]) {
      assert.deepEqual(verify(signClaims(secret, { sub: 'alice', ...claims })), {
        ok: false,
        error: 'invalidToken',
      });
    }
  });

  it('REQUIRE_EXP refuses a token without exp as Invalid token and accepts one with exp', () => {
    const verify = projectVerifier(secret, { clockToleranceMs: 0, requireExp: true });
    assert.deepEqual(verify(signClaims(secret, { sub: 'alice' })), {
      ok: false,
      error: 'invalidToken',
    });
    const exp = nowSeconds() + 60;
    const check = verify(signClaims(secret, { sub: 'alice', exp }));
    assert.ok(check.ok);
    assert.equal(check.expiresAtMs, exp * 1000);
  });

  it('the clock tolerance applies to exp and nbf', () => {
    const expired = signClaims(secret, { sub: 'alice', exp: nowSeconds() - 3 });
    const early = signClaims(secret, { sub: 'alice', nbf: nowSeconds() + 3 });
    const lenient = projectVerifier(secret, { clockToleranceMs: 5000, requireExp: false });
    assert.equal(lenient(expired).ok, true);
    assert.equal(lenient(early).ok, true);
    const exact = projectVerifier(secret, strict);
    assert.deepEqual(exact(expired), { ok: false, error: 'tokenExpired' });
    assert.deepEqual(exact(early), { ok: false, error: 'invalidToken' });
  });
});

describe('Projects.authenticate: claims compiled once per verified token', () => {
  it('the same token authenticated again answers the very same compiled permissions, from the cache', async () => {
    const store = SqliteStore.open(':memory:');
    const bus = new MemoryBus();
    try {
      const projects = new Projects(store, bus, { clockToleranceMs: 0, requireExp: false });
      const project = await projects.create('claims');
      const token = signClaims(project.jwtSecret, {
        sub: 'alice',
        exp: nowSeconds() + 60,
        rooms: ['chat:*'],
      });
      const first = await projects.authenticate(project.hash, token);
      const second = await projects.authenticate(project.hash, token);
      assert.ok(first.ok && second.ok);
      assert.equal(second.permissions, first.permissions);
      assert.equal(first.permissions.allows('chat:1'), true);
      assert.equal(first.permissions.allows('lobby'), false);
      const other = await projects.authenticate(
        project.hash,
        signClaims(project.jwtSecret, { sub: 'alice', rooms: ['chat:*'] }),
      );
      assert.ok(other.ok);
      assert.notEqual(other.permissions, first.permissions, 'compiled per token');
    } finally {
      await store.close();
      await bus.close();
    }
  });

  it("a WebSocket's token (remember false) is verified every time and not kept; one kept by an HTTP call is used", async () => {
    const store = SqliteStore.open(':memory:');
    const bus = new MemoryBus();
    try {
      const projects = new Projects(store, bus, { clockToleranceMs: 0, requireExp: false });
      const project = await projects.create('claims');
      const token = signClaims(project.jwtSecret, { sub: 'bob', rooms: ['chat:*'] });
      const first = await projects.authenticate(project.hash, token, false);
      const second = await projects.authenticate(project.hash, token, false);
      assert.ok(first.ok && second.ok);
      assert.notEqual(second.permissions, first.permissions, 'verified again, not kept');
      const kept = await projects.authenticate(project.hash, token);
      const socket = await projects.authenticate(project.hash, token, false);
      assert.ok(kept.ok && socket.ok);
      assert.equal(socket.permissions, kept.permissions, 'taken from what the HTTP call kept');
    } finally {
      await store.close();
      await bus.close();
    }
  });
});
