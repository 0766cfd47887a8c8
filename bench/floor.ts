/**
 * The floor under any Node server's CPU per delivery at light load: what one write of a small
 * frame to one loopback TCP socket costs, with no WebSocket library and no server logic around it.
 * At a rate where every message is written on its own, each delivery is at least one such write.
 *
 * `node dist/bench/floor.js [sockets] [rounds]`: a child process opens the sockets and reads
 * everything; this process writes one 100-byte frame to each socket per round, 20 ms apart (as
 * fan-out at 50 msg/s does), and prints its own CPU time per write, user and system apart.
 */
import { fork } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

const FRAME = Buffer.alloc(100, 0x61);
const ROUND_GAP_MS = 20;

type Mode = (sockets: readonly Socket[]) => void;

/** Each frame written at once, as `ws.send` does without the framing. */
const direct: Mode = (sockets) => {
  for (const socket of sockets) socket.write(FRAME);
};

/** Corked on the first frame and uncorked on the next turn, as socket-base's transport does. */
const corkedUntilNextTurn: Mode = (sockets) => {
  for (const socket of sockets) {
    socket.cork();
    socket.write(FRAME);
  }
  setImmediate(() => {
    for (const socket of sockets) socket.uncork();
  });
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function readAll(port: number, count: number): void {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = createConnection(port, '127.0.0.1');
    socket.on('data', () => undefined);
    sockets.push(socket);
  }
  process.once('message', () => {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
}

async function measure(count: number, rounds: number): Promise<void> {
  const server = createServer({ noDelay: true });
  const sockets: Socket[] = [];
  const accepted = new Promise<void>((resolve) => {
    server.on('connection', (socket) => {
      sockets.push(socket);
      if (sockets.length === count) resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const reader = fork(fileURLToPath(import.meta.url), [
    '--reader',
    String(address.port),
    String(count),
  ]);
  await accepted;
  const modes: [string, Mode][] = [
    ['direct write', direct],
    ['corked until the next turn', corkedUntilNextTurn],
  ];
  for (const [name, mode] of [...modes, ...modes]) {
    await sleep(200);
    const before = process.cpuUsage();
    for (let round = 0; round < rounds; round++) {
      mode(sockets);
      await sleep(ROUND_GAP_MS);
    }
    const used = process.cpuUsage(before);
    const writes = rounds * count;
    const us = (micros: number): string => (micros / writes).toFixed(2);
    console.log(
      `${name.padEnd(28)} ${us(used.user + used.system)} µs/write (user ${us(used.user)}, system ${us(used.system)})`,
    );
  }
  reader.send('done');
  for (const socket of sockets) socket.destroy();
  server.close();
}

const [flag, first, second] = process.argv.slice(2);
if (flag === '--reader') readAll(Number(first), Number(second));
else await measure(Number(flag ?? 1000), Number(first ?? 100));
