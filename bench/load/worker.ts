/**
 * One load-generator process: holds its share of the connections, publishes on command at a given
 * rate, posts over HTTP, and counts what it receives (per room, for the current step) with the
 * publish→receive latency. Started by the controller with child_process.fork; talks over IPC.
 */
import { Agent, request } from 'node:http';
import {
  type Control,
  framingOf,
  joinedPosition,
  joinPresenceFrame,
  joinSinceFrame,
  payloadOf,
  readSeq,
  readStamp,
  stamp,
  TILDE,
} from './framing.js';
import { Histogram } from './histogram.js';
import { signHs256 } from './jwt.js';
import type {
  CollectReply,
  Command,
  ConnectCommand,
  ConnectReply,
  ConnSpec,
  CountsReply,
  HttpCommand,
  HttpReply,
  PositionsReply,
  Protocol,
  PublishCommand,
  PublishReply,
  RejoinReply,
  Reply,
  RoomCount,
} from './messages.js';
import { SeqFollower } from './positions.js';
import { nowUs, RawWs } from './raw-ws.js';

const HOST = '127.0.0.1';
const MAX_ERRORS_KEPT = 5;

interface Conn {
  readonly spec: ConnSpec;
  ws: RawWs | undefined;
  ready: boolean;
  closed: boolean;
  /** We closed it ourselves: not counted among the server's closes. */
  closing: boolean;
  /** Deliveries of the current step. */
  received: number;
  /** Only for connections asked to follow `seq`. */
  follower: SeqFollower | undefined;
  /** Only for connections asked to count a frame type. */
  counter: Counter | undefined;
}

/** Frames of one type counted by a connection: found by their `"type":"…"`, never parsed. */
interface Counter {
  readonly pattern: Buffer;
  count: number;
  lastUs: number;
}

function counterOf(spec: ConnSpec): Counter | undefined {
  if (spec.countType === undefined) return undefined;
  return { pattern: Buffer.from(`"type":${JSON.stringify(spec.countType)}`), count: 0, lastUs: 0 };
}

function joinText(spec: ConnSpec): string {
  return spec.presence === true
    ? joinPresenceFrame(spec.room)
    : framingOf(protocol).join(spec.room);
}

let protocol: Protocol = 'plain';
let conns: Conn[] = [];
let currentStep = -1;
let late = 0;
let lastDeliveryUs = 0;
const latency = new Histogram();
const closes: Record<string, number> = {};
const errors: Record<string, number> = {};

function bump(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

function onText(conn: Conn, data: Buffer, start: number, end: number, now: number): void {
  const counter = conn.counter;
  if (counter !== undefined) {
    const found = data.indexOf(counter.pattern, start);
    if (found !== -1 && found + counter.pattern.length <= end) {
      counter.count++;
      counter.lastUs = now;
      return;
    }
  }
  const at = data.indexOf(TILDE, start);
  if (at !== -1 && at < end && readStamp(data, at, end)) {
    if (stamp.step === currentStep) {
      conn.received++;
      latency.record(now - stamp.sentUs);
      lastDeliveryUs = now;
    } else {
      late++;
    }
    conn.follower?.delivered(readSeq(data, at, end), now);
    return;
  }
  const framing = framingOf(protocol);
  const text = data.toString('utf8', start, end);
  const control: Control | { kind: 'join' } = framing.control(text);
  switch (control.kind) {
    case 'join':
      conn.ws?.sendText(joinText(conn.spec));
      return;
    case 'reply':
      conn.ws?.sendText(control.text);
      return;
    case 'connected':
      // A rejoining connection is ready once it is open: its join comes with the `rejoin` command.
      if (conn.spec.rejoinSince !== undefined) conn.ready = true;
      return;
    case 'joined': {
      // A presence join is ready with its snapshot, which comes next.
      if (conn.spec.presence !== true) conn.ready = true;
      const position = conn.follower === undefined ? undefined : joinedPosition(text);
      if (position !== undefined) conn.follower?.joined(position.seq, position.recovered);
      return;
    }
    case 'presence':
      if (conn.spec.presence === true) conn.ready = true;
      return;
    case 'error':
      bump(errors, control.message);
      return;
    default:
      return;
  }
}

/** Opens one connection and resolves once its join is answered (or rejects with the reason). */
function open(spec: ConnSpec, timeoutMs: number): Promise<Conn> {
  const framing = framingOf(protocol);
  const conn: Conn = {
    spec,
    ws: undefined,
    ready: false,
    closed: false,
    closing: false,
    received: 0,
    follower:
      spec.followSeq === true || spec.rejoinSince !== undefined
        ? new SeqFollower(spec.rejoinSince)
        : undefined,
    counter: counterOf(spec),
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === undefined) resolve(conn);
      else reject(new Error(error));
    };
    const timer = setTimeout(() => {
      conn.closing = true;
      conn.ws?.destroy();
      settle('timed out');
    }, timeoutMs);
    conn.ws = new RawWs(
      {
        host: HOST,
        port: spec.port,
        path: framing.path(spec.auth),
        localAddress: spec.localAddress,
      },
      {
        onOpen: () => {
          if (framing.joinOnOpen && spec.rejoinSince === undefined) {
            conn.ws?.sendText(joinText(spec));
          }
        },
        onText: (data, start, end, now) => {
          onText(conn, data, start, end, now);
          if (conn.ready) settle(undefined);
        },
        onClose: (code, handshakeFailed) => {
          conn.closed = true;
          if (!settled) {
            settle(handshakeFailed ?? `closed with ${code} before joining`);
            return;
          }
          if (!conn.closing) bump(closes, String(code));
        },
      },
    );
  });
}

async function connect(command: ConnectCommand): Promise<ConnectReply> {
  protocol = command.protocol;
  const started = Date.now();
  const failures: string[] = [];
  let ready = 0;
  let next = 0;
  // Each connection keeps the slot of its spec, so that sender indexes match the controller's list.
  const base = conns.length;
  const lane = async (): Promise<void> => {
    while (next < command.conns.length) {
      const index = next++;
      const spec = command.conns[index];
      if (spec === undefined) break;
      try {
        conns[base + index] = await open(spec, command.timeoutMs);
        ready++;
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
        conns[base + index] = {
          spec,
          ws: undefined,
          ready: false,
          closed: true,
          closing: true,
          received: 0,
          follower: undefined,
          counter: undefined,
        };
      }
    }
  };
  const lanes = Math.max(1, Math.min(command.concurrency, command.conns.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  const distinct = [...new Set(failures)].slice(0, MAX_ERRORS_KEPT);
  return {
    ready,
    failed: failures.length,
    errors: distinct,
    elapsedMs: Date.now() - started,
  };
}

function publish(command: PublishCommand): Promise<PublishReply> {
  const framing = framingOf(protocol);
  const senders = command.senders
    .map((index) => conns[index])
    .filter((conn): conn is Conn => conn !== undefined);
  const sent: Record<string, number> = {};
  const started = nowUs();
  const durationUs = command.durationMs * 1000;
  // At most 100 ms worth of messages in one tick: a worker that falls further behind is counted
  // as such (client-bound) rather than bursting to catch up.
  const perTickCap = Math.max(1, Math.ceil(command.rate * 0.1));
  let scheduled = 0;
  let behind = 0;
  let turn = 0;
  return new Promise((resolve) => {
    if (senders.length === 0 || command.rate <= 0) {
      resolve({ sent, elapsedMs: 0, behind: 0 });
      return;
    }
    const timer = setInterval(() => {
      const now = nowUs();
      const elapsed = Math.min(now - started, durationUs);
      let due = Math.floor((command.rate * elapsed) / 1e6) - scheduled;
      scheduled += due;
      if (due > perTickCap) {
        behind += due - perTickCap;
        due = perTickCap;
      }
      for (let i = 0; i < due; i++) {
        const conn = senders[turn++ % senders.length];
        if (conn === undefined || conn.closed || conn.ws === undefined) continue;
        const payload = payloadOf(command.step, nowUs(), command.payloadBytes);
        conn.ws.sendText(framing.message(conn.spec.room, payload));
        bump(sent, conn.spec.roomKey);
      }
      if (now - started >= durationUs) {
        clearInterval(timer);
        resolve({ sent, elapsedMs: (nowUs() - started) / 1000, behind });
      }
    }, 1);
  });
}

function http(command: HttpCommand): Promise<HttpReply> {
  const agent = new Agent({ keepAlive: true, maxSockets: command.concurrency });
  const token = signHs256(command.auth.secret, command.auth.sub);
  const requestLatency = new Histogram();
  const statuses: Record<string, number> = {};
  const sent: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  const started = nowUs();
  const deadline = started + command.durationMs * 1000;
  const post = (): Promise<void> =>
    new Promise((resolve) => {
      const sentUs = nowUs();
      const body = JSON.stringify({
        room: command.room,
        payload: payloadOf(command.step, sentUs, command.payloadBytes),
      });
      const req = request(
        {
          host: HOST,
          port: command.port,
          method: 'POST',
          path: '/api/message',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'x-hash': command.auth.hash,
            authorization: `Bearer ${token}`,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            requestLatency.record(nowUs() - sentUs);
            bump(statuses, String(res.statusCode));
            if (res.statusCode === 200) {
              ok++;
              bump(sent, command.roomKey);
            } else {
              failed++;
            }
            resolve();
          });
        },
      );
      req.on('error', (error) => {
        failed++;
        bump(statuses, error.message);
        resolve();
      });
      req.end(body);
    });
  const loop = async (): Promise<void> => {
    while (nowUs() < deadline) await post();
  };
  return Promise.all(Array.from({ length: command.concurrency }, loop)).then(() => {
    agent.destroy();
    return {
      sent,
      ok,
      failed,
      statuses,
      latency: requestLatency.toData(),
      elapsedMs: (nowUs() - started) / 1000,
    };
  });
}

function collect(): CollectReply {
  const rooms: Record<string, RoomCount> = {};
  for (const conn of conns) {
    if (!conn.ready || conn.closed) continue;
    let room = rooms[conn.spec.roomKey];
    if (room === undefined) {
      room = { open: 0, received: 0 };
      rooms[conn.spec.roomKey] = room;
    }
    room.open++;
    room.received += conn.received;
  }
  return {
    rooms,
    latency: latency.toData(),
    late,
    closes: { ...closes },
    errors: { ...errors },
    lastDeliveryUs,
  };
}

/** Every rejoining connection sends its join with `since` now, in one turn. */
function rejoin(): RejoinReply {
  const sentUs = nowUs();
  let joins = 0;
  for (const conn of conns) {
    const since = conn.spec.rejoinSince;
    if (since === undefined || conn.closed || conn.ws === undefined) continue;
    conn.ws.sendText(joinSinceFrame(conn.spec.room, since));
    joins++;
  }
  return { joins, sentUs };
}

function positions(): PositionsReply {
  return { conns: conns.map((conn) => conn.follower?.position() ?? null) };
}

function counts(): CountsReply {
  return {
    conns: conns.map(({ counter }) =>
      counter === undefined ? null : { count: counter.count, lastUs: counter.lastUs },
    ),
  };
}

async function closeAll(): Promise<void> {
  const closing = conns.filter((conn) => !conn.closed && conn.ws !== undefined);
  for (const conn of closing) {
    conn.closing = true;
    conn.ws?.close();
  }
  const deadline = Date.now() + 5000;
  while (closing.some((conn) => !conn.closed) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const conn of closing) if (!conn.closed) conn.ws?.destroy();
  conns = [];
}

async function handle(command: Command): Promise<Reply> {
  switch (command.cmd) {
    case 'connect':
      return { id: command.id, ok: true, result: await connect(command) };
    case 'begin':
      currentStep = command.step;
      late = 0;
      lastDeliveryUs = 0;
      latency.reset();
      for (const conn of conns) {
        conn.received = 0;
        if (conn.counter !== undefined) {
          conn.counter.count = 0;
          conn.counter.lastUs = 0;
        }
      }
      return { id: command.id, ok: true, result: null };
    case 'publish':
      return { id: command.id, ok: true, result: await publish(command) };
    case 'http':
      return { id: command.id, ok: true, result: await http(command) };
    case 'collect':
      return { id: command.id, ok: true, result: collect() };
    case 'rejoin':
      return { id: command.id, ok: true, result: rejoin() };
    case 'positions':
      return { id: command.id, ok: true, result: positions() };
    case 'counts':
      return { id: command.id, ok: true, result: counts() };
    case 'close':
      await closeAll();
      return { id: command.id, ok: true, result: null };
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${JSON.stringify(unknown)}`);
    }
  }
}

process.on('message', (message: Command) => {
  handle(message).then(
    (reply) => process.send?.(reply),
    (error: unknown) =>
      process.send?.({
        id: message.id,
        ok: false,
        error: error instanceof Error ? error.message : String(error),
      } satisfies Reply),
  );
});
process.on('disconnect', () => process.exit(0));
