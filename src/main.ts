/**
 * The composition root: config → Store → Bus → services → HTTP + WebSocket. The only file that
 * picks implementations.
 */
import { createServer } from 'node:http';
import { generateAdminToken } from './auth/admin-token.js';
import { signProjectToken, type TokenRules } from './auth/project-jwt.js';
import { type Bus, CONTROL_TOPIC } from './bus/bus.js';
import { MemoryBus } from './bus/memory-bus.js';
import { RedisBus } from './bus/redis-bus.js';
import type { ClusterState } from './cluster/cluster-state.js';
import { MemoryClusterState } from './cluster/memory-cluster-state.js';
import { RedisClusterState } from './cluster/redis-cluster-state.js';
import { type Config, unusable } from './config.js';
import { CLOSE_CODES, ERRORS } from './errors.js';
import { AdminRoutes } from './http/admin.js';
import { ApiRoutes } from './http/api.js';
import { DashboardRoutes } from './http/dashboard.js';
import { listen } from './http/listen.js';
import { createRequestHandler, type Routes } from './http/router.js';
import { folderOf, StaticFiles } from './http/static-files.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { serverFrame } from './protocol/frames.js';
import { BusDispatcher } from './realtime/bus-dispatcher.js';
import { Delivery } from './realtime/delivery.js';
import { ExpiryWheel } from './realtime/expiry-wheel.js';
import { Gateway } from './realtime/gateway.js';
import { Hub, type HubOptions } from './realtime/hub.js';
import { Messaging } from './realtime/messaging.js';
import { Presence } from './realtime/presence.js';
import { ProjectLimits } from './realtime/project-limits.js';
import { REPLAY_DEFAULTS } from './realtime/replay.js';
import { JOIN_TIMEOUT_MS } from './realtime/room.js';
import { STREAM_DEFAULTS } from './realtime/room-stream.js';
import type { Session, SessionContext } from './realtime/session.js';
import { PostgresStore } from './store/postgres-store.js';
import { SqliteStore } from './store/sqlite-store.js';
import { SqliteWorkerStore } from './store/sqlite-worker-store.js';
import type { Store, StoreStats } from './store/store.js';
import { limitsReader, serverDefaults } from './tenancy/project-settings.js';
import { Projects } from './tenancy/projects.js';
import { Retention } from './tenancy/retention.js';
import { prepareFrame, WsTransport } from './transport/ws-transport.js';

/** The refresh interval for the dashboard's live figures. */
const DASHBOARD_POLL_MS = 2000;

export interface RunningServer {
  /** http://host:port with the real port. */
  readonly url: string;
  readonly port: number;
  /** Where /admin and /metrics are served: the admin listener when ADMIN_PORT is set, else `url`. */
  readonly adminUrl: string;
  readonly adminToken: string;
  readonly metrics: Metrics;
  /** Ordered shutdown: not ready, stop accepting, store what was accepted, close sockets with 1001. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  /** Where the start-up banner goes: a person at a terminal, not the log. */
  print?: (text: string) => void;
}

export async function openStore(config: Config, hooks: StoreStats): Promise<Store> {
  const url = config.databaseUrl;
  const options = { ...hooks, idempotencyWindowMs: config.idempotencyWindowS * 1000 };
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    return config.sqliteWorker
      ? SqliteWorkerStore.open(path, options)
      : SqliteStore.open(path, options);
  }
  return PostgresStore.open(url, options).catch(unusable('DATABASE_URL', url));
}

async function openBus(config: Config, logger: Logger): Promise<Bus> {
  if (config.redisUrl === undefined) return new MemoryBus();
  return RedisBus.connect({
    url: config.redisUrl,
    prefix: config.redisPrefix,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    hooks: {
      onMalformed: () => logger.warn('malformed event on the bus dropped'),
      onLinkError: (link, error) => logger.warn({ link, err: error.message }, 'redis link error'),
    },
  }).catch(unusable('REDIS_URL', config.redisUrl));
}

/** Presence and counts in this process, or shared by every instance through Redis. */
async function openClusterState(config: Config, logger: Logger): Promise<ClusterState> {
  const cluster =
    config.redisUrl === undefined
      ? new MemoryClusterState({ ttlMs: config.presenceTtlMs })
      : new RedisClusterState({
          url: config.redisUrl,
          prefix: config.redisPrefix,
          ttlMs: config.presenceTtlMs,
          commandTimeoutMs: config.redisCommandTimeoutMs,
          onLinkError: (error) => logger.warn({ err: error.message }, 'cluster state link error'),
        });
  await cluster.start();
  return cluster;
}

export async function startServer(config: Config, options: StartOptions): Promise<RunningServer> {
  const { logger } = options;
  const print = options.print ?? ((text: string) => process.stdout.write(`${text}\n`));
  const metrics = new Metrics(config.metricsMaxProjects);
  const store = await openStore(config, {
    onBatch: (size, seconds) => {
      metrics.storeBatchSize.observe(size);
      metrics.storeCommitSeconds.observe(seconds);
    },
    onFault: (error, what) => logger.error({ err: error }, what),
  });
  let bus: Bus;
  try {
    bus = await openBus(config, logger);
  } catch (error) {
    await store.close();
    throw error;
  }
  let cluster: ClusterState;
  try {
    cluster = await openClusterState(config, logger);
  } catch (error) {
    await bus.close();
    await store.close();
    throw error;
  }
  const projects = new Projects(store, bus, tokenRules(config));
  const projectLimits = new ProjectLimits(
    cluster,
    limitsReader((hash) => projects.settingsOf(hash), serverDefaults(config)),
  );
  const messaging = new Messaging(
    store,
    bus,
    {
      onAccepted: (project, kind, via) => {
        metrics.hot.messagesIn[kind][via]++;
        metrics.projects.of(project).messagesIn++;
      },
      onStored: (project) => cluster.recordStored(project, 1),
      onPublished: () => {
        metrics.hot.busPublished++;
      },
      onPublishFailed: (error) => {
        metrics.busPublishFailures.inc();
        logger.warn({ err: error }, 'stored message not published; publishing it again');
      },
      onRepublished: () => metrics.busRepublished.inc(),
      onRepublishDropped: () => {
        metrics.busRepublishDropped.inc();
        logger.error('stored message given up after its publish kept failing');
      },
    },
    projectLimits,
  );
  const presence = new Presence(cluster, bus, prepareFrame, {
    onEventLost: (error) => logger.warn({ err: error }, 'presence event not published'),
  });
  const delivery = new Delivery(prepareFrame, {
    onDelivered: (project, kind, count) => {
      metrics.projects.of(project).messagesOut += count;
      if (kind === 'message') metrics.hot.messageDeliveries += count;
      else metrics.hot.broadcastDeliveries += count;
    },
  });
  const hub = new Hub(
    bus,
    store,
    {
      onRoomMessage: delivery.roomMessage,
      onGapFilled: (count) => metrics.gapsFilled.inc(count),
      onRoomsChanged: (count) => metrics.rooms.set(count),
      onSubscriptionsChanged: (count) => metrics.busSubscriptions.set(count),
    },
    hubOptions(config),
  );
  const dispatcher = new BusDispatcher(hub, projects, delivery, presence, () => {
    metrics.hot.busReceived++;
  });
  projects.onChange((event) => {
    if (event.kind === 'project-deleted') {
      const { code, reason } = CLOSE_CODES.unknownProject;
      hub.closeProject(event.project, code, reason, ERRORS.unknownProject.message);
    } else if (event.kind === 'project-disconnected') {
      // Projects has applied its revocation first: a reconnect with an old token is refused.
      const { code, reason } = CLOSE_CODES.disconnected;
      const message = ERRORS.disconnected.message;
      if (event.user === null) hub.closeProject(event.project, code, reason, message);
      else hub.closeUser(event.project, event.user, code, reason, message);
    }
  });
  projects.onRevokedLate((project) => {
    const { code, reason } = CLOSE_CODES.disconnected;
    hub.closeWhere(
      project,
      (member) => projects.isRevokedNow(project, member.user, member.issuedAtS),
      code,
      reason,
      ERRORS.disconnected.message,
    );
  });
  const refreshProjects = (): void => {
    projects.refresh(hub.projectHashes()).catch((error: unknown) => {
      logger.debug({ err: error }, 'cached projects not refreshed: the store did not answer');
    });
  };
  const projectRefresh = setInterval(refreshProjects, config.projectRefreshMs);
  projectRefresh.unref();
  bus.onEvent(dispatcher.handle);
  bus.onReconnect(() => {
    metrics.busReconnects.inc();
    hub.catchUp();
    // Control events published while the link was down are lost: read the projects again.
    refreshProjects();
  });
  await bus.subscribe(CONTROL_TOPIC);

  const expiry = new ExpiryWheel<Session>({ toleranceMs: config.jwtClockToleranceS * 1000 });
  const context: SessionContext = {
    hub,
    messaging,
    presence,
    projectLimits,
    expiry,
    authenticate: (hash, token) => projects.authenticate(hash, token, false),
    limits: config,
    onError: (code) => metrics.errors.inc({ message: ERRORS[code].message }),
    onClosed: (session) => {
      metrics.connections.dec();
      metrics.projects.of(session.project).connections--;
      logger.debug({ connectionId: session.id }, 'connection closed');
    },
    onRateLimited: (project) => {
      metrics.rateLimited.inc({ via: 'ws' });
      metrics.projects.of(project).refusals.rate_limited++;
    },
    onSlowConsumer: () => metrics.slowConsumerCloses.inc(),
  };
  const refused = (reason: string, address: string, project?: string): void => {
    metrics.connectionsRefused.inc({ reason });
    if (project !== undefined) metrics.projects.of(project).refusals.too_many_connections++;
    logger.debug({ reason, address }, 'connection refused');
  };
  const gateway = new Gateway(projects, context, {
    onOpen: (session, address) => {
      metrics.connections.inc();
      metrics.connectionsTotal.inc();
      metrics.projects.of(session.project).connections++;
      logger.debug(
        { connectionId: session.id, project: session.project, user: session.user, address },
        'connection opened',
      );
    },
    onRefused: refused,
  });

  const adminToken = config.adminToken ?? generateAdminToken();
  let shuttingDown = false;
  const api = new ApiRoutes(projects, messaging, store, presence, {
    ...config,
    onError: (code) => metrics.errors.inc({ message: ERRORS[code].message }),
    onRateLimited: (project) => {
      metrics.rateLimited.inc({ via: 'http' });
      metrics.projects.of(project).refusals.rate_limited++;
    },
  });
  // Known once the main port listens; the dashboard on ADMIN_PORT sends browsers there.
  let mainPort: number | undefined;
  const routes: Routes = {
    api,
    admin: new AdminRoutes(projects, store, cluster, adminToken, {
      maxBodyBytes: config.maxBodyBytes,
      maxRoomLength: config.maxRoomLength,
      defaults: serverDefaults(config),
    }),
    readiness: {
      store: () => store.ping(),
      bus: () => bus.healthy(),
      shuttingDown: () => shuttingDown,
    },
    registry: metrics.registry,
    logger,
    sdk: sdkFiles(logger),
    dashboard: new DashboardRoutes({
      publicUrl: config.publicUrl,
      mainPort: () => (config.adminPort === undefined ? undefined : mainPort),
      pollMs: DASHBOARD_POLL_MS,
    }),
  };
  const adminListener =
    config.adminPort === undefined
      ? undefined
      : { server: createServer(createRequestHandler(routes, 'admin')), port: config.adminPort };
  const httpServer = createServer(
    createRequestHandler(routes, adminListener === undefined ? 'all' : 'public'),
  );
  const transport = new WsTransport(httpServer, gateway.admit, {
    maxFrameBytes: config.maxFrameBytes,
    heartbeatMs: config.heartbeatMs,
    trustProxy: config.trustProxy,
    addresses: logger.isLevelEnabled('debug'),
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    maxEarlyFrames: config.rateBurst,
    errorFrame: (message) => serverFrame({ type: 'error', message }),
    counts: metrics.hot,
    onError: (error) => logger.debug({ err: error }, 'websocket error'),
    onRefused: refused,
  });

  const { url, port } = await listen(httpServer, config.port, config.host);
  mainPort = port;
  const admin =
    adminListener === undefined
      ? undefined
      : await listen(adminListener.server, adminListener.port, config.adminHost);
  const adminUrl = admin?.url ?? url;
  // Every instance purges; on PostgreSQL the store lets one run at a time and the others find
  // nothing to do.
  const retention = new Retention(store, {
    intervalMs: config.retentionIntervalMs,
    defaults: serverDefaults(config).retention,
    idempotencyWindowMs: config.idempotencyWindowS * 1000,
    onPurged: (removed) => logger.debug({ removed }, 'retention removed expired rows'),
    onFailed: (error) =>
      logger.warn({ err: error }, 'retention purge failed; trying again at the next interval'),
  });
  retention.start();

  if (config.adminToken === undefined) print(`Admin token (generated for this run): ${adminToken}`);
  if (config.databaseUrl.startsWith('sqlite:') && (await store.countProjects()) === 0) {
    const demo = await projects.create('demo');
    const token = signProjectToken(demo.jwtSecret, 'demo-user', '24h');
    print(
      [
        '',
        'A demo project was created in this new database:',
        `  project hash: ${demo.hash}`,
        `  JWT secret:   ${demo.jwtSecret}`,
        `  JWT (sub "demo-user", valid 24h): ${token}`,
        `  WebSocket:    ${(config.publicUrl ?? url).replace(/^http/, 'ws')}/ws/${demo.hash}?jwt=${token}`,
        '',
      ].join('\n'),
    );
  }
  print(`socket-base listening on ${url}`);
  logger.info({ port, host: config.host }, 'listening');
  if (admin !== undefined) {
    print(`socket-base admin listening on ${adminUrl}`);
    logger.info({ port: admin.port, host: config.adminHost }, 'admin listening');
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Not ready first, while still serving, so that load balancers stop sending new clients
      // here before this instance stops accepting them.
      shuttingDown = true;
      if (config.shutdownDelayMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, config.shutdownDelayMs));
      }
      transport.stopAccepting();
      messaging.stop();
      clearInterval(projectRefresh);
      const retentionStopped = retention.close();
      httpServer.close();
      httpServer.closeIdleConnections();
      // Accepted sends are stored and published, and this instance's members receive every
      // message stored so far (from the store if the bus does not bring it), within the timeout.
      const drained = await within(config.shutdownTimeoutMs, async () => {
        await messaging.drain();
        await hub.settle();
        await messaging.republished();
      });
      if (!drained) logger.warn('shutdown timeout passed before every message was delivered');
      messaging.close();
      await transport.close(CLOSE_CODES.goingAway.code, CLOSE_CODES.goingAway.reason);
      hub.closeAll(CLOSE_CODES.goingAway.code, CLOSE_CODES.goingAway.reason);
      expiry.close();
      httpServer.closeAllConnections();
      // The admin port stays up through the drain, so that /metrics and /readyz can be watched.
      adminListener?.server.close();
      adminListener?.server.closeAllConnections();
      api.close();
      // A purge batch still running uses the store: it finishes before the store closes.
      await retentionStopped;
      await store.close();
      // Its lease is given up at once: its users leave presence, and their events go out, now.
      await cluster.close();
      await bus.close();
      logger.info('stopped');
    })();
    return closing;
  };
  return { url, port, adminUrl, adminToken, metrics, close };
}

/** How tokens are judged beyond their signature, from the configuration. */
export function tokenRules(config: Config): TokenRules {
  return { clockToleranceMs: config.jwtClockToleranceS * 1000, requireExp: config.requireExp };
}

/** How rooms start, join and replay, from the configuration. */
export function hubOptions(config: Config): HubOptions {
  return {
    stream: STREAM_DEFAULTS,
    recoveryMaxMessages: config.recoveryMaxMessages,
    joinTimeoutMs: JOIN_TIMEOUT_MS,
    // Live messages waiting for a replay count like a backlog: past the limit the client is slow.
    maxHeldBytes: config.slowConsumerBytes,
    replay: {
      ...REPLAY_DEFAULTS,
      // Well below the slow-consumer limit, so that a replay never closes its own client.
      maxBacklogBytes: Math.min(REPLAY_DEFAULTS.maxBacklogBytes, config.slowConsumerBytes / 4),
    },
    prepare: prepareFrame,
  };
}

/** Runs `work`, resolving true when it finished within `ms`, false when the time ran out first. */
async function within(ms: number, work: () => Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work().then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The SDK's browser build, served so that a page can import it from the server it talks to. */
function sdkFiles(logger: Logger): StaticFiles {
  const folder = folderOf('@socket-base/client');
  if (folder === undefined) logger.warn('the SDK is not built: /sdk/socket-base.js answers 404');
  // Any page may import it, from any origin: it holds nothing but code.
  return new StaticFiles(folder, { 'access-control-allow-origin': '*' });
}
