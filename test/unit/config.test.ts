import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, maskCredentials, readDotEnv } from '../../src/config.js';

describe('configuration from the environment', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.databaseUrl, 'sqlite:./data/socket-base.db');
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.adminToken, undefined);
    assert.equal(config.maxFrameBytes, 65536);
    assert.equal(config.maxBodyBytes, 131072);
    assert.equal(config.maxRoomLength, 256);
    assert.equal(config.maxRoomsPerConnection, 1000);
    assert.equal(config.rateLimit, 1000);
    assert.equal(config.rateBurst, 2000);
    assert.equal(config.slowConsumerBytes, 8388608);
    assert.equal(config.heartbeatMs, 30000);
    assert.equal(config.maxConnections, 100000);
    assert.equal(config.maxConnectionsPerIp, undefined);
    assert.equal(config.handshakeTimeoutMs, 10000);
    assert.equal(config.jwtClockToleranceS, 5);
    assert.equal(config.requireExp, false);
    assert.equal(config.sqliteWorker, false);
    assert.deepEqual(config.corsOrigins, ['*']);
    assert.deepEqual(config.trustProxy, []);
  });

  it('reads every setting', () => {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: 'sqlite::memory:',
      REDIS_URL: 'redis://127.0.0.1:6379',
      MAX_FRAME_BYTES: '1024',
      RATE_LIMIT: '5',
      RATE_BURST: '7',
      CORS_ORIGINS: 'https://a.example, https://b.example',
      TRUST_PROXY: '10.0.0.1',
      JWT_CLOCK_TOLERANCE_S: '0',
      REQUIRE_EXP: 'true',
      SQLITE_WORKER: 'on',
    });
    assert.equal(config.sqliteWorker, true);
    assert.equal(config.jwtClockToleranceS, 0);
    assert.equal(config.requireExp, true);
    for (const [raw, value] of [
      ['1', true],
      ['yes', true],
      ['ON', true],
      ['0', false],
      ['false', false],
      ['off', false],
    ] as const) {
      assert.equal(loadConfig({ REQUIRE_EXP: raw }).requireExp, value, raw);
    }
    assert.equal(config.port, 0);
    assert.equal(config.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(config.maxFrameBytes, 1024);
    assert.equal(config.rateBurst, 7);
    assert.deepEqual(config.corsOrigins, ['https://a.example', 'https://b.example']);
  });

  it('refuses a bad value with an error naming the variable', () => {
    for (const [name, value] of [
      ['PORT', 'abc'],
      ['PORT', '65536'],
      ['HEARTBEAT_MS', '1.5'],
      ['DATABASE_URL', 'mysql://x'],
      ['REDIS_URL', 'http://x'],
      ['ADMIN_TOKEN', 'short'],
      ['JWT_CLOCK_TOLERANCE_S', '-1'],
      ['JWT_CLOCK_TOLERANCE_S', '2.5'],
      ['REQUIRE_EXP', 'maybe'],
      ['SQLITE_WORKER', 'worker'],
    ] as const) {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => error instanceof ConfigError && error.message.includes(name),
      );
    }
  });

  it('a bad DATABASE_URL or REDIS_URL is shown with its password masked as ***, never the password', () => {
    for (const [name, value, shown, secret] of [
      [
        'DATABASE_URL',
        'mysql://user:secretpw@db.example/app',
        'mysql://user:***@db.example/app',
        'secretpw',
      ],
      [
        'DATABASE_URL',
        'postgres//user:secretpw@db.example/app',
        'postgres//user:***@db.example/app',
        'secretpw',
      ],
      [
        'DATABASE_URL',
        'mysql://user:p@ss:w0rd@db.example/app',
        'mysql://user:***@db.example/app',
        'ss:w0rd',
      ],
      [
        'REDIS_URL',
        'http://:redispw@cache.example:6379',
        'http://:***@cache.example:6379',
        'redispw',
      ],
      [
        'REDIS_URL',
        'http://default:red is/pw@cache.example',
        'http://default:***@cache.example',
        'red is',
      ],
    ] as const) {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.ok(error.message.includes(name), error.message);
          assert.ok(error.message.includes(shown), error.message);
          assert.ok(!error.message.includes(secret), error.message);
          return true;
        },
      );
    }
  });

  it('maskCredentials keeps the user and the host, hides the password, and leaves a URL without one alone', () => {
    assert.equal(maskCredentials('postgres://user:pw@host/db'), 'postgres://user:***@host/db');
    assert.equal(
      maskCredentials('postgres://host/db?sslmode=require&password=pw'),
      'postgres://host/db?sslmode=require&password=***',
    );
    assert.equal(maskCredentials('rediss://:pw@host:6380/2'), 'rediss://:***@host:6380/2');
    for (const plain of [
      'postgres://postgres@127.0.0.1:5432/test',
      'redis://127.0.0.1:6379',
      'sqlite:./data/socket-base.db',
      'sqlite::memory:',
    ]) {
      assert.equal(maskCredentials(plain), plain);
    }
  });

  it('requires ADMIN_TOKEN when DATABASE_URL is PostgreSQL', () => {
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'postgres://127.0.0.1/test' }),
      /ADMIN_TOKEN is required when DATABASE_URL is PostgreSQL/,
    );
  });

  it('reads a .env file without overriding the real environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-env-'));
    try {
      const path = join(dir, '.env');
      writeFileSync(path, '# comment\nPORT=9999\nHOST="127.0.0.2"\n');
      const env: Record<string, string | undefined> = { PORT: '1234' };
      readDotEnv(path, env);
      assert.equal(env.PORT, '1234');
      assert.equal(env.HOST, '127.0.0.2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
