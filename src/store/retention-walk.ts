/**
 * What the SQLite and PostgreSQL stores share in purging by count: finding the rooms that hold
 * more than their project's `maxMessagesPerRoom`, a bounded number per call, resuming where the
 * previous call stopped, so that a round of calls looks at each room once.
 */

/** A project whose rooms keep only their newest `keep` messages. */
export interface CountRule {
  project: string;
  keep: number;
}

/** A room with messages beyond its newest `keep`: those with `seq` ≤ `through`. */
export interface OverfullRoom {
  project: string;
  room: string;
  through: number;
}

/** What one look at a project's rooms, from a room on, found. */
export interface WalkStep {
  overfull: OverfullRoom[];
  /** The last room looked at (undefined when there was none). */
  lastRoom: string | undefined;
  /** Whether the project has no room after `lastRoom`. */
  done: boolean;
}

/**
 * Looks at the rooms of `rule.project` after `afterRoom` (from its first room when undefined), in
 * the store's order of room names, and answers at most `wanted` overfull ones.
 */
export type LookAtRooms = (
  rule: CountRule,
  afterRoom: string | undefined,
  wanted: number,
) => Promise<WalkStep>;

export interface Collected {
  rooms: OverfullRoom[];
  /**
   * Moves the walk past every room collected: to be called once they were purged whole (fewer
   * rows removed than allowed). Without it the next call looks at them again.
   */
  advance(): void;
}

interface Position {
  project: string;
  /** The last room looked at; undefined: the project's rooms from the first. */
  afterRoom: string | undefined;
}

export class OverfullRoomWalk {
  /** Where the next call begins; undefined: at the first project. */
  #position: Position | undefined;

  /** Collects up to `wanted` overfull rooms of the projects `rules` name, from where it stopped. */
  async collect(
    rules: readonly CountRule[],
    wanted: number,
    look: LookAtRooms,
  ): Promise<Collected> {
    // Code-unit order of the hashes, the same in every store: the walk never compares in SQL.
    const sorted = [...rules].sort((a, b) =>
      a.project < b.project ? -1 : +(a.project > b.project),
    );
    const from = this.#position;
    let index = from ? sorted.findIndex((rule) => rule.project >= from.project) : 0;
    let afterRoom = from && sorted[index]?.project === from.project ? from.afterRoom : undefined;
    const rooms: OverfullRoom[] = [];
    let next: Position | undefined;
    while (index >= 0 && index < sorted.length) {
      const rule = sorted[index] as CountRule;
      const step = await look(rule, afterRoom, wanted - rooms.length);
      const found = step.overfull.slice(0, wanted - rooms.length);
      rooms.push(...found);
      if (rooms.length >= wanted) {
        // What follows the last room collected is still to be looked at.
        next = { project: rule.project, afterRoom: found.at(-1)?.room ?? afterRoom };
        break;
      }
      if (step.done || step.lastRoom === undefined) {
        index++;
        afterRoom = undefined;
      } else {
        afterRoom = step.lastRoom;
      }
    }
    return {
      rooms,
      advance: () => {
        // Past the last project the next round begins at the first one.
        this.#position = next;
      },
    };
  }
}
