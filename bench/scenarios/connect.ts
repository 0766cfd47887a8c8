/** Connect: 5,000 handshakes + join, each with its own JWT, after a warm-up; server CPU per connect. */
import { loopbackSource } from '../load/loopback.js';
import type { ConnSpec } from '../load/messages.js';
import { nowUs } from '../load/raw-ws.js';
import { Bystanders, cpuShare, disturbedNote } from './bounds.js';
import { round, type Scenario, sleep } from './types.js';

/** Connects made and closed before the measured ones, so that every server's JIT is warm. */
const WARMUP_CONNECTS = 1000;

export const connectScenario: Scenario = {
  name: 'connect',
  title: 'connect',
  instances: () => 1,
  appliesTo: () => true,
  async run({ server, target, pool, sizes, log }) {
    const [project] = await target.createProjects(1);
    await sleep(500);
    const spec = (i: number, sub: string): ConnSpec => ({
      port: target.ports[0] ?? 0,
      room: `connect-${i % 500}`,
      roomKey: `0/${i % 500}`,
      auth:
        server.socketBase && project !== undefined
          ? { hash: project.hash, secret: project.secret, sub }
          : undefined,
      localAddress: loopbackSource(i),
    });
    // Every server's JIT warms up on connects that are not counted (closed again): the figure is
    // the steady cost of a connect, not of compiling the server's code on its first ones.
    const warmup = Math.min(WARMUP_CONNECTS, Math.ceil(sizes.connectConnections / 5));
    await pool.connect(
      server.protocol,
      Array.from({ length: warmup }, (_, i) => spec(i, `warmup-${i}`)),
      sizes.connectConcurrency,
    );
    await pool.closeAll();
    await sleep(500);
    const specs: ConnSpec[] = Array.from({ length: sizes.connectConnections }, (_, i) =>
      spec(i, `connect-${i}`),
    );
    const bystanders = new Bystanders(target, pool);
    const cpu0 = target.cpuMs();
    const workers0 = pool.cpuMs();
    const t0 = nowUs();
    const summary = await pool.connect(server.protocol, specs, sizes.connectConcurrency);
    const cpu1 = target.cpuMs();
    const workers1 = pool.cpuMs();
    const t1 = nowUs();
    const elapsedMs = (t1 - t0) / 1000;
    const share = cpuShare(cpu1 - cpu0, workers0, workers1, elapsedMs);
    log(
      `${summary.ready} connects in ${round(elapsedMs, 0)} ms, server ${round(cpu1 - cpu0, 0)} ms cpu`,
    );
    if (summary.ready < specs.length * 0.99) {
      throw new Error(`only ${summary.ready} of ${specs.length} connected: ${summary.errors}`);
    }
    const foreignCpuPct = bystanders.pct();
    return {
      figures: {
        foreignCpuPct: round(foreignCpuPct, 1),
        connections: summary.ready,
        failed: summary.failed,
        cpuUsPerConnect: round(((cpu1 - cpu0) * 1000) / summary.ready, 1),
        connectsPerSec: round(summary.ready / (elapsedMs / 1000), 0),
        serverCpuPct: round(((cpu1 - cpu0) * 100) / elapsedMs, 1),
        generatorCpuPct: round(share.generatorPct, 1),
        machineCpuPct: round(share.machinePct, 1),
      },
      clientBound: share.clientBound ? ['connectsPerSec'] : [],
      notes: [
        ...(summary.failed > 0 ? [`${summary.failed} failed: ${summary.errors}`] : []),
        ...disturbedNote(foreignCpuPct),
      ],
    };
  },
};
