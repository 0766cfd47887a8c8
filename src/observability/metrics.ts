/**
 * Prometheus figures. One registry per server, so that several servers in one test process (or
 * one process) never share counters.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Figures counted on every frame are plain numbers, read when Prometheus scrapes: a counter update
 * per delivered frame would cost more than the delivery.
 */
export interface HotCounts {
  framesIn: number;
  framesOut: number;
  messageDeliveries: number;
  broadcastDeliveries: number;
  busPublished: number;
  busReceived: number;
  messagesIn: Record<'message' | 'broadcast', Record<'ws' | 'http', number>>;
}

/** One project's figures on this instance, counted like HotCounts. */
export interface ProjectCounts {
  connections: number;
  messagesIn: number;
  messagesOut: number;
  refusals: Record<ProjectRefusal, number>;
}

export type ProjectRefusal = 'rate_limited' | 'too_many_connections';

/** The label of every project past METRICS_MAX_PROJECTS. */
export const OTHER_PROJECTS = '_other';

function projectCounts(): ProjectCounts {
  return {
    connections: 0,
    messagesIn: 0,
    messagesOut: 0,
    refusals: { rate_limited: 0, too_many_connections: 0 },
  };
}

/**
 * Per-project figures for at most `max` projects (the first seen), so that a deployment with many
 * tenants cannot grow the scrape without bound; the rest are summed under `_other`.
 */
export class ProjectSeries {
  readonly #byProject = new Map<string, ProjectCounts>();
  readonly #other = projectCounts();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  of(project: string): ProjectCounts {
    let counts = this.#byProject.get(project);
    if (counts !== undefined) return counts;
    if (this.#byProject.size >= this.#max) return this.#other;
    counts = projectCounts();
    this.#byProject.set(project, counts);
    return counts;
  }

  *entries(): IterableIterator<[string, ProjectCounts]> {
    yield* this.#byProject;
    yield [OTHER_PROJECTS, this.#other];
  }
}

function scraped(read: () => number) {
  return function (this: Counter) {
    this.reset();
    this.inc(read());
  };
}

function scrapedByLabels(read: () => [Record<string, string>, number][]) {
  return function (this: Counter<string>) {
    this.reset();
    for (const [labels, value] of read()) this.inc(labels, value);
  };
}

function gaugedByLabels(read: () => [Record<string, string>, number][]) {
  return function (this: Gauge<string>) {
    this.reset();
    for (const [labels, value] of read()) this.set(labels, value);
  };
}

export class Metrics {
  readonly registry = new Registry();
  readonly projects: ProjectSeries;
  readonly hot: HotCounts = {
    framesIn: 0,
    framesOut: 0,
    messageDeliveries: 0,
    broadcastDeliveries: 0,
    busPublished: 0,
    busReceived: 0,
    messagesIn: { message: { ws: 0, http: 0 }, broadcast: { ws: 0, http: 0 } },
  };
  readonly connections = new Gauge({
    name: 'socketbase_connections',
    help: 'Open WebSocket connections on this instance',
    registers: [this.registry],
  });
  readonly connectionsTotal = new Counter({
    name: 'socketbase_connections_total',
    help: 'WebSocket connections accepted (authenticated) since start',
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: 'socketbase_connections_refused_total',
    help: 'WebSocket connections refused at the handshake or at authentication, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly rooms = new Gauge({
    name: 'socketbase_rooms',
    help: 'Rooms with at least one member on this instance',
    registers: [this.registry],
  });
  readonly framesIn = new Counter({
    name: 'socketbase_frames_in_total',
    help: 'WebSocket frames received from clients',
    registers: [this.registry],
    collect: scraped(() => this.hot.framesIn),
  });
  readonly framesOut = new Counter({
    name: 'socketbase_frames_out_total',
    help: 'WebSocket frames sent to clients',
    registers: [this.registry],
    collect: scraped(() => this.hot.framesOut),
  });
  readonly messagesIn = new Counter({
    name: 'socketbase_messages_in_total',
    help: 'Room messages and broadcasts accepted, by kind and transport',
    labelNames: ['kind', 'via'],
    registers: [this.registry],
    collect: scrapedByLabels(() =>
      (['message', 'broadcast'] as const).flatMap((kind) =>
        (['ws', 'http'] as const).map((via): [Record<string, string>, number] => [
          { kind, via },
          this.hot.messagesIn[kind][via],
        ]),
      ),
    ),
  });
  readonly deliveries = new Counter({
    name: 'socketbase_deliveries_total',
    help: 'Room messages and broadcasts delivered to connections, by kind',
    labelNames: ['kind'],
    registers: [this.registry],
    collect: scrapedByLabels(() => [
      [{ kind: 'message' }, this.hot.messageDeliveries],
      [{ kind: 'broadcast' }, this.hot.broadcastDeliveries],
    ]),
  });
  readonly storeBatchSize = new Histogram({
    name: 'socketbase_store_batch_size',
    help: 'Messages committed per store transaction',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [this.registry],
  });
  readonly storeCommitSeconds = new Histogram({
    name: 'socketbase_store_commit_seconds',
    help: 'Time to commit one batch of messages',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly busPublished = new Counter({
    name: 'socketbase_bus_published_total',
    help: 'Events published on the bus',
    registers: [this.registry],
    collect: scraped(() => this.hot.busPublished),
  });
  readonly busReceived = new Counter({
    name: 'socketbase_bus_received_total',
    help: 'Events received from the bus',
    registers: [this.registry],
    collect: scraped(() => this.hot.busReceived),
  });
  readonly busSubscriptions = new Gauge({
    name: 'socketbase_bus_subscriptions',
    help: 'Bus topics this instance is subscribed to',
    registers: [this.registry],
  });
  readonly busReconnects = new Counter({
    name: 'socketbase_bus_reconnects_total',
    help: 'Times the bus link came back after a loss',
    registers: [this.registry],
  });
  readonly busPublishFailures = new Counter({
    name: 'socketbase_bus_publish_failures_total',
    help: 'Stored room messages whose publish failed (each is published again)',
    registers: [this.registry],
  });
  readonly busRepublished = new Counter({
    name: 'socketbase_bus_republished_total',
    help: 'Stored room messages published again after a failed publish',
    registers: [this.registry],
  });
  readonly busRepublishDropped = new Counter({
    name: 'socketbase_bus_republish_dropped_total',
    help: 'Stored room messages given up after their publish kept failing (the queue was full)',
    registers: [this.registry],
  });
  readonly gapsFilled = new Counter({
    name: 'socketbase_gaps_filled_total',
    help: 'Room messages fetched from the store because the bus did not bring them in time',
    registers: [this.registry],
  });
  readonly slowConsumerCloses = new Counter({
    name: 'socketbase_slow_consumer_closes_total',
    help: 'Connections closed with 4009 because their unsent backlog passed SLOW_CONSUMER_BYTES',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'socketbase_rate_limited_total',
    help: 'Frames and HTTP requests refused by the rate limit',
    labelNames: ['via'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'socketbase_errors_total',
    help: 'Error answers sent to clients, by message',
    labelNames: ['message'],
    registers: [this.registry],
  });

  readonly projectConnections = new Gauge({
    name: 'socketbase_project_connections',
    help: 'Open WebSocket connections on this instance, by project',
    labelNames: ['project'],
    registers: [this.registry],
    collect: gaugedByLabels(() =>
      [...this.projects.entries()].map(([project, counts]) => [{ project }, counts.connections]),
    ),
  });
  readonly projectMessagesIn = new Counter({
    name: 'socketbase_project_messages_in_total',
    help: 'Room messages and broadcasts accepted, by project',
    labelNames: ['project'],
    registers: [this.registry],
    collect: scrapedByLabels(() =>
      [...this.projects.entries()].map(([project, counts]) => [{ project }, counts.messagesIn]),
    ),
  });
  readonly projectMessagesOut = new Counter({
    name: 'socketbase_project_messages_out_total',
    help: 'Room messages and broadcasts delivered to connections, by project',
    labelNames: ['project'],
    registers: [this.registry],
    collect: scrapedByLabels(() =>
      [...this.projects.entries()].map(([project, counts]) => [{ project }, counts.messagesOut]),
    ),
  });
  readonly projectRefusals = new Counter({
    name: 'socketbase_project_refusals_total',
    help: 'Frames, requests and connections refused by a limit, by project and reason',
    labelNames: ['project', 'reason'],
    registers: [this.registry],
    collect: scrapedByLabels(() =>
      [...this.projects.entries()].flatMap(([project, counts]) =>
        (['rate_limited', 'too_many_connections'] as const).map(
          (reason): [Record<string, string>, number] => [
            { project, reason },
            counts.refusals[reason],
          ],
        ),
      ),
    ),
  });

  constructor(maxProjects = 1000) {
    this.projects = new ProjectSeries(maxProjects);
    collectDefaultMetrics({ register: this.registry });
  }
}
