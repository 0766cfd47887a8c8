/**
 * What a token's optional claims allow: `rooms` (patterns: an exact name, or a prefix followed by
 * `*`; `"*"` is every room), `publish` and `broadcast` (booleans, true by default). Compiled once
 * per verified token and kept with it, so that a frame asks a Set and a short list, never parses.
 * Pure: imports nothing.
 */

export class RoomPermissions {
  /** Every room (no `rooms` claim, or a `"*"` pattern): the check is one field read. */
  readonly #all: boolean;
  readonly #exact: ReadonlySet<string>;
  /** Prefixes of the `prefix*` patterns, none of which starts with another (the shorter covers it). */
  readonly #prefixes: readonly string[];
  readonly publish: boolean;
  readonly broadcast: boolean;

  private constructor(
    all: boolean,
    exact: ReadonlySet<string>,
    prefixes: readonly string[],
    publish: boolean,
    broadcast: boolean,
  ) {
    this.#all = all;
    this.#exact = exact;
    this.#prefixes = prefixes;
    this.publish = publish;
    this.broadcast = broadcast;
  }

  /** A token with none of the claims: one shared object, so that such tokens allocate nothing. */
  static readonly UNRESTRICTED = new RoomPermissions(true, new Set(), [], true, true);

  /**
   * The claims of a verified payload compiled, or undefined when one has the wrong shape (`rooms`
   * not an array of strings, `publish`/`broadcast` not booleans): the token is then invalid. A
   * claim that is `null` counts as absent, as every optional field of the contract does.
   */
  static fromClaims(claims: {
    rooms?: unknown;
    publish?: unknown;
    broadcast?: unknown;
  }): RoomPermissions | undefined {
    const { rooms, publish, broadcast } = claims;
    if (!isOptionalBoolean(publish) || !isOptionalBoolean(broadcast)) return undefined;
    const mayPublish = publish !== false;
    const mayBroadcast = broadcast !== false;
    if (rooms === undefined || rooms === null) {
      return mayPublish && mayBroadcast
        ? RoomPermissions.UNRESTRICTED
        : new RoomPermissions(true, EMPTY, [], mayPublish, mayBroadcast);
    }
    if (!Array.isArray(rooms)) return undefined;
    const exact = new Set<string>();
    const prefixes: string[] = [];
    for (const pattern of rooms as unknown[]) {
      if (typeof pattern !== 'string') return undefined;
      if (pattern.endsWith('*')) prefixes.push(pattern.slice(0, -1));
      else exact.add(pattern);
    }
    const kept = minimalPrefixes(prefixes);
    if (kept[0] === '') {
      return mayPublish && mayBroadcast
        ? RoomPermissions.UNRESTRICTED
        : new RoomPermissions(true, EMPTY, [], mayPublish, mayBroadcast);
    }
    // An exact name that a prefix covers is checked by the prefix already.
    for (const name of exact) if (startsWithAny(name, kept)) exact.delete(name);
    return new RoomPermissions(false, exact, kept, mayPublish, mayBroadcast);
  }

  /** Whether the token may join, publish to, read the history and see the presence of `room`. */
  allows(room: string): boolean {
    return this.#all || this.#exact.has(room) || startsWithAny(room, this.#prefixes);
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function isOptionalBoolean(value: unknown): boolean {
  return value === undefined || value === null || typeof value === 'boolean';
}

function startsWithAny(room: string, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) if (room.startsWith(prefix)) return true;
  return false;
}

/** Sorted, without duplicates and without any prefix that a shorter one of the list covers. */
function minimalPrefixes(prefixes: string[]): string[] {
  const sorted = [...new Set(prefixes)].sort();
  const kept: string[] = [];
  // In sorted order a prefix comes right before every string it is a prefix of.
  for (const prefix of sorted) {
    const last = kept[kept.length - 1];
    if (last === undefined || !prefix.startsWith(last)) kept.push(prefix);
  }
  return kept;
}
