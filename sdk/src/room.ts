import { Emitter } from './emitter.js';
import { SocketBaseError } from './errors.js';
import type {
  HistoryResponse,
  PresenceResponse,
  Ref,
  ServerFrame,
  WireMessage,
} from './generated/wire.js';
import { after, randomKey, type Timer } from './host.js';
import type { Api } from './http.js';
import type {
  Awaiting,
  HistoryOptions,
  JoinResult,
  PresenceList,
  PresenceOptions,
  RoomEvents,
  SendResult,
} from './types.js';

export interface RoomOptions {
  /** Receive presence: a list after every (re)join, then join and leave events (default false). */
  presence?: boolean;
  /** Start from this position (a `seq` the app kept, say across a page reload) on the first join. */
  since?: number;
}

/** What a room needs from its client; the client implements it, nothing else does. */
export interface RoomHost {
  readonly api: Api;
  readonly maxFrameBytes: number;
  /** Whether frames can be sent now (the connection is open). */
  readonly open: boolean;
  /** The client has ended: nothing will be joined or sent again. */
  readonly closed: boolean;
  /** The connected user, not told about in presence events. */
  readonly user: string | undefined;
  nextRef(): number;
  /** Sends a frame, or refuses it when too large (`frameTooLarge`). */
  transmit(text: string, ref: Ref, awaiting: Awaiting): void;
  tooLarge(text: string): boolean;
  /** Takes one of `maxPending` slots, or answers why not. */
  reserve(): SocketBaseError | undefined;
  release(): void;
  retryDelay(attempt: number): number;
  report(error: SocketBaseError): void;
}

interface Send {
  readonly ref: number;
  readonly text: string;
  readonly resolve: (result: SendResult) => void;
  readonly reject: (error: SocketBaseError) => void;
  rateLimited: number;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: SocketBaseError) => void;
}

const byRef = (a: Send, b: Send): number => a.ref - b.ref;
const RATE_LIMITED = 'Rate limit exceeded';
const SHUTTING_DOWN = 'Server is shutting down';

/**
 * One room of a client: its membership across connections, its position (the last `seq`
 * delivered), the sends waiting for the room to be joined and those waiting for their ack.
 * On every new connection it joins again from its position, so that a listener sees each message
 * once and in order, and then sends what waits, in the order the app sent it.
 */
export class Room extends Emitter<RoomEvents> {
  readonly name: string;
  readonly #host: RoomHost;
  readonly #presence: boolean;
  #since: number | undefined;

  /** join() was called and leave() was not. */
  #wanted = false;
  /** Joined on the current connection. */
  #joined = false;
  #joinRef: number | undefined;
  #joinedSeq = 0;
  #lastSeq: number | undefined;
  #joinWaiters: Waiter<JoinResult>[] = [];
  /** With presence, join() resolves once the room's list has come, so that `users` holds it. */
  #listWaiters: Waiter<JoinResult>[] = [];
  #listPending = false;
  /** Not yet sent on the current connection, in the app's order. */
  #queue: Send[] = [];
  /** Sent on the current connection, waiting for their ack, in the order sent. */
  #inflight: Send[] = [];
  #held: Timer | undefined;
  #users = new Set<string>();

  constructor(name: string, host: RoomHost, options: RoomOptions = {}) {
    super();
    this.name = name;
    this.#host = host;
    this.#presence = options.presence === true;
    this.#since = options.since;
  }

  /** The `seq` of the last message delivered to `message` listeners (undefined before a join). */
  get lastSeq(): number | undefined {
    return this.#lastSeq;
  }

  get joined(): boolean {
    return this.#joined;
  }

  /** Users known present (with `presence: true`), sorted; kept from the list and the events. */
  get users(): string[] {
    return [...this.#users].sort();
  }

  /** Joins, now or once connected; again after every reconnect, from the last position. */
  join(): Promise<JoinResult> {
    if (this.#host.closed) return Promise.reject(SocketBaseError.client('clientClosed'));
    if (this.#wanted && this.#joined && !this.#listPending) {
      return Promise.resolve({ seq: this.#joinedSeq });
    }
    const answer = new Promise<JoinResult>((resolve, reject) => {
      (this.#joined ? this.#listWaiters : this.#joinWaiters).push({ resolve, reject });
    });
    if (!this.#wanted) {
      this.#wanted = true;
      if (this.#host.open) this.#sendJoin();
    }
    return answer;
  }

  /** Leaves; sends still waiting to be sent are refused, those already sent get their answer. */
  leave(): Promise<void> {
    if (!this.#wanted) return Promise.resolve();
    this.#wanted = false;
    this.#joined = false;
    this.#listPending = false;
    this.#joinRef = undefined;
    this.#lastSeq = undefined;
    this.#users.clear();
    this.#releaseHold();
    this.#rejectWaiting(SocketBaseError.client('notJoined'));
    if (!this.#host.open) return Promise.resolve();
    const ref = this.#host.nextRef();
    return new Promise<void>((resolve) => {
      this.#host.transmit(JSON.stringify({ type: 'leave', room: this.name, ref }), ref, {
        answer: () => resolve(),
        lost: () => resolve(),
      });
    });
  }

  /**
   * Sends a message; resolves once it is stored. It carries an idempotency key, so that a retry
   * after a lost connection stores it once.
   */
  send(payload: string): Promise<SendResult> {
    if (this.#host.closed) return Promise.reject(SocketBaseError.client('clientClosed'));
    if (!this.#wanted) return Promise.reject(SocketBaseError.client('notJoined'));
    const ref = this.#host.nextRef();
    const text = JSON.stringify({
      type: 'message',
      room: this.name,
      payload,
      idempotencyKey: randomKey(),
      ref,
    });
    if (this.#host.tooLarge(text)) return Promise.reject(SocketBaseError.client('frameTooLarge'));
    const refused = this.#host.reserve();
    if (refused !== undefined) return Promise.reject(refused);
    return new Promise<SendResult>((resolve, reject) => {
      this.#queue.push({ ref, text, resolve, reject, rateLimited: 0 });
      this.#flush();
    });
  }

  /** A page of the room's stored history, oldest first (HTTP). */
  history(options: HistoryOptions = {}): Promise<HistoryResponse> {
    return this.#host.api.get<HistoryResponse>(`/rooms/${encodeURIComponent(this.name)}/messages`, {
      limit: options.limit,
      before: options.before,
      after: options.after,
      since: options.since,
    });
  }

  /** Who is present, over every instance (HTTP), sorted by user, paged. */
  presence(options: PresenceOptions = {}): Promise<PresenceList> {
    return this.#host.api.get<PresenceResponse>(
      `/rooms/${encodeURIComponent(this.name)}/presence`,
      { limit: options.limit, after: options.after },
    );
  }

  // ——— called by the client ———

  /** A new connection is open: join again from the last position. */
  connected(): void {
    if (this.#wanted) this.#sendJoin();
  }

  /** The connection closed: what was sent and not acknowledged goes first on the next one. */
  disconnected(): void {
    this.#joined = false;
    this.#joinRef = undefined;
    this.#listPending = false;
    // Joined but the list had not come: they wait for the next join instead.
    this.#joinWaiters.push(...this.#listWaiters.splice(0));
    this.#releaseHold();
    if (this.#inflight.length === 0) return;
    const unanswered = this.#inflight.splice(0);
    if (!this.#wanted) {
      // Sent before a leave: stored or not, there is no membership left to send them again in.
      for (const send of unanswered) this.#settle(send, SocketBaseError.client('connectionLost'));
      return;
    }
    this.#queue = unanswered.concat(this.#queue).sort(byRef);
  }

  /** The client ended: every waiting promise is refused. */
  ended(error: SocketBaseError): void {
    this.#wanted = false;
    this.#joined = false;
    this.#releaseHold();
    this.#rejectWaiting(error);
    for (const send of this.#inflight.splice(0)) this.#settle(send, error);
  }

  deliver(frame: WireMessage): void {
    if (!this.#joined) return;
    if (this.#lastSeq !== undefined && frame.seq <= this.#lastSeq) return;
    this.#lastSeq = frame.seq;
    this.emit('message', {
      id: frame.id,
      seq: frame.seq,
      room: frame.room,
      payload: frame.payload,
      from: frame.from,
      ts: frame.ts,
    });
  }

  presenceList(users: readonly { user: string }[], complete: boolean): void {
    if (!this.#joined || !this.#presence) return;
    const now = new Set(users.map((entry) => entry.user));
    const self = this.#host.user;
    const joins = [...now].filter((user) => !this.#users.has(user) && user !== self);
    const leaves = complete
      ? [...this.#users].filter((user) => !now.has(user) && user !== self)
      : [];
    // The list is in place before any listener hears of a change, so that one that redraws from
    // `users` draws the new list.
    if (complete) this.#users = now;
    else for (const user of now) this.#users.add(user);
    this.#listPending = false;
    const waiters = this.#listWaiters.splice(0);
    for (const user of joins) this.emit('presence', { type: 'join', user });
    for (const user of leaves) this.emit('presence', { type: 'leave', user });
    for (const waiter of waiters) waiter.resolve({ seq: this.#joinedSeq });
  }

  presenceChange(type: 'join' | 'leave', user: string): void {
    if (!this.#joined || !this.#presence) return;
    if (type === 'join') {
      if (this.#users.has(user)) return;
      this.#users.add(user);
    } else if (!this.#users.delete(user)) return;
    this.emit('presence', { type, user });
  }

  // ——— inside ———

  #sendJoin(): void {
    const ref = this.#host.nextRef();
    this.#joinRef = ref;
    const since = this.#lastSeq ?? this.#since;
    const frame: Record<string, unknown> = { type: 'join', room: this.name, ref };
    if (since !== undefined) frame.since = since;
    if (this.#presence) frame.presence = true;
    this.#host.transmit(JSON.stringify(frame), ref, {
      answer: (answer) => this.#joinAnswered(ref, since, answer),
      lost: () => {},
    });
  }

  #joinAnswered(ref: number, since: number | undefined, frame: ServerFrame): void {
    if (ref !== this.#joinRef || !this.#wanted) return;
    if (frame.type === 'error') {
      const error = SocketBaseError.fromServer(frame.message);
      this.#wanted = false;
      this.#joinRef = undefined;
      if (this.#joinWaiters.length === 0) this.#host.report(error);
      this.#rejectWaiting(error);
      return;
    }
    if (frame.type !== 'joined') return;
    this.#joined = true;
    this.#joinedSeq = frame.seq;
    this.#since = undefined;
    if (since === undefined) this.#lastSeq = frame.seq;
    else if (frame.recovered !== false) this.#lastSeq = since;
    else {
      this.#lastSeq = frame.seq;
      this.emit('reset', undefined);
    }
    const waiters = this.#joinWaiters.splice(0);
    this.#listPending = this.#presence;
    if (this.#presence) this.#listWaiters.push(...waiters);
    else for (const waiter of waiters) waiter.resolve({ seq: frame.seq });
    this.#flush();
  }

  /** Sends what waits, in order, while joined on an open connection and not held back. */
  #flush(): void {
    if (!this.#joined || !this.#host.open || this.#held !== undefined) return;
    while (this.#queue.length > 0) {
      const send = this.#queue.shift() as Send;
      this.#inflight.push(send);
      this.#host.transmit(send.text, send.ref, {
        answer: (frame) => this.#sendAnswered(send, frame),
        lost: () => {},
      });
    }
  }

  #sendAnswered(send: Send, frame: ServerFrame): void {
    const at = this.#inflight.indexOf(send);
    if (at === -1) return;
    this.#inflight.splice(at, 1);
    if (frame.type === 'ack' && frame.id !== undefined && frame.seq !== undefined) {
      this.#host.release();
      send.resolve(
        frame.duplicate === true
          ? { id: frame.id, seq: frame.seq, duplicate: true }
          : { id: frame.id, seq: frame.seq },
      );
      return;
    }
    if (frame.type === 'error' && frame.message === RATE_LIMITED) {
      // Back to the front, and nothing more is sent until it goes again: the app's order holds
      // for everything not already on its way.
      this.#requeue(send);
      this.#hold(this.#host.retryDelay(send.rateLimited++));
      return;
    }
    if (frame.type === 'error' && frame.message === SHUTTING_DOWN) {
      // Not stored: the server is going; the same key goes again on the next connection.
      this.#requeue(send);
      this.#hold(undefined);
      return;
    }
    this.#settle(
      send,
      frame.type === 'error'
        ? SocketBaseError.fromServer(frame.message)
        : SocketBaseError.client('unexpectedAnswer'),
    );
  }

  /** Puts a refused send back where the app's order puts it (refs grow in the order of sends). */
  #requeue(send: Send): void {
    let at = 0;
    while (at < this.#queue.length && (this.#queue[at] as Send).ref < send.ref) at++;
    this.#queue.splice(at, 0, send);
  }

  #hold(ms: number | undefined): void {
    this.#releaseHold();
    this.#held =
      ms === undefined
        ? { cancel: () => {} }
        : after(ms, () => {
            this.#held = undefined;
            this.#flush();
          });
  }

  #releaseHold(): void {
    this.#held?.cancel();
    this.#held = undefined;
  }

  #settle(send: Send, error: SocketBaseError): void {
    this.#host.release();
    send.reject(error);
  }

  #rejectWaiting(error: SocketBaseError): void {
    for (const waiter of this.#joinWaiters.splice(0)) waiter.reject(error);
    for (const waiter of this.#listWaiters.splice(0)) waiter.reject(error);
    for (const send of this.#queue.splice(0)) this.#settle(send, error);
  }
}
