import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as wsModule from 'ws';
import {
  checkNetSocket,
  checkSender,
  installedWsVersion,
  prepareFrame,
  WS_VERSION,
} from '../../src/transport/ws-internals.js';

const NAMES_WS = /ws 8\.23\.0.*installed ws 9\.9\.9/;

describe('ws internals the transport relies on', () => {
  it('package.json pins ws to exactly the version whose internals were read, and it is installed', () => {
    const manifest = JSON.parse(
      readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
    ) as { dependencies: Record<string, string> };
    assert.equal(manifest.dependencies.ws, WS_VERSION);
    assert.equal(installedWsVersion(), WS_VERSION);
  });

  it('the installed ws passes both checks, and prepared frames are RFC 6455 text frames', () => {
    assert.doesNotThrow(() => checkSender(wsModule, installedWsVersion()));
    assert.deepEqual([...prepareFrame('hi')], [0x81, 0x02, 0x68, 0x69]);
  });

  it('a ws without Sender.frame, or whose frame frames otherwise, fails naming ws and both versions', () => {
    assert.throws(() => checkSender({}, '9.9.9'), NAMES_WS);
    assert.throws(() => checkSender({ Sender: { frame: 1 } }, '9.9.9'), /Sender\.frame/);
    const masked = { Sender: { frame: (data: Buffer) => [Buffer.from([0x81, 0x82]), data] } };
    assert.throws(() => checkSender(masked, '9.9.9'), NAMES_WS);
    const throwing = {
      Sender: {
        frame: () => {
          throw new TypeError('options.kByteLength');
        },
      },
    };
    assert.throws(() => checkSender(throwing, '9.9.9'), NAMES_WS);
  });

  it('a WebSocket whose network socket is not in _socket fails naming ws and both versions', () => {
    assert.throws(() => checkNetSocket({}, '9.9.9'), /WebSocket\._socket.*ws 8\.23\.0/);
    assert.throws(() => checkNetSocket({ _socket: { write() {} } }, '9.9.9'), NAMES_WS);
    const net = { cork() {}, uncork() {}, write() {}, writableCorked: 0, bytesRead: 0 };
    assert.equal(checkNetSocket({ _socket: net }, '9.9.9'), net);
  });
});
