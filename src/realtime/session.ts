/**
 * One client connection's protocol state: who it is, which rooms it is in, its rate limit. It reads
 * text frames, answers through its Connection, and never touches a socket.
 */
import { randomUUID } from 'node:crypto';
import { CLOSE_CODES, ERRORS, type ErrorCode, UserError } from '../errors.js';
import { type ClientFrame, serverFrame } from '../protocol/frames.js';
import { type ParseLimits, parseClientFrame } from '../protocol/parse.js';
import type { ClientHandler, Connection, PreparedFrame } from '../transport/connection.js';
import type { Hub, Member } from './hub.js';
import type { Messaging } from './messaging.js';
import { TokenBucket } from './rate-limit.js';

/** What every session shares: one object, so that a session carries no closures of its own. */
export interface SessionContext {
  readonly hub: Hub;
  readonly messaging: Messaging;
  readonly limits: ParseLimits & {
    maxRoomsPerConnection: number;
    rateLimit: number;
    rateBurst: number;
    slowConsumerBytes: number;
  };
  onError(code: ErrorCode): void;
  onClosed(session: Session): void;
  onRateLimited(): void;
  onSlowConsumer(): void;
}

const PONG = serverFrame({ type: 'pong' });

/** A session is its socket's handler: the transport hands it the frames, one object per client. */
export class Session implements Member, ClientHandler {
  readonly id = randomUUID();
  readonly rooms = new Set<string>();
  readonly project: string;
  readonly user: string;
  readonly #connection: Connection;
  readonly #context: SessionContext;
  readonly #bucket: TokenBucket;
  /** While a join waits for its room to flow here, later frames queue behind it, in order. */
  #barrier: Promise<void> | undefined;
  #open = true;

  constructor(connection: Connection, project: string, user: string, context: SessionContext) {
    this.#connection = connection;
    this.project = project;
    this.user = user;
    this.#context = context;
    this.#bucket = new TokenBucket(context.limits.rateLimit, context.limits.rateBurst);
  }

  /** The hub added this session: the `connected` frame goes out before anything it delivers. */
  admitted(): void {
    this.#connection.send(
      serverFrame({ type: 'connected', connectionId: this.id, user: this.user }),
    );
  }

  /** One text frame from the client. */
  onText(text: string): void {
    if (!this.#open) return;
    // The rate limit is counted on arrival, so that queued frames cannot dodge it.
    if (!this.#bucket.take()) {
      this.#context.onRateLimited();
      this.#sendError('rateLimited');
      return;
    }
    if (this.#barrier !== undefined) {
      const next = this.#barrier.then(() => this.#handle(text));
      this.#barrier = next;
      void next.finally(() => {
        if (this.#barrier === next) this.#barrier = undefined;
      });
      return;
    }
    const pending = this.#handle(text);
    if (pending !== undefined) {
      this.#barrier = pending;
      void pending.finally(() => {
        if (this.#barrier === pending) this.#barrier = undefined;
      });
    }
  }

  /** Sends a frame prepared for every receiver; a client too far behind is closed. */
  deliver(frame: PreparedFrame): void {
    if (!this.#open) return;
    if (this.#connection.backlog > this.#context.limits.slowConsumerBytes) {
      this.#context.onSlowConsumer();
      this.close(CLOSE_CODES.slowConsumer.code, CLOSE_CODES.slowConsumer.reason);
      return;
    }
    this.#connection.sendPrepared(frame);
  }

  /**
   * Closes the connection with a code and reason (a deleted project, a shutdown, a slow consumer),
   * after an error frame carrying `message` when one is given.
   */
  close(code: number, reason: string, message?: string): void {
    if (!this.#open) return;
    if (message !== undefined) this.#connection.send(serverFrame({ type: 'error', message }));
    this.#open = false;
    this.#context.hub.remove(this);
    this.#connection.close(code, reason);
  }

  /**
   * A binary frame whose bytes are not UTF-8 text: it goes through the same path as any frame (rate
   * limit, then parsing), where no text is no JSON, so it is answered `Invalid JSON`.
   */
  onUnreadable(): void {
    this.onText('');
  }

  /** The transport saw the socket end. */
  onClose(): void {
    this.#open = false;
    this.#context.hub.remove(this);
    this.#context.onClosed(this);
  }

  /** Handles one frame; returns a promise only when later frames must wait for this one. */
  #handle(text: string): Promise<void> | undefined {
    const parsed = parseClientFrame(text, this.#context.limits);
    if (!parsed.ok) {
      this.#sendError(parsed.error);
      return undefined;
    }
    return this.#dispatch(parsed.value);
  }

  #dispatch(frame: ClientFrame): Promise<void> | undefined {
    switch (frame.type) {
      case 'join':
        return this.#join(frame.room);
      case 'leave':
        this.rooms.delete(frame.room);
        this.#context.hub.leave(this, frame.room);
        this.#connection.send(serverFrame({ type: 'left', room: frame.room }));
        return undefined;
      case 'message':
        if (!this.rooms.has(frame.room)) {
          this.#sendError('notMember');
          return undefined;
        }
        this.#context.messaging
          .sendMessage(this.project, frame.room, this.user, frame.payload, 'ws')
          .catch((error: unknown) => this.#sendFailure(error));
        return undefined;
      case 'broadcast':
        this.#context.messaging
          .broadcast(this.project, this.user, frame.payload, 'ws')
          .catch((error: unknown) => this.#sendFailure(error));
        return undefined;
      case 'ping':
        this.#connection.send(PONG);
        return undefined;
      default: {
        const unreachable: never = frame;
        return unreachable;
      }
    }
  }

  #join(room: string): Promise<void> | undefined {
    if (!this.rooms.has(room)) {
      if (this.rooms.size >= this.#context.limits.maxRoomsPerConnection) {
        this.#sendError('tooManyRooms');
        return undefined;
      }
      this.rooms.add(room);
    }
    const joined = serverFrame({ type: 'joined', room });
    const ready = this.#context.hub.join(this, room);
    if (ready === undefined) {
      this.#connection.send(joined);
      return undefined;
    }
    return ready.then(
      () => {
        if (this.#open && this.rooms.has(room)) this.#connection.send(joined);
      },
      () => {
        this.rooms.delete(room);
        this.#context.hub.leave(this, room);
        this.#sendError('notDelivered');
      },
    );
  }

  #sendFailure(error: unknown): void {
    this.#sendError(error instanceof UserError ? error.code : 'internal');
  }

  #sendError(code: ErrorCode): void {
    this.#context.onError(code);
    if (!this.#open) return;
    this.#connection.send(serverFrame({ type: 'error', message: ERRORS[code].message }));
  }
}
