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
    ['{"type":"nope","ref":""}', 'invalidRef'],
    ['{"type":"nope","ref":1.5}', 'invalidRef'],
    ['{"type":"nope","ref":true}', 'invalidRef'],
    [`{"type":"nope","ref":"${'r'.repeat(65)}"}`, 'invalidRef'],
    ['{"type":"join","room":"a","since":-1}', 'invalidSince'],
    ['{"type":"join","room":"a","since":"3"}', 'invalidSince'],
    ['{"type":"join","room":"a","since":1.5}', 'invalidSince'],
    ['{"type":"join","room":"abcde","since":-1}', 'invalidSince'],
    ['{"type":"message","room":"a","payload":"p","idempotencyKey":""}', 'invalidIdempotencyKey'],
    ['{"type":"message","room":"a","payload":"p","idempotencyKey":7}', 'invalidIdempotencyKey'],
    [
      `{"type":"message","room":"a","payload":"p","idempotencyKey":"${'k'.repeat(129)}"}`,
      'invalidIdempotencyKey',
    ],
  ];
  for (const [text, error] of cases) {
    it(`${text} → ${error}`, () => {
      assert.deepEqual(parseClientFrame(text, limits), { ok: false, error });
    });
  }

  it('an error after step 2 carries the valid ref; ref null is no ref', () => {
    assert.deepEqual(parseClientFrame('{"type":"join","ref":"x"}', limits), {
      ok: false,
      error: 'roomRequired',
      ref: 'x',
    });
    assert.deepEqual(parseClientFrame('{"type":"ping","ref":null}', limits), {
      ok: true,
      value: { type: 'ping' },
    });
  });

  it('reads since, idempotencyKey (128 code points at most) and ref onto the frame; null is absent', () => {
    assert.deepEqual(parseClientFrame('{"type":"join","room":"a","since":0,"ref":3}', limits), {
      ok: true,
      value: { type: 'join', room: 'a', since: 0, ref: 3 },
    });
    assert.deepEqual(parseClientFrame('{"type":"join","room":"a","since":null}', limits), {
      ok: true,
      value: { type: 'join', room: 'a' },
    });
    const key = '😀'.repeat(128);
    assert.deepEqual(
      parseClientFrame(
        `{"type":"message","room":"a","payload":"p","idempotencyKey":"${key}"}`,
        limits,
      ),
      { ok: true, value: { type: 'message', room: 'a', payload: 'p', idempotencyKey: key } },
    );
  });

  it('the Idempotency-Key header of an HTTP body is checked where a frame’s key is', () => {
    assert.deepEqual(parseHttpBody('message', '{"room":"a","payload":"p"}', limits, ''), {
      ok: false,
      error: 'invalidIdempotencyKey',
    });
    assert.deepEqual(parseHttpBody('message', '{"room":"a","payload":"p"}', limits, 'k'), {
      ok: true,
      value: { type: 'message', room: 'a', payload: 'p', idempotencyKey: 'k' },
    });
    assert.deepEqual(parseHttpBody('message', '{"payload":"p"}', limits, ''), {
      ok: false,
      error: 'roomRequired',
    });
  });

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

  it('a refresh is checked after the type: jwt missing, null or not a string → invalidToken (with the ref); room and payload are not read', () => {
    for (const text of [
      '{"type":"refresh"}',
      '{"type":"refresh","jwt":null}',
      '{"type":"refresh","jwt":42}',
      '{"type":"refresh","jwt":["a.b.c"]}',
    ]) {
      assert.deepEqual(parseClientFrame(text, limits), { ok: false, error: 'invalidToken' }, text);
    }
    assert.deepEqual(parseClientFrame('{"type":"refresh","ref":"r1"}', limits), {
      ok: false,
      error: 'invalidToken',
      ref: 'r1',
    });
    assert.deepEqual(parseClientFrame('{"type":"refresh","jwt":5,"ref":""}', limits), {
      ok: false,
      error: 'invalidRef',
    });
    assert.deepEqual(
      parseClientFrame('{"type":"refresh","jwt":"a.b.c","room":5,"payload":{},"ref":7}', limits),
      { ok: true, value: { type: 'refresh', jwt: 'a.b.c', ref: 7 } },
    );
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
