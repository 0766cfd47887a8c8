/**
 * Recovery (socket-base only: no other server recovers): the members of many rooms see a few
 * messages live and go away; while they are away messages are published into every room; their
 * sockets open again, and all of them rejoin at once with `since` = the highest `seq` each had
 * seen. Measured: the time until every member has received exactly what it missed, each once and
 * in order, and the server's CPU per replayed message. A message lost, repeated or out of order,
 * or a join not recovered, fails the scenario.
 */
import { loopbackSource } from '../load/loopback.js';
import type { ConnSpec, Position } from '../load/messages.js';
import { nowUs } from '../load/raw-ws.js';
import { Bystanders, cpuShare, disturbedNote } from './bounds.js';
import { round, type Scenario, type ScenarioContext, sleep } from './types.js';

/** Well below what both socket-base variants sustain in chat: the logs are written, not raced. */
const PUBLISH_RATE = 5000;
/** How long the publishers' own deliveries may take to come back before a round counts as lost. */
const DRAIN_LIMIT_MS = 15000;
/** The reopened sockets' handshakes are done before the rejoin: only the replay is measured. */
const SETTLE_MS = 500;
const POLL_MS = 100;
/** No delivery for this long, with some still missing: they are lost. */
const STALL_MS = 5000;
const CATCH_UP_LIMIT_MS = 60000;

interface Room {
  index: number;
  name: string;
  key: string;
}

function rooms(count: number): Room[] {
  return Array.from({ length: count }, (_, index) => ({
    index,
    name: `recovery-${index}`,
    key: `0/${index}`,
  }));
}

/** Publishes `perRoom` messages from each sender, then waits until every open member has them. */
async function publishRound(
  { pool, sizes }: ScenarioContext,
  step: number,
  perRoom: number,
  senders: number[],
): Promise<void> {
  const total = perRoom * senders.length;
  if (total === 0) return;
  // Rate × duration is exactly the total: each sender sends exactly perRoom.
  const durationMs = Math.max(100, Math.ceil((total * 1000) / PUBLISH_RATE));
  await pool.begin(step);
  const { sent } = await pool.publish(
    step,
    (total * 1000) / durationMs,
    durationMs,
    senders,
    sizes.payloadBytes,
  );
  const deadline = Date.now() + DRAIN_LIMIT_MS;
  for (;;) {
    const counts = await pool.collect();
    let missing = 0;
    for (const [key, room] of counts.rooms) {
      missing += Math.max(0, (sent.get(key) ?? 0) * room.open - room.received);
    }
    if (missing === 0) return;
    if (Date.now() > deadline) throw new Error(`${missing} live deliveries of round ${step} lost`);
    await sleep(50);
  }
}

/** The highest `seq` each connection was given (-1 for one that does not follow `seq`). */
function highest(positions: (Position | null)[]): number[] {
  return positions.map((p) => p?.highest ?? -1);
}

interface Tally {
  expected: number;
  replayed: number;
  lost: number;
  duplicated: number;
  notRecovered: number;
  wrongLast: number;
  done: number;
  lastUs: number;
}

/** What the rejoined members have received against what each one missed. */
function tally(
  positions: (Position | null)[],
  from: number,
  since: number[],
  roomLast: (member: number) => number,
): Tally {
  const t: Tally = {
    expected: 0,
    replayed: 0,
    lost: 0,
    duplicated: 0,
    notRecovered: 0,
    wrongLast: 0,
    done: 0,
    lastUs: 0,
  };
  since.forEach((start, member) => {
    const p = positions[from + member] ?? null;
    const last = roomLast(member);
    const expected = last - start;
    t.expected += expected;
    if (p === null) {
      t.lost += expected;
      return;
    }
    t.replayed += Math.min(p.replayed, expected);
    t.lost += Math.max(0, expected - p.replayed);
    t.duplicated += p.repeated + Math.max(0, p.replayed - expected);
    if (p.joinedSeq !== null && p.recovered !== true) t.notRecovered++;
    if (p.joinedSeq !== null && p.joinedSeq !== last) t.wrongLast++;
    if (p.joinedSeq !== null && p.highest >= last) t.done++;
    t.lastUs = Math.max(t.lastUs, p.lastUs);
  });
  return t;
}

export const recovery: Scenario = {
  name: 'recovery',
  title: 'recovery',
  instances: () => 1,
  appliesTo: (server) => server.socketBase,
  async run(context) {
    const { server, target, pool, sizes, log } = context;
    const [project] = await target.createProjects(1);
    if (project === undefined) throw new Error('no project');
    const port = target.ports[0] ?? 0;
    const all = rooms(sizes.recoveryRooms);
    const memberCount = all.length * sizes.recoveryMembers;
    const roomOf = (member: number): Room => {
      const room = all[Math.floor(member / sizes.recoveryMembers)];
      if (room === undefined) throw new Error(`member ${member} has no room`);
      return room;
    };
    const spec = (room: Room, sub: string, index: number, extra: Partial<ConnSpec>): ConnSpec => ({
      port,
      room: room.name,
      roomKey: room.key,
      auth: { hash: project.hash, secret: project.secret, sub },
      localAddress: loopbackSource(index),
      ...extra,
    });
    // Publishers first (connections 0..rooms-1, one per room), members after them.
    const publishers = all.map((room) =>
      spec(room, `publisher-${room.index}`, room.index, { followSeq: true }),
    );
    const senders = all.map((room) => room.index);
    const members = Array.from({ length: memberCount }, (_, m) =>
      spec(roomOf(m), `member-${m}`, all.length + m, { followSeq: true }),
    );
    const connect = async (specs: ConnSpec[], what: string): Promise<void> => {
      const summary = await pool.connect(server.protocol, specs, sizes.connectConcurrency);
      if (summary.ready < specs.length) {
        throw new Error(
          `only ${summary.ready} of ${specs.length} ${what} connected: ${summary.errors}`,
        );
      }
      log(`${summary.ready} ${what} connected in ${summary.elapsedMs} ms`);
    };

    await connect([...publishers, ...members], 'publishers and members');
    await publishRound(context, 1, sizes.recoverySeen, senders);
    // What each member saw last is where it will recover from, as a real client would.
    const since = highest(await pool.positions()).slice(all.length);
    await pool.closeAll();

    await connect(publishers, 'publishers');
    await publishRound(context, 2, sizes.recoveryMissed, senders);
    // Each publisher has its own deliveries back: its highest seq is the room's LAST.
    const lasts = highest(await pool.positions());
    const roomLast = (member: number): number => lasts[roomOf(member).index] ?? 0;
    const rejoining = members.map((m, i) => ({ ...m, rejoinSince: since[i] ?? 0 }));
    await connect(rejoining, 'members (reopened, not joined)');
    await sleep(SETTLE_MS);

    const bystanders = new Bystanders(target, pool);
    const cpu0 = target.cpuMs();
    const workers0 = pool.cpuMs();
    const t0 = nowUs();
    const { joins, sentUs } = await pool.rejoin();
    let current = tally(await pool.positions(), all.length, since, roomLast);
    let progress = -1;
    let progressAt = Date.now();
    const deadline = Date.now() + CATCH_UP_LIMIT_MS;
    while (current.done < memberCount && Date.now() < deadline) {
      if (current.replayed + current.duplicated > progress) {
        progress = current.replayed + current.duplicated;
        progressAt = Date.now();
      } else if (Date.now() - progressAt > STALL_MS) {
        break;
      }
      await sleep(POLL_MS);
      current = tally(await pool.positions(), all.length, since, roomLast);
    }
    const cpuMs = target.cpuMs() - cpu0;
    const workers1 = pool.cpuMs();
    const t1 = nowUs();
    const others = bystanders.read();
    const share = cpuShare(cpuMs, workers0, workers1, (t1 - t0) / 1000);
    const catchUpMs = current.lastUs > sentUs ? (current.lastUs - sentUs) / 1000 : undefined;
    const planned = memberCount * sizes.recoveryMissed;
    log(
      `${joins} rejoins: ${current.replayed} of ${current.expected} replayed in ` +
        `${round(catchUpMs, 0)} ms, server ${round(cpuMs, 0)} ms cpu, lost ${current.lost}, ` +
        `duplicated ${current.duplicated}, not recovered ${current.notRecovered}`,
    );
    const violations = [
      current.lost > 0 ? `${current.lost} lost` : '',
      current.duplicated > 0 ? `${current.duplicated} duplicated or out of order` : '',
      current.notRecovered > 0 ? `${current.notRecovered} joins not recovered` : '',
      current.wrongLast > 0
        ? `${current.wrongLast} joins with a seq other than the room's LAST`
        : '',
    ].filter((v) => v !== '');
    if (violations.length > 0) {
      throw new Error(
        `replay of ${current.expected} messages to ${memberCount} members: ${violations.join(', ')}`,
      );
    }
    const foreignCpuPct = others.foreignPct;
    return {
      figures: {
        foreignCpuPct: round(foreignCpuPct, 1),
        members: memberCount,
        rooms: all.length,
        replayed: current.replayed,
        catchUpMs: round(catchUpMs, 1),
        replayedPerSec:
          catchUpMs === undefined ? null : round(current.replayed / (catchUpMs / 1000), 0),
        cpuUsPerReplayed: round((cpuMs * 1000) / current.expected, 2),
        servicesCpuUsPerReplayed: round((others.servicesMs * 1000) / current.expected, 2),
        lostTotal: current.lost,
        duplicated: current.duplicated,
        serverCpuPct: round(share.serverPct, 1),
        generatorCpuPct: round(share.generatorPct, 1),
        machineCpuPct: round(share.machinePct, 1),
      },
      clientBound: share.clientBound ? ['catchUpMs', 'replayedPerSec'] : [],
      notes: [
        ...(current.expected === planned
          ? []
          : [
              `${current.expected} messages missed in all, not ${planned}: a publisher fell behind`,
            ]),
        ...disturbedNote(foreignCpuPct),
      ],
    };
  },
};
