/**
 * `PATCH /admin/projects/:hash` bodies, as the JSON text sent, that `Invalid settings` must refuse,
 * each with what is wrong with it.
 */
export const BAD_SETTINGS: readonly (readonly [string, string])[] = [
  ['an unknown top-level key', '{"retention":{"maxAgeSeconds":60}}'],
  ['an unknown top-level key beside good ones', '{"name":"ok","colour":"red"}'],
  ['an unknown key in settings', '{"settings":{"retention":{},"quotas":{}}}'],
  ['an unknown key in retention', '{"settings":{"retention":{"maxAge":60}}}'],
  ['an unknown key in limits', '{"settings":{"limits":{"maxRooms":5}}}'],
  ['a __proto__ key', '{"settings":{"__proto__":{"retention":{}}}}'],
  ['0', '{"settings":{"retention":{"maxAgeSeconds":0}}}'],
  ['-1', '{"settings":{"limits":{"maxConnections":-1}}}'],
  ['1.5', '{"settings":{"retention":{"maxMessagesPerRoom":1.5}}}'],
  [
    '2^53, past the safe integers',
    '{"settings":{"limits":{"maxMessagesPerSecond":9007199254740992}}}',
  ],
  ['1e400, read as Infinity', '{"settings":{"limits":{"maxConnections":1e400}}}'],
  ['"7"', '{"settings":{"limits":{"maxConnectionsPerUser":"7"}}}'],
  ['true', '{"settings":{"retention":{"maxAgeSeconds":true}}}'],
  ['[]', '{"settings":{"retention":{"maxAgeSeconds":[]}}}'],
  ['[5]', '{"settings":{"limits":{"maxConnections":[5]}}}'],
  ['{} where a number is due', '{"settings":{"retention":{"maxAgeSeconds":{}}}}'],
  ['settings a string', '{"settings":"none"}'],
  ['settings a number', '{"settings":5}'],
  ['settings an array', '{"settings":[]}'],
  ['settings true', '{"settings":true}'],
  ['retention an array', '{"settings":{"retention":[60]}}'],
  ['retention a number', '{"settings":{"retention":60}}'],
  ['limits a string', '{"settings":{"limits":"none"}}'],
  [
    'one bad value among good ones, with a good name',
    '{"name":"renamed","settings":{"retention":{"maxAgeSeconds":60,"maxMessagesPerRoom":0},"limits":{"maxConnections":3}}}',
  ],
];
