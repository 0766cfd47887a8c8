/**
 * The engine behind every scenario with rooms and publishers (fan-out, chat, multi-tenant,
 * multi-instance): connects the members, then publishes at stepped rates until a step is not
 * sustained (a delivery lost, a slow-consumer close, p99 over the limit, or the rate not reached),
 * and measures each step: server CPU per message and per delivery, latency, losses, throughput,
 * and the generator's own CPU.
 */
import type { Histogram } from '../load/histogram.js';
import { loopbackSource } from '../load/loopback.js';
import type { ConnSpec } from '../load/messages.js';
import type { StepCounts } from '../load/pool.js';
import { nowUs } from '../load/raw-ws.js';
import { Bystanders, cpuShare, DISTURBED_PCT } from './bounds.js';
import { type Figures, round, type ScenarioContext, type ScenarioOutcome, sleep } from './types.js';

export interface TrafficPlan {
  projects: number;
  roomsPerProject: number;
  membersPerRoom: number;
  /** `one`: the first member of each room publishes; `all`: every member does. */
  senders: 'one' | 'all';
  /** Total publish rates (messages per second), in increasing order. */
  rates: number[];
  /** The rate at which the cost figures (CPU per message and per delivery) are quoted. */
  refRate: number;
  /** Also run a step at half the sustained rate and quote its latency (chat). */
  halfStep: boolean;
}

export interface StepResult {
  step: number;
  rate: number;
  sent: number;
  sentPerSec: number;
  expected: number;
  received: number;
  lost: number;
  late: number;
  deliveriesPerSec: number;
  serverCpuMs: number;
  serverCpuPct: number;
  cpuUsPerMessage: number | null;
  cpuUsPerDelivery: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** The generator's workers together during the publishing, % of one core. */
  generatorCpuPct: number;
  /** The busiest worker during the publishing, % of one core. */
  workerMaxCpuPct: number;
  /** Server + generator during the publishing, % of all cores. */
  machineCpuPct: number;
  /** Processes outside the bench during the step, % of one core. */
  foreignCpuPct: number;
  /** PostgreSQL and Redis during the step, % of one core (not in the server's CPU). */
  servicesCpuPct: number;
  /** PostgreSQL and Redis CPU per message sent, µs. */
  servicesCpuUsPerMessage: number | null;
  behind: number;
  closes: Record<string, number>;
  errors: Record<string, number>;
  clientBound: boolean;
  sustained: boolean;
}

const DRAIN_IDLE_MS = 1000;
const MIN_DRAIN_MS = 3000;
/**
 * Idle time before the half-rate step, which comes right after the overloaded ones: it measures
 * latency under a steady moderate load, not the recovery from an overload (a server with work in
 * the background, such as copying its WAL back, would still be doing it).
 */
const SETTLE_BEFORE_HALF_MS = 3000;
/** A publisher that missed more than this share of its schedule could not drive the rate. */
const BEHIND_SHARE = 0.01;

function diff(after: Record<string, number>, before: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const delta = value - (before[key] ?? 0);
    if (delta > 0) out[key] = delta;
  }
  return out;
}

function ms(histogram: Histogram, q: number): number | null {
  const us = histogram.quantile(q);
  return us === undefined ? null : round(us / 1000, 3);
}

export class Traffic {
  readonly #context: ScenarioContext;
  readonly #plan: TrafficPlan;
  #senders: number[] = [];
  #step = 0;
  #closes: Record<string, number> = {};
  #errors: Record<string, number> = {};
  #bystanders: Bystanders | undefined;
  #disturbed = 0;

  constructor(context: ScenarioContext, plan: TrafficPlan) {
    this.#context = context;
    this.#plan = plan;
  }

  /** Creates the projects and opens every member's connection, joined to its room. */
  async connect(): Promise<string[]> {
    const { server, target, pool, sizes } = this.#context;
    const plan = this.#plan;
    const projects = await target.createProjects(plan.projects);
    const specs: ConnSpec[] = [];
    projects.forEach((project, p) => {
      for (let r = 0; r < plan.roomsPerProject; r++) {
        for (let m = 0; m < plan.membersPerRoom; m++) {
          const index = specs.length;
          if (plan.senders === 'all' || m === 0) this.#senders.push(index);
          specs.push({
            // Members of one room are spread over the instances.
            port: target.ports[m % target.ports.length] ?? 0,
            room: `room-${r}`,
            roomKey: `${p}/${r}`,
            auth: server.socketBase
              ? { hash: project.hash, secret: project.secret, sub: `user-${p}-${r}-${m}` }
              : undefined,
            localAddress: loopbackSource(index),
          });
        }
      }
    });
    const summary = await pool.connect(server.protocol, specs, sizes.connectConcurrency);
    const notes: string[] = [];
    if (summary.failed > 0) {
      notes.push(`${summary.failed} of ${specs.length} connections failed: ${summary.errors}`);
    }
    if (summary.ready < specs.length * 0.99) {
      throw new Error(`only ${summary.ready} of ${specs.length} connected: ${summary.errors}`);
    }
    this.#context.log(`${summary.ready} members joined in ${summary.elapsedMs} ms`);
    const counts = await pool.collect();
    this.#closes = counts.closes;
    this.#errors = counts.errors;
    return notes;
  }

  /** Publishes at `rate` for one step and waits for its deliveries. */
  async step(rate: number, durationMs: number): Promise<StepResult> {
    const { target, pool, sizes } = this.#context;
    const step = ++this.#step;
    await pool.begin(step);
    this.#bystanders ??= new Bystanders(target, pool);
    this.#bystanders.reset();
    const cpu0 = target.cpuMs();
    const workers0 = pool.cpuMs();
    const t0 = nowUs();
    const published = await pool.publish(step, rate, durationMs, this.#senders, sizes.payloadBytes);
    const cpu1 = target.cpuMs();
    const workers1 = pool.cpuMs();
    const t1 = nowUs();
    let counts: StepCounts = await pool.collect();
    let expected = 0;
    let received = 0;
    const tally = (): void => {
      expected = 0;
      received = 0;
      for (const [key, room] of counts.rooms) {
        expected += (published.sent.get(key) ?? 0) * room.open;
        received += room.received;
      }
    };
    tally();
    const drainLimit = Math.max(MIN_DRAIN_MS, durationMs);
    let lastProgress = Date.now();
    let lastReceived = received;
    const drainStart = Date.now();
    while (received < expected && Date.now() - drainStart < drainLimit) {
      if (Date.now() - lastProgress > DRAIN_IDLE_MS) break;
      await sleep(50);
      counts = await pool.collect();
      tally();
      if (received > lastReceived) {
        lastReceived = received;
        lastProgress = Date.now();
      }
    }
    const cpu2 = target.cpuMs();
    const t2 = nowUs();
    const others = this.#bystanders.read();
    const foreignCpuPct = others.foreignPct;
    const sent = [...published.sent.values()].reduce((sum, n) => sum + n, 0);
    const lastDelivery = counts.lastDeliveryUs > t0 ? counts.lastDeliveryUs : t2;
    const serverCpuMs = cpu2 - cpu0;
    const share = cpuShare(cpu1 - cpu0, workers0, workers1, (t1 - t0) / 1000);
    const closes = diff(counts.closes, this.#closes);
    const errors = diff(counts.errors, this.#errors);
    this.#closes = counts.closes;
    this.#errors = counts.errors;
    const sentPerSec = sent / (published.elapsedMs / 1000);
    const p99Ms = ms(counts.latency, 0.99);
    const lost = Math.max(0, expected - received);
    const behind = published.behind > BEHIND_SHARE * rate * (durationMs / 1000);
    const clientBound = share.clientBound || behind;
    const result: StepResult = {
      step,
      rate,
      sent,
      sentPerSec: round(sentPerSec, 1) ?? 0,
      expected,
      received,
      lost,
      late: counts.late,
      deliveriesPerSec: round(received / ((lastDelivery - t0) / 1e6), 0) ?? 0,
      serverCpuMs: round(serverCpuMs, 0) ?? 0,
      serverCpuPct: round((serverCpuMs * 100) / ((t2 - t0) / 1000), 1) ?? 0,
      cpuUsPerMessage: sent > 0 ? round((serverCpuMs * 1000) / sent, 2) : null,
      cpuUsPerDelivery: received > 0 ? round((serverCpuMs * 1000) / received, 3) : null,
      p50Ms: ms(counts.latency, 0.5),
      p99Ms,
      maxMs: counts.latency.count > 0 ? round(counts.latency.maxUs / 1000, 3) : null,
      generatorCpuPct: round(share.generatorPct, 1) ?? 0,
      workerMaxCpuPct: round(share.workerMaxPct, 1) ?? 0,
      machineCpuPct: round(share.machinePct, 1) ?? 0,
      foreignCpuPct: round(foreignCpuPct, 1) ?? 0,
      servicesCpuPct: round(others.servicesPct, 1) ?? 0,
      servicesCpuUsPerMessage: sent > 0 ? round((others.servicesMs * 1000) / sent, 2) : null,
      behind: published.behind,
      closes,
      errors,
      clientBound,
      sustained:
        lost === 0 &&
        Object.keys(closes).length === 0 &&
        p99Ms !== null &&
        p99Ms <= sizes.p99LimitMs &&
        sentPerSec >= 0.95 * rate &&
        !behind,
    };
    this.#context.log(
      `step ${step}: ${rate} msg/s → ${result.deliveriesPerSec} deliveries/s, ` +
        `p99 ${result.p99Ms} ms, lost ${lost}, closes ${JSON.stringify(closes)}, ` +
        `server ${result.serverCpuPct}% cpu, generator ${result.generatorCpuPct}% ` +
        `(machine ${result.machineCpuPct}%, others ${result.foreignCpuPct}%)` +
        `${clientBound ? ' (client-bound)' : ''}${result.sustained ? '' : ' NOT sustained'}`,
    );
    return result;
  }

  /** A step, run again (twice at most) when other processes took the cores meanwhile. */
  async #measured(rate: number): Promise<StepResult> {
    let result = await this.step(rate, this.#context.sizes.stepMs);
    for (let again = 0; again < 2 && result.foreignCpuPct > DISTURBED_PCT; again++) {
      this.#disturbed++;
      this.#context.log(`step disturbed by other processes (${result.foreignCpuPct}%): again`);
      result = await this.step(rate, this.#context.sizes.stepMs);
    }
    return result;
  }

  /**
   * Warm-up, then the rates in turn: past the reference rate, stops at the first step not
   * sustained, and tries once between the last sustained rate and that one.
   */
  async search(): Promise<ScenarioOutcome> {
    const { sizes } = this.#context;
    const plan = this.#plan;
    const notes = await this.connect();
    await this.step(plan.rates[0] ?? 10, Math.min(1000, sizes.stepMs));
    const steps: StepResult[] = [];
    let best: StepResult | undefined;
    let failed: StepResult | undefined;
    for (const rate of plan.rates) {
      const result = await this.#measured(rate);
      steps.push(result);
      if (result.sustained) {
        if (failed === undefined) best = result;
      } else {
        failed ??= result;
      }
      if (failed !== undefined && rate >= plan.refRate) break;
    }
    if (best !== undefined && failed !== undefined && failed.rate > best.rate) {
      const between = Math.round(Math.sqrt(best.rate * failed.rate));
      if (between > best.rate && between < failed.rate) {
        const result = await this.#measured(between);
        steps.push(result);
        if (result.sustained) best = result;
      }
    }
    let half: StepResult | undefined;
    if (plan.halfStep && best !== undefined) {
      await sleep(Math.min(SETTLE_BEFORE_HALF_MS, sizes.stepMs));
      half = await this.#measured(Math.max(1, Math.round(best.rate / 2)));
      steps.push(half);
    }
    const ref = steps.find((s) => s.rate === plan.refRate) ?? steps[0];
    const saturation = steps.reduce<StepResult | undefined>(
      (top, s) => (top === undefined || s.deliveriesPerSec > top.deliveriesPerSec ? s : top),
      undefined,
    );
    const clientBound: string[] = [];
    if (ref?.clientBound) clientBound.push('cpuUsPerDelivery', 'cpuUsPerMessage');
    // The search ended on a step the generator could not drive: the ceiling is the client's.
    if (failed?.clientBound || (failed === undefined && steps.at(-1)?.clientBound)) {
      clientBound.push('sustainedMsgPerSec', 'sustainedDeliveriesPerSec');
    }
    if (saturation?.clientBound) clientBound.push('saturationDeliveriesPerSec');
    if (failed === undefined) notes.push('every rate tried was sustained: the ceiling is higher');
    const disturbed = steps.filter((s) => s.foreignCpuPct > DISTURBED_PCT).length;
    if (disturbed > 0) {
      notes.push(`${disturbed} step(s) kept despite other processes busy on the machine`);
    }
    const below = steps.filter((s) => best !== undefined && s.rate <= best.rate);
    const figures: Figures = {
      refRate: plan.refRate,
      cpuUsPerMessage: ref?.cpuUsPerMessage ?? null,
      cpuUsPerDelivery: ref?.cpuUsPerDelivery ?? null,
      servicesCpuUsPerMessage: ref?.servicesCpuUsPerMessage ?? null,
      refP50Ms: ref?.p50Ms ?? null,
      refP99Ms: ref?.p99Ms ?? null,
      refMaxMs: ref?.maxMs ?? null,
      sustainedMsgPerSec: best?.rate ?? 0,
      sustainedDeliveriesPerSec: best?.deliveriesPerSec ?? 0,
      sustainedP99Ms: best?.p99Ms ?? null,
      sustainedCpuUsPerMessage: best?.cpuUsPerMessage ?? null,
      sustainedCpuUsPerDelivery: best?.cpuUsPerDelivery ?? null,
      saturationDeliveriesPerSec: saturation?.deliveriesPerSec ?? null,
      lostBelowSaturation: below.reduce((sum, s) => sum + s.lost, 0),
      lostTotal: steps.reduce((sum, s) => sum + s.lost, 0),
      closes4009: steps.reduce((sum, s) => sum + (s.closes['4009'] ?? 0), 0),
      otherCloses: steps.reduce(
        (sum, s) =>
          sum +
          Object.entries(s.closes)
            .filter(([code]) => code !== '4009')
            .reduce((n, [, count]) => n + count, 0),
        0,
      ),
      generatorCpuPct: Math.max(0, ...steps.map((s) => s.generatorCpuPct)),
      stepsRepeated: this.#disturbed,
    };
    const extra = steps.reduce((sum, s) => sum + Math.max(0, s.received - s.expected), 0);
    if (extra > 0) {
      figures.duplicates = extra;
      notes.push(`${extra} deliveries more than expected (duplicates?)`);
    }
    const metrics = await this.#context.target.metrics?.();
    if (metrics !== undefined) {
      const slow = metrics.get('socketbase_slow_consumer_closes_total') ?? 0;
      const batches = metrics.get('socketbase_store_batch_size_count') ?? 0;
      figures.metricsSlowConsumerCloses = slow;
      figures.metricsRateLimited = metrics.get('socketbase_rate_limited_total') ?? 0;
      figures.storeBatchAvg =
        batches > 0
          ? round((metrics.get('socketbase_store_batch_size_sum') ?? 0) / batches, 1)
          : null;
      if (slow !== figures.closes4009) {
        notes.push(
          `/metrics counts ${slow} slow-consumer closes, the clients saw ${figures.closes4009}`,
        );
      }
    }
    if (half !== undefined) {
      figures.halfRate = half.rate;
      figures.halfP50Ms = half.p50Ms;
      figures.halfP99Ms = half.p99Ms;
    }
    const errorTotals: Record<string, number> = {};
    for (const s of steps) {
      for (const [message, n] of Object.entries(s.errors)) {
        errorTotals[message] = (errorTotals[message] ?? 0) + n;
      }
    }
    if (Object.keys(errorTotals).length > 0) {
      notes.push(`error frames: ${JSON.stringify(errorTotals)}`);
    }
    return { figures, clientBound, notes, steps };
  }
}
