/**
 * The projects table's row, the same in both SQL stores, and the Project it holds; the rows of a
 * project's revocations, and the Revocations they make.
 */
import { noSettings, type Project, type ProjectSettings, type Revocations } from '../domain.js';

export interface ProjectRow {
  hash: string;
  name: string;
  jwt_secret: string;
  created_at: string;
  /** JSON text (SQLite) or the object the driver parsed from JSONB (PostgreSQL). */
  settings: unknown;
}

export function projectFromRow(row: ProjectRow): Project {
  return {
    hash: row.hash,
    name: row.name,
    jwtSecret: row.jwt_secret,
    createdAt: row.created_at,
    settings: settingsFromColumn(row.settings),
  };
}

/** What the settings column holds: JSON of exactly the known values. */
export function settingsColumn(settings: ProjectSettings): string {
  return JSON.stringify(settingsFromColumn(settings));
}

/**
 * The settings a column holds. Only this module writes the column, but a row written by an older
 * version (`{}`, or a group missing) or by hand must still give a usable project: every value that
 * is not a positive safe integer reads as null (no value of the project's own).
 */
export function settingsFromColumn(column: unknown): ProjectSettings {
  const stored = typeof column === 'string' ? parseJson(column) : column;
  const settings = noSettings();
  // The groups and names come from noSettings(), so a new setting needs no change here.
  for (const [group, values] of Object.entries(settings) as [string, Record<string, unknown>][]) {
    const given = member(stored, group);
    for (const name of Object.keys(values)) {
      const value = member(given, name);
      values[name] = isPositiveInteger(value) ? value : null;
    }
  }
  return settings;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function member(value: unknown, name: string): unknown {
  if (typeof value !== 'object' || value === null || !Object.hasOwn(value, name)) return undefined;
  return (value as Record<string, unknown>)[name];
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

/** A project-wide not-before (`sub` null) or one user's; bigints come as text from PostgreSQL. */
export interface RevocationRow {
  project: string;
  sub: string | null;
  not_before: number | string;
}

/** Each project's revocations from its rows; projects without rows are absent. */
export function revocationsFromRows(rows: readonly RevocationRow[]): Map<string, Revocations> {
  const found = new Map<string, { all: number | null; users: Map<string, number> }>();
  for (const row of rows) {
    let entry = found.get(row.project);
    if (entry === undefined) {
      entry = { all: null, users: new Map() };
      found.set(row.project, entry);
    }
    const notBefore = Number(row.not_before);
    if (row.sub === null) entry.all = notBefore;
    else entry.users.set(row.sub, notBefore);
  }
  return found;
}
