import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { noSettings, type ProjectSettings } from '../../src/domain.js';
import {
  changedSettings,
  effectiveSettings,
  parseProjectPatch,
  projectView,
  sameSettings,
  serverDefaults,
} from '../../src/tenancy/project-settings.js';
import { BAD_SETTINGS } from '../helpers/settings.js';

const full: ProjectSettings = {
  retention: { maxAgeSeconds: 3600, maxMessagesPerRoom: 100 },
  limits: { maxConnections: 50, maxConnectionsPerUser: 5, maxMessagesPerSecond: 20 },
};

describe('project settings: the PATCH parser', () => {
  for (const [what, body] of BAD_SETTINGS) {
    it(`refuses ${what} with invalidSettings`, () => {
      assert.deepEqual(parseProjectPatch(JSON.parse(body)), { error: 'invalidSettings' });
    });
  }

  it('refuses a body that is not an object with invalidSettings', () => {
    for (const body of [null, [], 'x', 5, true]) {
      assert.deepEqual(parseProjectPatch(body), { error: 'invalidSettings' }, String(body));
    }
  });

  it('keeps the name errors of project creation', () => {
    assert.deepEqual(parseProjectPatch({ name: '' }), { error: 'nameRequired' });
    assert.deepEqual(parseProjectPatch({ name: '   ' }), { error: 'nameRequired' });
    assert.deepEqual(parseProjectPatch({ name: 5 }), { error: 'nameRequired' });
    assert.deepEqual(parseProjectPatch({ name: 'x'.repeat(201) }), { error: 'nameTooLong' });
  });

  it('takes any subset; null clears a value; null or absent groups change nothing', () => {
    assert.deepEqual(parseProjectPatch({}), {});
    assert.deepEqual(parseProjectPatch({ name: null, settings: null }), {});
    assert.deepEqual(parseProjectPatch({ name: 'renamed' }), { name: 'renamed' });
    assert.deepEqual(
      parseProjectPatch({
        settings: { retention: { maxAgeSeconds: 60, maxMessagesPerRoom: null } },
      }),
      { settings: { retention: { maxAgeSeconds: 60, maxMessagesPerRoom: null }, limits: {} } },
    );
    assert.deepEqual(
      parseProjectPatch({ settings: { retention: null, limits: { maxConnections: 2 ** 53 - 1 } } }),
      { settings: { retention: {}, limits: { maxConnections: 2 ** 53 - 1 } } },
    );
  });

  it('lays a change over the current settings: named values set or cleared, the others kept', () => {
    const changed = changedSettings(full, {
      retention: { maxAgeSeconds: null },
      limits: { maxConnections: 7 },
    });
    assert.deepEqual(changed, {
      retention: { maxAgeSeconds: null, maxMessagesPerRoom: 100 },
      limits: { maxConnections: 7, maxConnectionsPerUser: 5, maxMessagesPerSecond: 20 },
    });
    assert.deepEqual(full.retention.maxAgeSeconds, 3600, 'the current settings are not changed');
  });
});

describe('project settings: what applies', () => {
  it('effective is the project’s value, else the server-wide default, else null', () => {
    const defaults = serverDefaults(
      loadConfig({ RETENTION_MAX_AGE_S: '86400', PROJECT_MAX_CONNECTIONS: '1000' }),
    );
    const own = changedSettings(noSettings(), {
      retention: { maxAgeSeconds: 60 },
      limits: { maxMessagesPerSecond: 10 },
    });
    assert.deepEqual(effectiveSettings(own, defaults), {
      retention: { maxAgeSeconds: 60, maxMessagesPerRoom: null },
      limits: { maxConnections: 1000, maxConnectionsPerUser: null, maxMessagesPerSecond: 10 },
    });
    assert.deepEqual(effectiveSettings(noSettings(), serverDefaults(loadConfig({}))), noSettings());
  });

  it('the view has hash, name, createdAt, settings, effective in that order, and no secret', () => {
    const project = {
      hash: 'h',
      name: 'n',
      jwtSecret: 'secret',
      createdAt: '2024-01-01T00:00:00.000Z',
      settings: full,
    };
    const view = projectView(project, noSettings());
    assert.deepEqual(Object.keys(view), ['hash', 'name', 'createdAt', 'settings', 'effective']);
    assert.ok(!JSON.stringify(view).includes('secret'));
    assert.deepEqual(view.effective, full);
  });

  it('sameSettings tells every value apart, whatever the key order', () => {
    const reordered: ProjectSettings = {
      limits: { maxMessagesPerSecond: 20, maxConnectionsPerUser: 5, maxConnections: 50 },
      retention: { maxMessagesPerRoom: 100, maxAgeSeconds: 3600 },
    };
    assert.ok(sameSettings(full, reordered));
    assert.ok(
      !sameSettings(full, changedSettings(full, { retention: {}, limits: { maxConnections: 51 } })),
    );
    assert.ok(
      !sameSettings(
        full,
        changedSettings(full, { retention: { maxAgeSeconds: null }, limits: {} }),
      ),
    );
  });
});
