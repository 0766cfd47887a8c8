/**
 * The options of `socket-base projects set HASH …`, turned into the body a
 * `PATCH /admin/projects/:hash` would carry, so that the CLI and the admin API share one parser of
 * it (src/tenancy/project-settings.ts). `off` clears a value; ages take a unit.
 */

/** parseArgs options: every one a string, checked here. */
export const PROJECT_SET_OPTIONS = {
  name: { type: 'string' },
  'retention-max-age': { type: 'string' },
  'retention-max-messages': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-connections-per-user': { type: 'string' },
  'max-messages-per-second': { type: 'string' },
} as const;

type SettingFlag = Exclude<keyof typeof PROJECT_SET_OPTIONS, 'name'>;

const SETTING_FLAGS: readonly {
  flag: SettingFlag;
  group: 'retention' | 'limits';
  key: string;
  read: (text: string) => number | undefined;
}[] = [
  { flag: 'retention-max-age', group: 'retention', key: 'maxAgeSeconds', read: seconds },
  { flag: 'retention-max-messages', group: 'retention', key: 'maxMessagesPerRoom', read: count },
  { flag: 'max-connections', group: 'limits', key: 'maxConnections', read: count },
  { flag: 'max-connections-per-user', group: 'limits', key: 'maxConnectionsPerUser', read: count },
  { flag: 'max-messages-per-second', group: 'limits', key: 'maxMessagesPerSecond', read: count },
];
const EXPECTED_AGE = 'an age such as 3600, 90s, 30m, 12h or 7d, or off';
const EXPECTED_COUNT = 'a positive whole number, or off';

const SECONDS_PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(\d+)([smhd]?)$/;
const COUNT = /^\d+$/;

export class FlagError extends Error {}

/**
 * The PATCH body for these option values. Throws FlagError, naming the option, for a value that is
 * not `off` nor a positive whole number (an age: with an optional unit s, m, h or d), and when no
 * option is given at all.
 */
export function projectSetBody(
  values: Partial<Record<keyof typeof PROJECT_SET_OPTIONS, string>>,
): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (values.name !== undefined) body.name = values.name;
  const groups: Record<'retention' | 'limits', Record<string, number | null>> = {
    retention: {},
    limits: {},
  };
  let settings = false;
  for (const { flag, group, key, read } of SETTING_FLAGS) {
    const text = values[flag];
    if (text === undefined) continue;
    const value = text === 'off' ? null : read(text);
    if (value === undefined) {
      const expected = read === seconds ? EXPECTED_AGE : EXPECTED_COUNT;
      throw new FlagError(`--${flag} must be ${expected}, got "${text}"`);
    }
    groups[group][key] = value;
    settings = true;
  }
  if (settings) body.settings = groups;
  if (Object.keys(body).length === 0) {
    throw new FlagError(
      `projects set needs at least one of ${Object.keys(PROJECT_SET_OPTIONS)
        .map((flag) => `--${flag}`)
        .join(', ')}`,
    );
  }
  return body;
}

function positive(value: number): number | undefined {
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function count(text: string): number | undefined {
  return COUNT.test(text) ? positive(Number(text)) : undefined;
}

/** `3600`, `90s`, `30m`, `12h`, `7d` → seconds. */
function seconds(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (match === null) return undefined;
  return positive(Number(match[1]) * (SECONDS_PER_UNIT[match[2] || 's'] ?? 1));
}
