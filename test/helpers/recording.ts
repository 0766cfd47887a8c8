/**
 * Doubles for unit tests of the realtime layer: a Connection that records what it is sent, and a
 * bus (the real MemoryBus underneath) whose subscriptions can be held or refused.
 */
import type { Bus, BusEvent, BusHandler } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { MemoryClusterState } from '../../src/cluster/memory-cluster-state.js';
import { loadConfig } from '../../src/config.js';
import { noSettings } from '../../src/domain.js';
import { hubOptions } from '../../src/main.js';
import { BusDispatcher } from '../../src/realtime/bus-dispatcher.js';
import { Delivery } from '../../src/realtime/delivery.js';
import { ExpiryWheel } from '../../src/realtime/expiry-wheel.js';
import { Gateway } from '../../src/realtime/gateway.js';
import { Hub } from '../../src/realtime/hub.js';
import { Messaging } from '../../src/realtime/messaging.js';
import { Presence } from '../../src/realtime/presence.js';
import { ProjectLimits } from '../../src/realtime/project-limits.js';
import { Session, type SessionContext } from '../../src/realtime/session.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { limitsReader } from '../../src/tenancy/project-settings.js';
import { Projects } from '../../src/tenancy/projects.js';
import type { Connection, PreparedFrame } from '../../src/transport/connection.js';

export type Frame = Record<string, unknown>;

/** Frames as plain bytes of JSON text: what the realtime layer sends, readable again. */
export const prepareText = (text: string): PreparedFrame => Buffer.from(text) as PreparedFrame;

export class RecordingConnection implements Connection {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  backlog = 0;

  send(text: string): void {
    if (this.closed) throw new Error(`sent after close: ${text}`);
    this.frames.push(JSON.parse(text) as Frame);
  }

  sendPrepared(frame: PreparedFrame): void {
    this.send(frame.toString('utf8'));
  }

  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }

  types(): unknown[] {
    return this.frames.map((frame) => frame.type);
  }
}

/** A MemoryBus whose `subscribe` can be made to wait for `release()` or to fail. */
export class ControlledBus implements Bus {
  readonly inner = new MemoryBus();
  readonly subscribed: string[] = [];
  readonly unsubscribed: string[] = [];
  mode: 'pass' | 'hold' | 'fail' = 'pass';
  #held: (() => void)[] = [];

  publish(topic: string, event: BusEvent): Promise<void> {
    return this.inner.publish(topic, event);
  }

  async subscribe(topic: string): Promise<void> {
    this.subscribed.push(topic);
    if (this.mode === 'fail') throw new Error('subscribe refused');
    await this.inner.subscribe(topic);
    if (this.mode === 'hold') await new Promise<void>((resolve) => this.#held.push(resolve));
  }

  unsubscribe(topic: string): Promise<void> {
    this.unsubscribed.push(topic);
    return this.inner.unsubscribe(topic);
  }

  /** Lets every held subscription resolve. */
  release(): void {
    for (const resolve of this.#held.splice(0)) resolve();
  }

  onEvent(handler: BusHandler): void {
    this.inner.onEvent(handler);
  }

  onReconnect(handler: () => void): void {
    this.inner.onReconnect(handler);
  }

  healthy(): boolean {
    return this.inner.healthy();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Resolves after pending microtasks and one macrotask: what the code under test queued has run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface RealtimeOptions {
  rateLimit?: number;
  rateBurst?: number;
  slowConsumerBytes?: number;
}

/**
 * The realtime layer wired as main.ts wires it, on a real in-memory SQLite store and the given
 * bus, with no transport: sessions answer through RecordingConnections.
 */
export function realtime(bus: Bus, options: RealtimeOptions = {}) {
  const store = SqliteStore.open(':memory:');
  const projects = new Projects(store, bus);
  const ignore = (): void => undefined;
  const cluster = new MemoryClusterState({ ttlMs: 30_000 });
  const projectLimits = new ProjectLimits(
    cluster,
    limitsReader((hash) => projects.settingsOf(hash), noSettings()),
  );
  const messaging = new Messaging(
    store,
    bus,
    {
      onAccepted: ignore,
      onStored: ignore,
      onPublished: ignore,
      onPublishFailed: ignore,
      onRepublished: ignore,
      onRepublishDropped: ignore,
    },
    projectLimits,
  );
  const presence = new Presence(cluster, bus, prepareText, { onEventLost: ignore });
  const delivery = new Delivery(prepareText, { onDelivered: ignore });
  const hub = new Hub(
    bus,
    store,
    {
      onRoomMessage: delivery.roomMessage,
      onGapFilled: ignore,
      onRoomsChanged: ignore,
      onSubscriptionsChanged: ignore,
    },
    { ...hubOptions(loadConfig({ DATABASE_URL: 'sqlite::memory:' })), prepare: prepareText },
  );
  const dispatcher = new BusDispatcher(hub, projects, delivery, presence, ignore);
  bus.onEvent(dispatcher.handle);
  const errors: string[] = [];
  const context: SessionContext = {
    hub,
    messaging,
    presence,
    projectLimits,
    expiry: new ExpiryWheel<Session>({ toleranceMs: 0 }),
    authenticate: (hash, token) => projects.authenticate(hash, token),
    limits: {
      maxRoomLength: 256,
      maxRoomsPerConnection: 10,
      rateLimit: options.rateLimit ?? 1000,
      rateBurst: options.rateBurst ?? 2000,
      slowConsumerBytes: options.slowConsumerBytes ?? 1 << 20,
    },
    onError: (code) => {
      errors.push(code);
    },
    onClosed: ignore,
    onRateLimited: ignore,
    onSlowConsumer: ignore,
  };
  const gateway = new Gateway(projects, context, { onOpen: ignore, onRefused: ignore });
  const session = (project: string, user: string) => {
    const connection = new RecordingConnection();
    return { connection, session: new Session(connection, project, user, context) };
  };
  return {
    store,
    cluster,
    projects,
    messaging,
    hub,
    gateway,
    context,
    errors,
    session,
    async close() {
      context.expiry.close();
      await store.close();
      await bus.close();
    },
  };
}
