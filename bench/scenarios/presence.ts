/**
 * Presence (socket-base only: no other server has presence): the watchers join one room with
 * presence on, each ready once its snapshot came; then many connections, each its own user,
 * handshake and join that room (plain joins, counted as present all the same), a few hundred at a
 * time. Every such join is one `presence_join` to every watcher. Measured: the server's CPU per
 * connect + join from the first handshake until every watcher has all its events, the time until
 * then, and the events delivered per second. A watcher with any other number of `presence_join`
 * events than the joins fails the scenario.
 */
import { loopbackSource } from '../load/loopback.js';
import type { ConnSpec, FrameCount } from '../load/messages.js';
import type { LoadPool } from '../load/pool.js';
import { nowUs } from '../load/raw-ws.js';
import { Bystanders, cpuShare, disturbedNote } from './bounds.js';
import { round, type Scenario, sleep } from './types.js';

const ROOM = 'presence';
const WARMUP_ROOM = 'presence-warmup';
/** Connects made and closed first (one watcher sees them), so that the server's JIT is warm. */
const WARMUP_CONNECTS = 1000;
/** Lets the events the watchers cause each other arrive before their counters are reset. */
const SETTLE_MS = 500;
const POLL_MS = 100;
/** No event for this long, with some still missing: they are lost. */
const STALL_MS = 5000;
const EVENTS_LIMIT_MS = 60000;

interface Tally {
  /** Events counted by all the watchers. */
  events: number;
  /** Watchers with every event. */
  done: number;
  short: number;
  over: number;
  lastUs: number;
}

function tally(counts: (FrameCount | null)[], watchers: number, expected: number): Tally {
  const t: Tally = { events: 0, done: 0, short: 0, over: 0, lastUs: 0 };
  for (let i = 0; i < watchers; i++) {
    const count = counts[i]?.count ?? 0;
    t.events += count;
    if (count >= expected) t.done++;
    if (count < expected) t.short++;
    if (count > expected) t.over++;
    t.lastUs = Math.max(t.lastUs, counts[i]?.lastUs ?? 0);
  }
  return t;
}

/** Polls the watchers' counts until each has `expected` events, or they stall, or time is up. */
async function awaitEvents(pool: LoadPool, watchers: number, expected: number): Promise<Tally> {
  let current = tally(await pool.counts(), watchers, expected);
  let progress = current.events;
  let progressAt = Date.now();
  const deadline = Date.now() + EVENTS_LIMIT_MS;
  while (current.done < watchers && Date.now() < deadline) {
    if (current.events > progress) {
      progress = current.events;
      progressAt = Date.now();
    } else if (Date.now() - progressAt > STALL_MS) {
      break;
    }
    await sleep(POLL_MS);
    current = tally(await pool.counts(), watchers, expected);
  }
  return current;
}

export const presence: Scenario = {
  name: 'presence',
  title: 'presence',
  instances: () => 1,
  appliesTo: (server) => server.socketBase,
  async run({ server, target, pool, sizes, log }) {
    const [project] = await target.createProjects(1);
    if (project === undefined) throw new Error('no project');
    await sleep(500);
    const spec = (room: string, sub: string, index: number, watcher: boolean): ConnSpec => ({
      port: target.ports[0] ?? 0,
      room,
      roomKey: `0/${room}`,
      auth: { hash: project.hash, secret: project.secret, sub },
      localAddress: loopbackSource(index),
      ...(watcher ? { presence: true, countType: 'presence_join' } : {}),
    });
    const connect = async (specs: ConnSpec[], what: string) => {
      const summary = await pool.connect(server.protocol, specs, sizes.connectConcurrency);
      if (summary.ready < specs.length) {
        throw new Error(
          `only ${summary.ready} of ${specs.length} ${what} joined: ${summary.errors}`,
        );
      }
      return summary;
    };

    // Warm-up: joins into another room, one watcher there, closed again and not counted.
    const warmup = Math.min(WARMUP_CONNECTS, Math.ceil(sizes.presenceConnections / 5));
    await connect([spec(WARMUP_ROOM, 'warmup-watcher', 0, true)], 'warm-up watchers');
    await connect(
      Array.from({ length: warmup }, (_, i) => spec(WARMUP_ROOM, `warmup-${i}`, i + 1, false)),
      'warm-up connections',
    );
    await pool.closeAll();
    await sleep(500);

    const watcherCount = sizes.presenceWatchers;
    const expected = sizes.presenceConnections;
    const watchers = Array.from({ length: watcherCount }, (_, i) =>
      spec(ROOM, `watcher-${i}`, i, true),
    );
    const watched = await connect(watchers, 'watchers (with their snapshot)');
    log(`${watched.ready} watchers joined with presence in ${watched.elapsedMs} ms`);
    await sleep(SETTLE_MS);
    await pool.begin(1);
    const joiners = Array.from({ length: expected }, (_, i) =>
      spec(ROOM, `present-${i}`, watcherCount + i, false),
    );

    const bystanders = new Bystanders(target, pool);
    const cpu0 = target.cpuMs();
    const workers0 = pool.cpuMs();
    const t0 = nowUs();
    const summary = await connect(joiners, 'connections');
    const joinedMs = (nowUs() - t0) / 1000;
    const current = await awaitEvents(pool, watcherCount, expected);
    const cpuMs = target.cpuMs() - cpu0;
    const workers1 = pool.cpuMs();
    const t1 = nowUs();
    const foreignCpuPct = bystanders.pct();
    const share = cpuShare(cpuMs, workers0, workers1, (t1 - t0) / 1000);
    const allEventsMs = current.lastUs > t0 ? (current.lastUs - t0) / 1000 : undefined;
    log(
      `${summary.ready} joins in ${round(joinedMs, 0)} ms; ${current.events} of ` +
        `${watcherCount * expected} events in ${round(allEventsMs, 0)} ms, ` +
        `server ${round(cpuMs, 0)} ms cpu`,
    );
    if (current.short > 0 || current.over > 0) {
      throw new Error(
        `${current.events} presence_join events to ${watcherCount} watchers, not ` +
          `${watcherCount * expected}: ${current.short} watchers short, ${current.over} over`,
      );
    }
    return {
      figures: {
        foreignCpuPct: round(foreignCpuPct, 1),
        watchers: watcherCount,
        connections: summary.ready,
        events: current.events,
        cpuUsPerJoin: round((cpuMs * 1000) / summary.ready, 1),
        joinsPerSec: round(summary.ready / (joinedMs / 1000), 0),
        allEventsMs: round(allEventsMs, 1),
        eventsPerSec:
          allEventsMs === undefined ? null : round(current.events / (allEventsMs / 1000), 0),
        serverCpuPct: round(share.serverPct, 1),
        generatorCpuPct: round(share.generatorPct, 1),
        machineCpuPct: round(share.machinePct, 1),
      },
      clientBound: share.clientBound ? ['joinsPerSec', 'allEventsMs', 'eventsPerSec'] : [],
      notes: disturbedNote(foreignCpuPct),
    };
  },
};
