/**
 * One client connection's protocol state: who it is, what its token allows and until when, which
 * rooms it is in, its rate limit. It reads text frames, answers through its Connection, and never
 * touches a socket.
 */
import { randomUUID } from 'node:crypto';
import { RoomPermissions } from '../auth/room-permissions.js';
import type { PresencePage } from '../cluster/cluster-state.js';
import { isDuplicate } from '../domain.js';
import { CLOSE_CODES, ERRORS, type ErrorCode, UserError } from '../errors.js';
import { type ClientFrame, type Ref, type ServerFrame, serverFrame } from '../protocol/frames.js';
import { type ParseLimits, parseClientFrame, refOf } from '../protocol/parse.js';
import type { Authentication } from '../tenancy/projects.js';
import type { ClientHandler, Connection, PreparedFrame } from '../transport/connection.js';
import type { Expiring, ExpiryTicket, ExpiryWheel } from './expiry-wheel.js';
import type { Hub, Member } from './hub.js';
import type { Messaging } from './messaging.js';
import { PRESENCE_FRAME_MAX_USERS, type Presence } from './presence.js';
import type { ProjectLimits } from './project-limits.js';
import { TokenBucket } from './rate-limit.js';

/** What every session shares: one object, so that a session carries no closures of its own. */
export interface SessionContext {
  readonly hub: Hub;
  readonly messaging: Messaging;
  readonly presence: Presence;
  readonly projectLimits: ProjectLimits;
  /** Closes sessions whose token expires; one for every session of the instance. */
  readonly expiry: ExpiryWheel<Session>;
  /** Checks a token of a project as at connect (a `refresh` frame's). */
  authenticate(project: string, token: string): Promise<Authentication>;
  readonly limits: ParseLimits & {
    maxRoomsPerConnection: number;
    rateLimit: number;
    rateBurst: number;
    slowConsumerBytes: number;
  };
  onError(code: ErrorCode): void;
  onClosed(session: Session): void;
  onRateLimited(project: string): void;
  onSlowConsumer(): void;
}

const PONG = serverFrame({ type: 'pong' });

/** What a session's token grants: until when (its `exp`, in ms; none: forever) and which rooms. */
export interface TokenGrant {
  readonly expiresAtMs: number | undefined;
  /** Its `iat` (epoch s), for revocations; undefined: none. */
  readonly issuedAtS?: number | undefined;
  readonly permissions: RoomPermissions;
}

/** A token without `exp` and without claims: what sessions built without a grant get. */
const OPEN_GRANT: TokenGrant = {
  expiresAtMs: undefined,
  permissions: RoomPermissions.UNRESTRICTED,
};

/** Bits of what a connection is in a room (see Session's rooms). */
const PRESENT = 1;
const WATCHING = 2;

/** The `presence` frame: the room's users (at most a page), how many, and whether partial. */
function presenceFrame(room: string, page: PresencePage, ref: Ref | undefined): ServerFrame {
  const frame: ServerFrame = { type: 'presence', room, users: page.users, count: page.count };
  if (page.partial) frame.partial = true;
  if (ref !== undefined) frame.ref = ref;
  return frame;
}

/** A session is its socket's handler: the transport hands it the frames, one object per client. */
export class Session implements Member, ClientHandler, Expiring {
  readonly id = randomUUID();
  /**
   * The rooms it asked to be in, each with what it is there (PRESENT, WATCHING bits; 0 while the
   * join waits). Most connections are in one room: it is held in two fields (`#room`, `#roomBits`),
   * and a Map (`#rooms`, in join order) only from the second room on, kept from then on. A Map of
   * one room costs an idle connection about 250 bytes.
   */
  #room: string | undefined;
  #roomBits = 0;
  #rooms: Map<string, number> | undefined;
  /** Counted in its project's connections until it ends. */
  #counted = false;
  readonly project: string;
  readonly user: string;
  readonly #connection: Connection;
  readonly #context: SessionContext;
  readonly #bucket: TokenBucket;
  /** While a join waits for its room to flow here, later frames queue behind it, in order. */
  #barrier: Promise<void> | undefined;
  #open = true;
  /** The current token's room claims (a refresh replaces them). */
  #permissions: RoomPermissions;
  /** The current token's `exp` (ms) until admission puts it in the expiry wheel. */
  #expiresAtMs: number | undefined;
  #issuedAtS: number | undefined;
  /** Where the expiry wheel holds this session; undefined when its token has no `exp`. */
  #ticket: ExpiryTicket | undefined;

  constructor(
    connection: Connection,
    project: string,
    user: string,
    context: SessionContext,
    grant: TokenGrant = OPEN_GRANT,
  ) {
    this.#connection = connection;
    this.project = project;
    this.user = user;
    this.#context = context;
    this.#bucket = new TokenBucket(context.limits.rateLimit, context.limits.rateBurst);
    this.#permissions = grant.permissions;
    this.#expiresAtMs = grant.expiresAtMs;
    this.#issuedAtS = grant.issuedAtS;
  }

  /** When the token in force was issued (`iat`, epoch s), for revocations. */
  get issuedAtS(): number | undefined {
    return this.#issuedAtS;
  }

  /** The gateway counted this connection against its project's limits: released when it ends. */
  counted(): void {
    this.#counted = true;
  }

  /** The hub added this session: the `connected` frame goes out before anything it delivers. */
  admitted(): void {
    this.#connection.send(
      serverFrame({ type: 'connected', connectionId: this.id, user: this.user }),
    );
    // The deadline starts counting once admitted: a session that never was has nothing to close.
    if (this.#open && this.#expiresAtMs !== undefined) {
      this.#ticket = this.#context.expiry.schedule(this, this.#expiresAtMs);
    }
    this.#expiresAtMs = undefined;
  }

  /** The expiry wheel found the token's exp + tolerance passed: the error frame, then 4002. */
  expire(): void {
    this.#ticket = undefined;
    if (!this.#open) return;
    this.#context.onError('tokenExpired');
    const { code, reason } = CLOSE_CODES.tokenExpired;
    this.close(code, reason, ERRORS.tokenExpired.message);
  }

  /** One text frame from the client. */
  onText(text: string): void {
    if (!this.#open) return;
    // The rate limit is counted on arrival, so that queued frames cannot dodge it. A refused
    // frame is parsed only for its `ref`, so that the client learns which frame was refused.
    if (!this.#bucket.take()) {
      this.#context.onRateLimited(this.project);
      this.#sendError('rateLimited', refOf(text));
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

  /** Unsent bytes: a replay waits while there are many, rather than close its own client. */
  get backlog(): number {
    return this.#connection.backlog;
  }

  /** A frame of a replay, paced by the caller on `backlog`: no slow-consumer check. */
  replay(frame: PreparedFrame): void {
    if (this.#open) this.#connection.sendPrepared(frame);
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
    this.#stopExpiry();
    this.#context.hub.remove(this);
    this.#release();
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
    this.#stopExpiry();
    this.#context.hub.remove(this);
    // A join still waiting for its room must find this session gone.
    this.#release();
    this.#context.onClosed(this);
  }

  /** Whether it asked to be in the room (a join still waiting included); false once it is gone. */
  inRoom(room: string): boolean {
    const rooms = this.#rooms;
    return rooms === undefined ? this.#room === room : rooms.has(room);
  }

  /** The rooms it asked to be in, in join order (a copy: leaving them while going is safe). */
  roomNames(): string[] {
    const rooms = this.#rooms;
    if (rooms !== undefined) return [...rooms.keys()];
    return this.#room === undefined ? [] : [this.#room];
  }

  #roomCount(): number {
    return this.#rooms?.size ?? (this.#room === undefined ? 0 : 1);
  }

  #roomBitsOf(room: string): number {
    const rooms = this.#rooms;
    if (rooms !== undefined) return rooms.get(room) ?? 0;
    return this.#room === room ? this.#roomBits : 0;
  }

  #setRoom(room: string, bits: number): void {
    const rooms = this.#rooms;
    if (rooms !== undefined) {
      rooms.set(room, bits);
    } else if (this.#room === undefined || this.#room === room) {
      this.#room = room;
      this.#roomBits = bits;
    } else {
      // A second room: from now on every room is in the Map, the first one first.
      this.#rooms = new Map([
        [this.#room, this.#roomBits],
        [room, bits],
      ]);
      this.#room = undefined;
      this.#roomBits = 0;
    }
  }

  #deleteRoom(room: string): void {
    const rooms = this.#rooms;
    if (rooms !== undefined) {
      rooms.delete(room);
    } else if (this.#room === room) {
      this.#room = undefined;
      this.#roomBits = 0;
    }
  }

  /** Handles one frame; returns a promise only when later frames must wait for this one. */
  #handle(text: string): Promise<void> | undefined {
    const parsed = parseClientFrame(text, this.#context.limits);
    if (!parsed.ok) {
      this.#sendError(parsed.error, parsed.ref);
      return undefined;
    }
    return this.#dispatch(parsed.value);
  }

  #dispatch(frame: ClientFrame): Promise<void> | undefined {
    // Step 9 (the token's claims) comes before every check of rooms held, membership and rate.
    const permissions = this.#permissions;
    switch (frame.type) {
      case 'join':
        if (!permissions.allows(frame.room)) return this.#refuse(frame.ref);
        return this.#join(frame.room, frame.since, frame.presence === true, frame.ref);
      case 'leave':
        // Never refused: a refresh may have narrowed the claims under a room already joined.
        this.#leave(frame.room);
        this.#answer({ type: 'left', room: frame.room }, frame.ref);
        return undefined;
      case 'presence':
        if (!permissions.allows(frame.room)) return this.#refuse(frame.ref);
        this.#presence(frame.room, frame.ref);
        return undefined;
      case 'message':
        if (!permissions.publish || !permissions.allows(frame.room)) {
          return this.#refuse(frame.ref);
        }
        this.#message(frame.room, frame.payload, frame.idempotencyKey, frame.ref);
        return undefined;
      case 'refresh':
        return this.#refresh(frame.jwt, frame.ref);
      case 'broadcast': {
        if (!permissions.broadcast) return this.#refuse(frame.ref);
        const { ref } = frame;
        const sent = this.#context.messaging.broadcast(
          this.project,
          this.user,
          frame.payload,
          'ws',
        );
        // Without a ref there is no ack: no closure for one on the hot path.
        if (ref === undefined) sent.catch((error: unknown) => this.#sendFailure(error, undefined));
        else {
          sent.then(
            () => this.#send({ type: 'ack', ref }),
            (error: unknown) => this.#sendFailure(error, ref),
          );
        }
        return undefined;
      }
      case 'ping':
        if (frame.ref === undefined) this.#connection.send(PONG);
        else this.#send({ type: 'pong', ref: frame.ref });
        return undefined;
      default: {
        const unreachable: never = frame;
        return unreachable;
      }
    }
  }

  /**
   * A new token for this project and user: on success its `exp` and claims replace the current
   * ones; on any failure the current token stays in force. Later frames wait for the answer, so
   * that a join sent right after a refresh is judged by the new claims.
   */
  #refresh(jwt: string, ref: Ref | undefined): Promise<void> {
    return this.#context.authenticate(this.project, jwt).then((auth) => {
      if (!this.#open) return;
      if (!auth.ok) return this.#sendError(auth.error, ref);
      if (auth.sub !== this.user) return this.#sendError('invalidToken', ref);
      this.#permissions = auth.permissions;
      this.#issuedAtS = auth.issuedAtS;
      this.#stopExpiry();
      const { expiresAtMs } = auth;
      if (expiresAtMs !== undefined) {
        this.#ticket = this.#context.expiry.schedule(this, expiresAtMs);
      }
      this.#answer(
        { type: 'refreshed', exp: expiresAtMs === undefined ? null : expiresAtMs / 1000 },
        ref,
      );
    });
  }

  /** Step 9: the token's claims forbid the frame. */
  #refuse(ref: Ref | undefined): undefined {
    this.#sendError('notAllowed', ref);
    return undefined;
  }

  #stopExpiry(): void {
    if (this.#ticket === undefined) return;
    this.#context.expiry.cancel(this, this.#ticket);
    this.#ticket = undefined;
  }

  #message(room: string, payload: string, key: string | undefined, ref: Ref | undefined): void {
    if (!this.inRoom(room)) {
      this.#sendError('notMember', ref);
      return;
    }
    const stored = this.#context.messaging.sendMessage(
      this.project,
      room,
      this.user,
      payload,
      'ws',
      key,
    );
    if (ref === undefined) {
      stored.catch((error: unknown) => this.#sendFailure(error, undefined));
      return;
    }
    stored.then(
      (appended) => {
        const { room: where, id, seq } = appended;
        this.#send(
          isDuplicate(appended)
            ? { type: 'ack', ref, room: where, id, seq, duplicate: true }
            : { type: 'ack', ref, room: where, id, seq },
        );
      },
      (error: unknown) => this.#sendFailure(error, ref),
    );
  }

  #join(
    room: string,
    since: number | undefined,
    watch: boolean,
    ref: Ref | undefined,
  ): Promise<void> | undefined {
    if (!this.inRoom(room)) {
      if (this.#roomCount() >= this.#context.limits.maxRoomsPerConnection) {
        this.#sendError('tooManyRooms', ref);
        return undefined;
      }
      this.#setRoom(room, 0);
    }
    const answer = (seq: number, recovered: boolean | undefined): Promise<void> | undefined => {
      if (!this.#open || !this.inRoom(room)) return undefined;
      const joined: ServerFrame =
        recovered === undefined
          ? { type: 'joined', room, seq }
          : { type: 'joined', room, seq, recovered };
      this.#answer(joined, ref);
      return this.#beginPresence(room, watch);
    };
    const ready = this.#context.hub.join(this, room, since, answer);
    if (ready === undefined) return undefined;
    return ready.catch((error: unknown) => {
      this.#leave(room);
      this.#sendFailure(error, ref);
    });
  }

  /**
   * The membership began: present from now on; with `watch`, the room's list goes out next (the
   * promise: the room holds this member's messages until it has), then the events. The latest join
   * of a room decides whether its events come.
   */
  #beginPresence(room: string, watch: boolean): Promise<void> | undefined {
    const { presence } = this.#context;
    const was = this.#roomBitsOf(room);
    if ((was & PRESENT) === 0) presence.enter(this.project, room, this.user);
    this.#setRoom(room, watch ? PRESENT | WATCHING : PRESENT);
    if (!watch) {
      if ((was & WATCHING) !== 0) presence.unwatch(this, room);
      return undefined;
    }
    return presence.watch(this, room, (page) => {
      if (this.#open && this.inRoom(room)) this.#send(presenceFrame(room, page, undefined));
    });
  }

  /** The membership ends (a leave, or a join that failed): no longer present, no more events. */
  #leave(room: string): void {
    const was = this.#roomBitsOf(room);
    this.#deleteRoom(room);
    this.#context.hub.leave(this, room);
    this.#forget(room, was);
  }

  #forget(room: string, was: number): void {
    const { presence } = this.#context;
    if ((was & PRESENT) !== 0) presence.exit(this.project, room, this.user);
    if ((was & WATCHING) !== 0) presence.unwatch(this, room);
  }

  /**
   * The connection ended (the hub has let it go): out of every room's presence, and of its
   * project's count; its rooms are then forgotten, so that a join still waiting finds it gone.
   */
  #release(): void {
    const rooms = this.#rooms;
    if (rooms !== undefined) for (const [room, was] of rooms) this.#forget(room, was);
    else if (this.#room !== undefined) this.#forget(this.#room, this.#roomBits);
    this.#rooms = undefined;
    this.#room = undefined;
    this.#roomBits = 0;
    if (this.#counted) {
      this.#counted = false;
      this.#context.projectLimits.release(this.project, this.user);
    }
  }

  #presence(room: string, ref: Ref | undefined): void {
    if (!this.inRoom(room)) {
      this.#sendError('notMember', ref);
      return;
    }
    void this.#context.presence
      .read(this.project, room, undefined, PRESENCE_FRAME_MAX_USERS)
      .then((page) => this.#send(presenceFrame(room, page, ref)));
  }

  /** Sends a direct answer, with the frame's `ref` when it had one. */
  #answer(frame: ServerFrame & { ref?: Ref }, ref: Ref | undefined): void {
    if (ref !== undefined) frame.ref = ref;
    this.#send(frame);
  }

  #send(frame: ServerFrame): void {
    if (this.#open) this.#connection.send(serverFrame(frame));
  }

  #sendFailure(error: unknown, ref: Ref | undefined): void {
    if (error instanceof UserError && error.code === 'rateLimited') {
      this.#context.onRateLimited(this.project);
    }
    this.#sendError(error instanceof UserError ? error.code : 'internal', ref);
  }

  #sendError(code: ErrorCode, ref?: Ref): void {
    this.#context.onError(code);
    const message = ERRORS[code].message;
    this.#send(ref === undefined ? { type: 'error', message } : { type: 'error', message, ref });
  }
}
