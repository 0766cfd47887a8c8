/**
 * The composition root: config → Store → Bus → services → HTTP + WebSocket. The only file that
 * picks implementations.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateAdminToken } from './auth/admin-token.js';
import { signProjectToken } from './auth/project-jwt.js';
import { type Bus, CONTROL_TOPIC } from './bus/bus.js';
import { MemoryBus } from './bus/memory-bus.js';
import { RedisBus } from './bus/redis-bus.js';
import type { Config } from './config.js';
import { CLOSE_CODES, ERRORS } from './errors.js';
import { AdminRoutes } from './http/admin.js';
import { ApiRoutes } from './http/api.js';
import { createRequestHandler } from './http/router.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { serverFrame } from './protocol/frames.js';
import { Fanout } from './realtime/fanout.js';
import { Gateway } from './realtime/gateway.js';
import { Hub } from './realtime/hub.js';
import { Messaging } from './realtime/messaging.js';
import type { SessionContext } from './realtime/session.js';
import { PostgresStore } from './store/postgres-store.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { Store, StoreStats } from './store/store.js';
import { Projects } from './tenancy/projects.js';
import { prepareFrame, WsTransport } from './transport/ws-transport.js';

export interface RunningServer {
  /** http://host:port with the real port. */
  readonly url: string;
  readonly port: number;
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
  if (url.startsWith('sqlite:')) {
    return SqliteStore.open(url.slice('sqlite:'.length), hooks);
  }
  return PostgresStore.open(url, hooks);
}

async function openBus(config: Config, logger: Logger): Promise<Bus> {
  if (config.redisUrl === undefined) return new MemoryBus();
  return RedisBus.connect({
    url: config.redisUrl,
    prefix: config.redisPrefix,
    hooks: {
      onMalformed: () => logger.warn('malformed event on the bus dropped'),
      onLinkError: (link, error) => logger.warn({ link, err: error.message }, 'redis link error'),
    },
  });
}

export async function startServer(config: Config, options: StartOptions): Promise<RunningServer> {
  const { logger } = options;
  const print = options.print ?? ((text: string) => process.stdout.write(`${text}\n`));
  const metrics = new Metrics();
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
  const projects = new Projects(store, bus);
  const messaging = new Messaging(store, bus, {
    onAccepted: (kind, via) => {
      metrics.hot.messagesIn[kind][via]++;
    },
    onPublished: () => {
      metrics.hot.busPublished++;
    },
    onPublishFailed: (error) => logger.warn({ err: error }, 'stored message not published'),
  });
  let fanout: Fanout | undefined;
  const hub = new Hub(bus, store, {
    onRoomMessage: (members, message) => fanout?.deliverRoomMessage(members, message),
    onGapFilled: (count) => metrics.gapsFilled.inc(count),
    onRoomsChanged: (count) => metrics.rooms.set(count),
    onSubscriptionsChanged: (count) => metrics.busSubscriptions.set(count),
  });
  fanout = new Fanout(hub, projects, prepareFrame, {
    onDelivered: (kind, count) => {
      if (kind === 'message') metrics.hot.messageDeliveries += count;
      else metrics.hot.broadcastDeliveries += count;
    },
    onReceived: () => {
      metrics.hot.busReceived++;
    },
  });
  projects.onChange((event) => {
    if (event.kind === 'project-deleted') {
      const { code, reason } = CLOSE_CODES.unknownProject;
      hub.closeProject(event.project, code, reason);
    }
  });
  bus.onEvent(fanout.handle);
  bus.onReconnect(() => {
    metrics.busReconnects.inc();
    hub.catchUp();
  });
  await bus.subscribe(CONTROL_TOPIC);

  const context: SessionContext = {
    hub,
    messaging,
    limits: config,
    onError: (code) => metrics.errors.inc({ message: ERRORS[code].message }),
    onClosed: (session) => {
      metrics.connections.dec();
      logger.debug({ connectionId: session.id }, 'connection closed');
    },
    onRateLimited: () => metrics.rateLimited.inc({ via: 'ws' }),
    onSlowConsumer: () => metrics.slowConsumerCloses.inc(),
  };
  const gateway = new Gateway(projects, context, {
    onOpen: (session, address) => {
      metrics.connections.inc();
      metrics.connectionsTotal.inc();
      logger.debug(
        { connectionId: session.id, project: session.project, user: session.user, address },
        'connection opened',
      );
    },
    onRefused: (reason, address) => {
      metrics.connectionsRefused.inc({ reason });
      logger.debug({ reason, address }, 'connection refused');
    },
  });

  const adminToken = config.adminToken ?? generateAdminToken();
  let shuttingDown = false;
  const api = new ApiRoutes(projects, messaging, store, {
    ...config,
    onError: (code) => metrics.errors.inc({ message: ERRORS[code].message }),
    onRateLimited: () => metrics.rateLimited.inc({ via: 'http' }),
  });
  const httpServer = createServer(
    createRequestHandler({
      api,
      admin: new AdminRoutes(projects, adminToken, config.maxBodyBytes),
      readiness: {
        store: () => store.ping(),
        bus: () => bus.healthy(),
        shuttingDown: () => shuttingDown,
      },
      registry: metrics.registry,
      logger,
    }),
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
    onRefused: (reason, address) => {
      metrics.connectionsRefused.inc({ reason });
      logger.debug({ reason, address }, 'connection refused');
    },
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  const wildcard = config.host === '0.0.0.0' || config.host === '::' || config.host === '';
  const host = wildcard
    ? '127.0.0.1'
    : config.host.includes(':')
      ? `[${config.host}]`
      : config.host;
  const url = `http://${host}:${port}`;

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
        `  WebSocket:    ${url.replace('http', 'ws')}/ws/${demo.hash}?jwt=${token}`,
        '',
      ].join('\n'),
    );
  }
  print(`socket-base listening on ${url}`);
  logger.info({ port, host: config.host }, 'listening');

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
      httpServer.close();
      httpServer.closeIdleConnections();
      await messaging.drain();
      await transport.close(CLOSE_CODES.goingAway.code, CLOSE_CODES.goingAway.reason);
      hub.closeAll(CLOSE_CODES.goingAway.code, CLOSE_CODES.goingAway.reason);
      httpServer.closeAllConnections();
      api.close();
      await store.close();
      await bus.close();
      logger.info('stopped');
    })();
    return closing;
  };
  return { url, port, adminToken, metrics, close };
}
