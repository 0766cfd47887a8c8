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

/** A project's settings as the admin API and `projects show` print them. */
export interface SettingsView {
  retention: { maxAgeSeconds: number | null; maxMessagesPerRoom: number | null };
  limits: {
    maxConnections: number | null;
    maxConnectionsPerUser: number | null;
    maxMessagesPerSecond: number | null;
  };
}

/** A project as `GET /admin/projects/:hash` and `projects show` print it. */
export interface ProjectView {
  hash: string;
  name: string;
  createdAt: string;
  settings: SettingsView;
  effective: SettingsView;
}

/** The settings of a project with no values of its own, on a server without defaults. */
export const NO_SETTINGS: SettingsView = {
  retention: { maxAgeSeconds: null, maxMessagesPerRoom: null },
  limits: { maxConnections: null, maxConnectionsPerUser: null, maxMessagesPerSecond: null },
};
