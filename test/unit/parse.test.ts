import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { codePointLength, parseClientFrame, parseHttpBody } from '../../src/protocol/parse.js';

const limits = { maxRoomLength: 4 };

describe('parseClientFrame: the contract order of checks', () => {
  const cases: [string, string][] = [
    ['not json', 'invalidJson'],
    ['[1,2]', 'invalidJson'],
    ['42', 'invalidJson'],
    ['"join"', 'invalidJson'],
    ['null', 'invalidJson'],
    ['{}', 'unknownType'],
    ['{"type":7}', 'unknownType'],
    ['{"type":"shout","room":"a"}', 'unknownType'],
    ['{"type":"join"}', 'roomRequired'],
    ['{"type":"leave","room":null}', 'roomRequired'],
    ['{"type":"message","room":""}', 'roomRequired'],
    ['{"type":"message","room":5}', 'payloadRequired'],
    ['{"type":"broadcast","payload":""}', 'payloadRequired'],
    ['{"type":"join","room":5}', 'roomNotString'],
    ['{"type":"message","room":["a"],"payload":{}}', 'roomNotString'],
    ['{"type":"message","room":"a","payload":{}}', 'payloadNotString'],
    ['{"type":"join","room":"abcde"}', 'roomTooLong'],
  ];
  for (const [text, error] of cases) {
    it(`${text} → ${error}`, () => {
      assert.deepEqual(parseClientFrame(text, limits), { ok: false, error });
    });
  }

  it('accepts each type, ignoring unknown fields and room on a broadcast', () => {
    assert.deepEqual(parseClientFrame('{"type":"join","room":"a","x":1}', limits), {
      ok: true,
      value: { type: 'join', room: 'a' },
    });
    assert.deepEqual(parseClientFrame('{"type":"broadcast","room":5,"payload":"p"}', limits), {
      ok: true,
      value: { type: 'broadcast', payload: 'p' },
    });
    assert.deepEqual(parseClientFrame('{"type":"ping"}', limits), {
      ok: true,
      value: { type: 'ping' },
    });
  });

  it('counts room length in code points', () => {
    assert.equal(codePointLength('😀😀😀😀', 4), 4);
    assert.equal(parseClientFrame('{"type":"join","room":"😀😀😀😀"}', limits).ok, true);
    assert.equal(codePointLength('😀😀😀😀😀', 4), 5);
  });

  it('reads an HTTP body as the frame its endpoint names', () => {
    assert.deepEqual(parseHttpBody('message', '{"payload":"p"}', limits), {
      ok: false,
      error: 'roomRequired',
    });
    assert.deepEqual(parseHttpBody('broadcast', '{"payload":"p"}', limits), {
      ok: true,
      value: { type: 'broadcast', payload: 'p' },
    });
  });
});
