import { backoffDelay, DEFAULT_RECONNECT, type ReconnectOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { SocketBaseError, TERMINAL_CLOSES, TOKEN_CLOSES } from './errors.js';
import type { Ref, ServerFrame } from './generated/wire.js';
import {
  after,
  type FetchFunction,
  host,
  overLimit,
  type Timer,
  type WebSocketConstructor,
  type WebSocketLike,
} from './host.js';
import { Api } from './http.js';
import { Room, type RoomHost, type RoomOptions } from './room.js';
import { expiryOf, type TokenSource, Tokens } from './token.js';
import type { Awaiting, ClientEvents, ConnectionState } from './types.js';

export interface SocketBaseOptions {
  /** The server's base URL (http, https, ws or wss), or several: instances tried in turn. */
  url: string | readonly string[];
  /** The project's hash. */
  hash: string;
  /** A JWT, or a function that returns one (called again when one expires or is refused). */
  token: TokenSource;
  /** A WebSocket constructor where there is no global one (Node 20: the `ws` package). */
  WebSocket?: WebSocketConstructor;
  /** A fetch function where there is no global one. */
  fetch?: FetchFunction;
  reconnect?: ReconnectOptions;
  /** Sends and broadcasts waiting for an answer, at most (default 1000); past it they reject. */
  maxPending?: number;
  /** The server's MAX_FRAME_BYTES (default 65536): larger sends are refused before sending. */
  maxFrameBytes?: number;
  /** A ping is sent after this long without a frame from the server (default 25000 ms). */
  pingIntervalMs?: number;
  /** No answer this long after a ping: the connection is taken for dead (default 10000 ms). */
  pongTimeoutMs?: number;
  /** A connection that is not `open` after this long is given up and tried again (default 10000 ms). */
  connectTimeoutMs?: number;
  /** A token with `exp` is refreshed this long before it (default 30000 ms, at most half its life). */
  refreshAheadMs?: number;
}

const DEFAULTS = {
  maxPending: 1000,
  maxFrameBytes: 65_536,
  pingIntervalMs: 25_000,
  pongTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  refreshAheadMs: 30_000,
} as const;

interface QueuedBroadcast {
  readonly text: string;
  readonly ref: number;
  readonly resolve: () => void;
  readonly reject: (error: SocketBaseError) => void;
  rateLimited: number;
}

type Limits = Required<
  Omit<SocketBaseOptions, 'url' | 'hash' | 'token' | 'WebSocket' | 'fetch' | 'reconnect'>
>;

const OPEN = 1;
/** Our own code for a connection we gave up on (no pong, no `connected` in time). */
const GAVE_UP = 4000;

/**
 * A connection to one socket-base project that comes back by itself: it reconnects with backoff,
 * rejoins every room from the last message it delivered, sends again what was not acknowledged
 * (with the same idempotency key), and refreshes its token before it expires.
 */
export class SocketBase extends Emitter<ClientEvents> {
  readonly #urls: readonly string[];
  readonly #hash: string;
  readonly #tokens: Tokens;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #reconnect: { minDelayMs: number; maxDelayMs: number };
  readonly #limits: Limits;
  readonly #rooms = new Map<string, Room>();
  readonly #awaiting = new Map<Ref, Awaiting>();
  readonly #api: Api;
  readonly #roomHost: RoomHost;

  #state: ConnectionState = 'connecting';
  #socket: WebSocketLike | undefined;
  #urlIndex = 0;
  #attempt = 0;
  #tokenRenewed = false;
  #nextRef = 1;
  #pending = 0;
  #user: string | undefined;
  #connectionId: string | undefined;
  #closingError: SocketBaseError | undefined;
  #retry: Timer | undefined;
  #connectDeadline: Timer | undefined;
  #watch: Timer | undefined;
  #refresh: Timer | undefined;
  #lastInbound = 0;
  #pingSentAt: number | undefined;
  #broadcasts: QueuedBroadcast[] = [];
  readonly #online = (): void => this.#onOnline();

  constructor(options: SocketBaseOptions) {
    super();
    const urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (urls.length === 0) throw new TypeError('url: at least one URL');
    this.#urls = urls.map((url) => url.replace(/\/+$/, ''));
    if (typeof options.hash !== 'string' || options.hash === '')
      throw new TypeError('hash: required');
    this.#hash = options.hash;
    this.#tokens = new Tokens(options.token);
    this.#WebSocket = options.WebSocket ?? host.WebSocket;
    this.#reconnect = { ...DEFAULT_RECONNECT, ...options.reconnect };
    if (
      !(this.#reconnect.minDelayMs >= 0 && this.#reconnect.maxDelayMs >= this.#reconnect.minDelayMs)
    ) {
      throw new TypeError('reconnect: 0 ≤ minDelayMs ≤ maxDelayMs');
    }
    this.#limits = {
      maxPending: options.maxPending ?? DEFAULTS.maxPending,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
      pingIntervalMs: options.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
      pongTimeoutMs: options.pongTimeoutMs ?? DEFAULTS.pongTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      refreshAheadMs: options.refreshAheadMs ?? DEFAULTS.refreshAheadMs,
    };
    this.#api = new Api({
      base: () => httpBase(this.#currentUrl()),
      hash: this.#hash,
      token: () => this.#tokens.current(Date.now()),
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    });
    this.#roomHost = this.#makeRoomHost();
    if (host.window !== undefined) host.addEventListener?.('online', this.#online);
    // Started after the constructor returns, so that a `state` listener added next sees 'connecting'.
    void Promise.resolve().then(() => {
      if (this.#state !== 'closed') {
        this.emit('state', 'connecting');
        void this.#connect();
      }
    });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The user the server connected (the token's `sub`), once open. */
  get user(): string | undefined {
    return this.#user;
  }

  /** The server's id for the current connection, once open. */
  get connectionId(): string | undefined {
    return this.#connectionId;
  }

  /** The room of this name: the same object every time it is asked for. */
  room(name: string, options: RoomOptions = {}): Room {
    let room = this.#rooms.get(name);
    if (room === undefined) {
      room = new Room(name, this.#roomHost, options);
      this.#rooms.set(name, room);
    }
    return room;
  }

  /** Sends to every connection of the project; resolves once published. Waits while disconnected. */
  broadcast(payload: string): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(SocketBaseError.client('clientClosed'));
    const ref = this.#nextRef++;
    const text = JSON.stringify({ type: 'broadcast', payload, ref });
    if (this.#tooLarge(text)) return Promise.reject(SocketBaseError.client('frameTooLarge'));
    const refused = this.#reserve();
    if (refused !== undefined) return Promise.reject(refused);
    return new Promise<void>((resolve, reject) => {
      this.#broadcasts.push({ text, ref, resolve, reject, rateLimited: 0 });
      this.#flushBroadcasts();
    });
  }

  /** Ends for good: the socket closes, pending sends and joins reject with `Client closed`. */
  close(): void {
    this.#end(SocketBaseError.client('clientClosed'), false);
  }

  // ——— the connection ———

  #currentUrl(): string {
    return this.#urls[this.#urlIndex % this.#urls.length] as string;
  }

  async #connect(): Promise<void> {
    this.#retry = undefined;
    const WebSocket = this.#WebSocket;
    if (WebSocket === undefined) {
      this.#end(SocketBaseError.client('noWebSocket'), true);
      return;
    }
    let token: string;
    try {
      token = await this.#tokens.current(Date.now());
    } catch (error) {
      if (this.#state === 'closed') return;
      this.#report(
        error instanceof SocketBaseError ? error : SocketBaseError.client('tokenFailed'),
      );
      this.#scheduleReconnect();
      return;
    }
    if (this.#state === 'closed') return;
    const url = `${wsBase(this.#currentUrl())}/ws/${encodeURIComponent(this.#hash)}?jwt=${encodeURIComponent(token)}`;
    let socket: WebSocketLike;
    try {
      socket = new WebSocket(url) as WebSocketLike;
    } catch {
      this.#report(SocketBaseError.client('connectionFailed'));
      this.#scheduleReconnect();
      return;
    }
    this.#socket = socket;
    this.#closingError = undefined;
    socket.onmessage = (event) => {
      if (this.#socket === socket) this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.#socket === socket) this.#dropped(event.code, event.reason);
    };
    socket.onerror = () => {};
    this.#connectDeadline = after(
      this.#limits.connectTimeoutMs,
      () => {
        if (this.#socket === socket && this.#state !== 'open') this.#abandon(socket);
      },
      false,
    );
  }

  /** Gives up on a socket that went quiet, without waiting for a close that may never come. */
  #abandon(socket: WebSocketLike): void {
    socket.onmessage = null;
    socket.onclose = null;
    try {
      socket.close(GAVE_UP);
    } catch {
      // Already closing: nothing more to do with it.
    }
    this.#dropped(GAVE_UP, '');
  }

  #receive(data: unknown): void {
    this.#lastInbound = Date.now();
    let frame: ServerFrame;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : String(data)) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case 'message':
        this.#rooms.get(frame.room)?.deliver(frame);
        return;
      case 'broadcast':
        this.emit('broadcast', { payload: frame.payload, from: frame.from, ts: frame.ts });
        return;
      case 'presence_join':
        this.#rooms.get(frame.room)?.presenceChange('join', frame.user);
        return;
      case 'presence_leave':
        this.#rooms.get(frame.room)?.presenceChange('leave', frame.user);
        return;
      case 'connected':
        this.#opened(frame.user, frame.connectionId);
        return;
      case 'presence':
        if (frame.ref === undefined) {
          this.#rooms.get(frame.room)?.presenceList(frame.users, frame.count <= frame.users.length);
          return;
        }
        break;
      case 'error':
        if (frame.ref === undefined) {
          // The server explains a close it is about to make.
          this.#closingError = SocketBaseError.fromServer(frame.message);
          return;
        }
        break;
      default:
        break;
    }
    const ref = 'ref' in frame ? frame.ref : undefined;
    if (ref === undefined) return;
    const awaiting = this.#awaiting.get(ref);
    if (awaiting === undefined) {
      if (frame.type === 'error') this.#report(SocketBaseError.fromServer(frame.message));
      return;
    }
    this.#awaiting.delete(ref);
    awaiting.answer(frame);
  }

  #opened(user: string, connectionId: string): void {
    this.#connectDeadline?.cancel();
    this.#user = user;
    this.#connectionId = connectionId;
    this.#attempt = 0;
    this.#tokenRenewed = false;
    this.#setState('open');
    this.#pingSentAt = undefined;
    this.#armWatch(this.#limits.pingIntervalMs);
    this.#scheduleRefresh(this.#tokenExpiry());
    for (const room of this.#rooms.values()) room.connected();
    this.#flushBroadcasts();
  }

  #dropped(code: number, reason: string): void {
    const explained = this.#closingError;
    this.#socket = undefined;
    this.#closingError = undefined;
    this.#stopTimers();
    const lost = [...this.#awaiting.values()];
    this.#awaiting.clear();
    for (const awaiting of lost) awaiting.lost();
    for (const room of this.#rooms.values()) room.disconnected();
    if (this.#state === 'closed') return;
    const error =
      explained === undefined
        ? SocketBaseError.fromClose(code, reason)
        : new SocketBaseError(explained.message, explained.code, { closeCode: code });
    if (TERMINAL_CLOSES.has(code)) {
      this.#end(error, true);
      return;
    }
    if (TOKEN_CLOSES.has(code)) {
      if (this.#tokenRenewed || !this.#tokens.renewable) {
        this.#end(error, true);
        return;
      }
      // Asked once for a new token, and tried again at once; a second refusal ends it.
      this.#tokenRenewed = true;
      this.#tokens.drop();
      this.#setState('reconnecting');
      this.#retry = after(0, () => void this.#connect());
      return;
    }
    if (explained !== undefined) this.#report(explained);
    this.#urlIndex++;
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#state === 'closed') return;
    this.#setState('reconnecting');
    this.#retry?.cancel();
    const delay = backoffDelay(this.#attempt++, this.#reconnect);
    this.#retry = after(delay, () => void this.#connect());
  }

  #onOnline(): void {
    if (this.#state === 'reconnecting' && this.#retry !== undefined && this.#socket === undefined) {
      // The network is back: no reason to wait out the backoff.
      this.#retry.cancel();
      void this.#connect();
    } else if (this.#state === 'open' && this.#pingSentAt === undefined) {
      // The socket may have died while the network was gone: find out now, not in 25 s.
      this.#ping();
    }
  }

  #end(error: SocketBaseError, report: boolean): void {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    if (host.window !== undefined) host.removeEventListener?.('online', this.#online);
    this.#retry?.cancel();
    const socket = this.#socket;
    if (socket !== undefined) {
      this.#socket = undefined;
      socket.onmessage = null;
      socket.onclose = null;
      try {
        socket.close(1000);
      } catch {
        // Not yet open in some runtimes: it is dropped all the same.
      }
    }
    this.#stopTimers();
    const lost = [...this.#awaiting.values()];
    this.#awaiting.clear();
    for (const awaiting of lost) awaiting.lost();
    for (const room of this.#rooms.values()) room.ended(error);
    for (const broadcast of this.#broadcasts.splice(0)) {
      this.#pending--;
      broadcast.reject(error);
    }
    if (report) this.#report(error);
  }

  #stopTimers(): void {
    this.#connectDeadline?.cancel();
    this.#watch?.cancel();
    this.#refresh?.cancel();
    this.#connectDeadline = undefined;
    this.#watch = undefined;
    this.#refresh = undefined;
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }

  #report(error: SocketBaseError): void {
    this.emit('error', error);
  }

  // ——— liveness: browsers do not show protocol pings, so the SDK pings in frames ———

  #armWatch(ms: number): void {
    this.#watch?.cancel();
    this.#watch = after(ms, () => this.#watchTick(), false);
  }

  #watchTick(): void {
    const socket = this.#socket;
    if (socket === undefined || this.#state !== 'open') return;
    const now = Date.now();
    if (this.#pingSentAt !== undefined) {
      if (this.#lastInbound < this.#pingSentAt) {
        this.#abandon(socket);
        return;
      }
      this.#pingSentAt = undefined;
    }
    const quiet = now - this.#lastInbound;
    if (quiet >= this.#limits.pingIntervalMs) this.#ping();
    else this.#armWatch(this.#limits.pingIntervalMs - quiet);
  }

  #ping(): void {
    const ref = this.#nextRef++;
    this.#pingSentAt = Date.now();
    this.#transmit(JSON.stringify({ type: 'ping', ref }), ref, {
      answer: () => {},
      lost: () => {},
    });
    this.#armWatch(this.#limits.pongTimeoutMs);
  }

  // ——— token lifetime ———

  #tokenExpiry(): number | undefined {
    return this.#tokens.held === undefined ? undefined : expiryOf(this.#tokens.held);
  }

  #scheduleRefresh(exp: number | undefined): void {
    this.#refresh?.cancel();
    this.#refresh = undefined;
    if (exp === undefined || !this.#tokens.renewable) return;
    const left = exp * 1000 - Date.now();
    const ahead = Math.min(this.#limits.refreshAheadMs, left / 2);
    this.#refresh = after(Math.max(0, left - ahead), () => void this.#refreshToken(), false);
  }

  async #refreshToken(): Promise<void> {
    const socket = this.#socket;
    let token: string;
    try {
      token = await this.#tokens.renew();
    } catch (error) {
      if (error instanceof SocketBaseError) this.#report(error);
      return;
    }
    if (this.#socket !== socket || this.#state !== 'open') return;
    const ref = this.#nextRef++;
    this.#transmit(JSON.stringify({ type: 'refresh', jwt: token, ref }), ref, {
      answer: (frame) => {
        if (frame.type === 'refreshed') {
          this.#tokens.set(token);
          this.#scheduleRefresh(frame.exp ?? undefined);
        } else if (frame.type === 'error') {
          // The socket keeps its token until it expires; then the close asks for a new one.
          this.#report(SocketBaseError.fromServer(frame.message));
        }
      },
      lost: () => {},
    });
  }

  // ——— sending ———

  #transmit(text: string, ref: Ref, awaiting: Awaiting): void {
    const socket = this.#socket;
    if (socket === undefined || socket.readyState !== OPEN) {
      awaiting.lost();
      return;
    }
    this.#awaiting.set(ref, awaiting);
    socket.send(text);
  }

  #tooLarge(text: string): boolean {
    return overLimit(text, this.#limits.maxFrameBytes);
  }

  #reserve(): SocketBaseError | undefined {
    if (this.#state === 'closed') return SocketBaseError.client('clientClosed');
    if (this.#pending >= this.#limits.maxPending) return SocketBaseError.client('tooManyPending');
    this.#pending++;
    return undefined;
  }

  #flushBroadcasts(): void {
    if (this.#state !== 'open') return;
    const waiting = this.#broadcasts.splice(0);
    for (const broadcast of waiting) {
      this.#transmit(broadcast.text, broadcast.ref, {
        answer: (frame) => {
          if (frame.type === 'error' && frame.message === 'Rate limit exceeded') {
            const delay = backoffDelay(broadcast.rateLimited++, this.#reconnect);
            after(delay, () => {
              if (this.#state === 'closed') {
                this.#pending--;
                broadcast.reject(SocketBaseError.client('clientClosed'));
                return;
              }
              this.#broadcasts.push(broadcast);
              this.#flushBroadcasts();
            });
            return;
          }
          this.#pending--;
          if (frame.type === 'ack') broadcast.resolve();
          else if (frame.type === 'error')
            broadcast.reject(SocketBaseError.fromServer(frame.message));
          else broadcast.reject(SocketBaseError.client('unexpectedAnswer'));
        },
        // Broadcasts are not stored and carry no key: sending one again could deliver it twice.
        lost: () => {
          this.#pending--;
          broadcast.reject(SocketBaseError.client('connectionLost'));
        },
      });
    }
  }

  #makeRoomHost(): RoomHost {
    const isOpen = (): boolean => this.#state === 'open' && this.#socket !== undefined;
    const user = (): string | undefined => this.#user;
    const isClosed = (): boolean => this.#state === 'closed';
    return {
      api: this.#api,
      maxFrameBytes: this.#limits.maxFrameBytes,
      get open() {
        return isOpen();
      },
      get closed() {
        return isClosed();
      },
      get user() {
        return user();
      },
      nextRef: () => this.#nextRef++,
      transmit: (text, ref, awaiting) => this.#transmit(text, ref, awaiting),
      tooLarge: (text) => this.#tooLarge(text),
      reserve: () => this.#reserve(),
      release: () => {
        this.#pending--;
      },
      retryDelay: (attempt) => backoffDelay(attempt, this.#reconnect),
      report: (error) => this.#report(error),
    };
  }
}

function wsBase(url: string): string {
  return url.replace(/^http(s?):\/\//i, 'ws$1://');
}

function httpBase(url: string): string {
  return url.replace(/^ws(s?):\/\//i, 'http$1://');
}
