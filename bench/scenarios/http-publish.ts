/**
 * HTTP publish (socket-base only): `POST /api/message` on keep-alive connections from every worker,
 * one member listening in the room; requests per second, server CPU per request, and the
 * publish→receive latency of the listener.
 */
import { Histogram } from '../load/histogram.js';
import { nowUs } from '../load/raw-ws.js';
import { Bystanders, cpuShare, disturbedNote } from './bounds.js';
import { round, type Scenario, sleep } from './types.js';

const ROOM = 'http-room';
const ROOM_KEY = '0/http';

export const httpPublish: Scenario = {
  name: 'http',
  title: 'HTTP publish',
  instances: () => 1,
  appliesTo: (server) => server.socketBase,
  async run({ server, target, pool, sizes, log }) {
    const [project] = await target.createProjects(1);
    if (project === undefined) throw new Error('no project');
    const port = target.ports[0] ?? 0;
    const listener = await pool.connect(
      server.protocol,
      [{ port, room: ROOM, roomKey: ROOM_KEY, auth: { ...project, sub: 'listener' } }],
      1,
    );
    if (listener.ready !== 1) throw new Error(`listener did not join: ${listener.errors}`);
    const concurrency = Math.max(1, Math.ceil(sizes.httpConcurrency / pool.size));
    const common = {
      port,
      auth: { hash: project.hash, secret: project.secret, sub: 'http' },
      room: ROOM,
      roomKey: ROOM_KEY,
      concurrency,
      payloadBytes: sizes.payloadBytes,
    };
    await pool.begin(1);
    await pool.http({ ...common, step: 1, durationMs: Math.min(1000, sizes.httpMs) });
    await pool.begin(2);
    const bystanders = new Bystanders(target, pool);
    const cpu0 = target.cpuMs();
    const workers0 = pool.cpuMs();
    const t0 = nowUs();
    const replies = await pool.http({ ...common, step: 2, durationMs: sizes.httpMs });
    const cpuPublished = target.cpuMs();
    const workers1 = pool.cpuMs();
    const t1 = nowUs();
    const ok = replies.reduce((sum, r) => sum + r.ok, 0);
    const failed = replies.reduce((sum, r) => sum + r.failed, 0);
    let counts = await pool.collect();
    const deadline = Date.now() + 5000;
    while ((counts.rooms.get(ROOM_KEY)?.received ?? 0) < ok && Date.now() < deadline) {
      await sleep(50);
      counts = await pool.collect();
    }
    const cpu1 = target.cpuMs();
    const received = counts.rooms.get(ROOM_KEY)?.received ?? 0;
    const requests = new Histogram();
    for (const reply of replies) requests.add(reply.latency);
    const statuses: Record<string, number> = {};
    for (const reply of replies) {
      for (const [status, n] of Object.entries(reply.statuses)) {
        statuses[status] = (statuses[status] ?? 0) + n;
      }
    }
    const elapsedMs = (t1 - t0) / 1000;
    const share = cpuShare(cpuPublished - cpu0, workers0, workers1, elapsedMs);
    const quantile = (histogram: Histogram, q: number): number | null =>
      round((histogram.quantile(q) ?? Number.NaN) / 1000, 3);
    log(`${ok} requests in ${round(elapsedMs, 0)} ms, ${received} delivered, ${failed} failed`);
    const foreignCpuPct = bystanders.pct();
    return {
      figures: {
        foreignCpuPct: round(foreignCpuPct, 1),
        requestsPerSec: round(ok / (elapsedMs / 1000), 0),
        failed,
        cpuUsPerRequest: ok > 0 ? round(((cpu1 - cpu0) * 1000) / ok, 1) : null,
        requestP50Ms: quantile(requests, 0.5),
        requestP99Ms: quantile(requests, 0.99),
        deliveryP50Ms: quantile(counts.latency, 0.5),
        deliveryP99Ms: quantile(counts.latency, 0.99),
        deliveryMaxMs: round(counts.latency.maxUs / 1000, 3),
        lostTotal: Math.max(0, ok - received),
        serverCpuPct: round(share.serverPct, 1),
        generatorCpuPct: round(share.generatorPct, 1),
        machineCpuPct: round(share.machinePct, 1),
      },
      clientBound: share.clientBound ? ['requestsPerSec'] : [],
      notes: [
        ...(failed > 0 ? [`statuses: ${JSON.stringify(statuses)}`] : []),
        ...disturbedNote(foreignCpuPct),
      ],
    };
  },
};
