/** Idle: 10,000 joined connections; resident memory per connection from VmRSS before and after. */
import { loopbackSource } from '../load/loopback.js';
import type { ConnSpec } from '../load/messages.js';
import { nowUs } from '../load/raw-ws.js';
import { Bystanders, disturbedNote } from './bounds.js';
import { round, type Scenario, sleep } from './types.js';

export const idle: Scenario = {
  name: 'idle',
  title: 'idle',
  instances: () => 1,
  appliesTo: () => true,
  async run({ server, target, pool, sizes, log }) {
    const [project] = await target.createProjects(1);
    await sleep(1000);
    const before = target.rssKb();
    const bystanders = new Bystanders(target, pool);
    const cpu0 = target.cpuMs();
    const t0 = nowUs();
    const specs: ConnSpec[] = Array.from({ length: sizes.idleConnections }, (_, i) => {
      const room = Math.floor(i / sizes.idleRoomSize);
      return {
        port: target.ports[0] ?? 0,
        room: `idle-${room}`,
        roomKey: `0/${room}`,
        auth:
          server.socketBase && project !== undefined
            ? { hash: project.hash, secret: project.secret, sub: `idle-${i}` }
            : undefined,
        localAddress: loopbackSource(i),
      };
    });
    const summary = await pool.connect(server.protocol, specs, sizes.connectConcurrency);
    const cpu1 = target.cpuMs();
    const t1 = nowUs();
    log(`${summary.ready} idle connections joined in ${summary.elapsedMs} ms`);
    if (summary.ready < specs.length * 0.99) {
      throw new Error(`only ${summary.ready} of ${specs.length} connected: ${summary.errors}`);
    }
    await sleep(sizes.idleSettleMs);
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      samples.push(target.rssKb());
      await sleep(300);
    }
    samples.sort((a, b) => a - b);
    const after = samples[1] ?? target.rssKb();
    const notes =
      summary.failed > 0 ? [`${summary.failed} connections failed: ${summary.errors}`] : [];
    const foreignCpuPct = bystanders.pct();
    return {
      figures: {
        foreignCpuPct: round(foreignCpuPct, 1),
        connections: summary.ready,
        rssBeforeMb: round(before / 1024, 1),
        rssAfterMb: round(after / 1024, 1),
        rssKbPerConnection: round((after - before) / summary.ready, 2),
        cpuUsPerConnect: round(((cpu1 - cpu0) * 1000) / summary.ready, 1),
        connectsPerSec: round(summary.ready / ((t1 - t0) / 1e6), 0),
      },
      clientBound: [],
      notes: [...notes, ...disturbedNote(foreignCpuPct)],
    };
  },
};
