/**
 * The controller's side of the load generator: forks the worker processes, spreads connections over
 * them, sends commands and gathers the replies, and reads the workers' own CPU time.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuMsOf } from '../servers/proc-stats.js';
import { forkModule, stopPid } from '../servers/processes.js';
import { Histogram } from './histogram.js';
import type {
  CollectReply,
  Command,
  ConnectReply,
  ConnSpec,
  CountsReply,
  FrameCount,
  HttpCommand,
  HttpReply,
  Position,
  PositionsReply,
  Protocol,
  PublishReply,
  RejoinReply,
  Reply,
  RoomCount,
} from './messages.js';

const WORKER_PATH = fileURLToPath(new URL('./worker.js', import.meta.url));

type CommandBody = Command extends infer C ? (C extends Command ? Omit<C, 'id'> : never) : never;

class WorkerHandle {
  readonly #child: ChildProcess;
  readonly pid: number;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();

  constructor(index: number) {
    const { child, pid } = forkModule(WORKER_PATH, `load worker ${index}`);
    this.#child = child;
    this.pid = pid;
    child.on('message', (reply: Reply) => {
      const waiter = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      waiter?.resolve(reply);
    });
    child.on('error', () => undefined);
    child.on('exit', (code) => {
      for (const waiter of this.#waiting.values()) {
        waiter.reject(new Error(`load worker ${index} exited with ${code}`));
      }
      this.#waiting.clear();
    });
  }

  async call<T>(body: CommandBody): Promise<T> {
    const id = this.#nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      if (!this.#child.connected) {
        reject(new Error('load worker is gone'));
        return;
      }
      this.#waiting.set(id, { resolve, reject });
      this.#child.send({ ...body, id } as Command, (error) => {
        if (error === null) return;
        this.#waiting.delete(id);
        reject(error);
      });
    });
    if (!reply.ok) throw new Error(reply.error);
    return reply.result as T;
  }
}

export interface ConnectSummary {
  ready: number;
  failed: number;
  errors: string[];
  elapsedMs: number;
}

export interface StepCounts {
  rooms: Map<string, RoomCount>;
  latency: Histogram;
  late: number;
  closes: Record<string, number>;
  errors: Record<string, number>;
  lastDeliveryUs: number;
}

export class LoadPool {
  readonly #workers: WorkerHandle[];
  /** Which worker holds each connection, and its index there, in the order they were given. */
  #placement: { worker: number; index: number }[] = [];
  #perWorker: number[];

  constructor(size: number) {
    this.#workers = Array.from({ length: size }, (_, i) => new WorkerHandle(i));
    this.#perWorker = this.#workers.map(() => 0);
  }

  get size(): number {
    return this.#workers.length;
  }

  get pids(): number[] {
    return this.#workers.map((worker) => worker.pid);
  }

  /** CPU time of each worker so far, in ms. */
  cpuMs(): number[] {
    return this.#workers.map((worker) => cpuMsOf(worker.pid));
  }

  /** Opens connections, spread round-robin over the workers; resolves when every one is settled. */
  async connect(
    protocol: Protocol,
    conns: ConnSpec[],
    concurrency: number,
    timeoutMs = 15000,
  ): Promise<ConnectSummary> {
    const shares: ConnSpec[][] = this.#workers.map(() => []);
    conns.forEach((spec, i) => {
      const worker = i % this.#workers.length;
      shares[worker]?.push(spec);
      this.#placement.push({ worker, index: this.#perWorker[worker] ?? 0 });
      this.#perWorker[worker] = (this.#perWorker[worker] ?? 0) + 1;
    });
    const perWorker = Math.max(1, Math.ceil(concurrency / this.#workers.length));
    const replies = await Promise.all(
      this.#workers.map((worker, i) =>
        worker.call<ConnectReply>({
          cmd: 'connect',
          protocol,
          conns: shares[i] ?? [],
          concurrency: perWorker,
          timeoutMs,
        }),
      ),
    );
    return {
      ready: replies.reduce((sum, r) => sum + r.ready, 0),
      failed: replies.reduce((sum, r) => sum + r.failed, 0),
      errors: [...new Set(replies.flatMap((r) => r.errors))].slice(0, 5),
      elapsedMs: Math.max(...replies.map((r) => r.elapsedMs)),
    };
  }

  /**
   * Starts a step on every worker: counters (deliveries, counted frames) reset, deliveries of
   * other steps counted as late.
   */
  async begin(step: number): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.call({ cmd: 'begin', step })));
  }

  /**
   * Publishes `rate` messages per second for `durationMs` from the given senders (indexes in the
   * order the connections were given), each worker sending for its own senders.
   */
  async publish(
    step: number,
    rate: number,
    durationMs: number,
    senders: number[],
    payloadBytes: number,
  ): Promise<{ sent: Map<string, number>; behind: number; elapsedMs: number }> {
    const local: number[][] = this.#workers.map(() => []);
    for (const sender of senders) {
      const place = this.#placement[sender];
      if (place !== undefined) local[place.worker]?.push(place.index);
    }
    const replies = await Promise.all(
      this.#workers.map((worker, i) => {
        const mine = local[i] ?? [];
        return worker.call<PublishReply>({
          cmd: 'publish',
          step,
          rate: (rate * mine.length) / Math.max(1, senders.length),
          durationMs,
          senders: mine,
          payloadBytes,
        });
      }),
    );
    const sent = new Map<string, number>();
    for (const reply of replies) {
      for (const [room, count] of Object.entries(reply.sent)) {
        sent.set(room, (sent.get(room) ?? 0) + count);
      }
    }
    return {
      sent,
      behind: replies.reduce((sum, r) => sum + r.behind, 0),
      elapsedMs: Math.max(...replies.map((r) => r.elapsedMs)),
    };
  }

  /** Runs the HTTP publish loop on every worker at once. */
  async http(body: Omit<HttpCommand, 'cmd' | 'id'>): Promise<HttpReply[]> {
    return Promise.all(
      this.#workers.map((worker, i) =>
        worker.call<HttpReply>({
          ...body,
          cmd: 'http',
          auth: { ...body.auth, sub: `${body.auth.sub}-${i}` },
        }),
      ),
    );
  }

  /** What every worker received in the current step, added up. */
  async collect(): Promise<StepCounts> {
    const replies = await Promise.all(
      this.#workers.map((worker) => worker.call<CollectReply>({ cmd: 'collect' })),
    );
    const rooms = new Map<string, RoomCount>();
    const latency = new Histogram();
    const closes: Record<string, number> = {};
    const errors: Record<string, number> = {};
    let late = 0;
    let lastDeliveryUs = 0;
    for (const reply of replies) {
      for (const [key, count] of Object.entries(reply.rooms)) {
        const room = rooms.get(key) ?? { open: 0, received: 0 };
        room.open += count.open;
        room.received += count.received;
        rooms.set(key, room);
      }
      latency.add(reply.latency);
      late += reply.late;
      lastDeliveryUs = Math.max(lastDeliveryUs, reply.lastDeliveryUs);
      for (const [code, n] of Object.entries(reply.closes)) closes[code] = (closes[code] ?? 0) + n;
      for (const [message, n] of Object.entries(reply.errors)) {
        errors[message] = (errors[message] ?? 0) + n;
      }
    }
    return { rooms, latency, late, closes, errors, lastDeliveryUs };
  }

  /**
   * Every connection opened with `rejoinSince` joins with it, on every worker at once; resolves
   * with the number of joins and the hrtime (µs) at which the first one was sent.
   */
  async rejoin(): Promise<{ joins: number; sentUs: number }> {
    const replies = await Promise.all(
      this.#workers.map((worker) => worker.call<RejoinReply>({ cmd: 'rejoin' })),
    );
    return {
      joins: replies.reduce((sum, r) => sum + r.joins, 0),
      sentUs: Math.min(...replies.map((r) => r.sentUs)),
    };
  }

  /** Each connection's position, in the order they were given (null: it does not follow `seq`). */
  async positions(): Promise<(Position | null)[]> {
    const replies = await Promise.all(
      this.#workers.map((worker) => worker.call<PositionsReply>({ cmd: 'positions' })),
    );
    return this.#placement.map((place) => replies[place.worker]?.conns[place.index] ?? null);
  }

  /** Each connection's counted frames, in the order they were given (null: it counts none). */
  async counts(): Promise<(FrameCount | null)[]> {
    const replies = await Promise.all(
      this.#workers.map((worker) => worker.call<CountsReply>({ cmd: 'counts' })),
    );
    return this.#placement.map((place) => replies[place.worker]?.conns[place.index] ?? null);
  }

  /** Closes every connection (the workers stay). */
  async closeAll(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.call({ cmd: 'close' })));
    this.#placement = [];
    this.#perWorker = this.#workers.map(() => 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => stopPid(worker.pid, 2000)));
  }
}
