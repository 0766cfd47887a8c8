/** What the controller and the load workers say to each other over the IPC channel. */
import type { HistogramData } from './histogram.js';

/** `plain`: socket-base's JSON frames (also the minimal ws and uWS servers); `socketio`: engine.io v4. */
export type Protocol = 'plain' | 'socketio';

/** Signs a distinct JWT for the connection (socket-base): the path becomes /ws/HASH?jwt=TOKEN. */
export interface ConnAuth {
  hash: string;
  secret: string;
  sub: string;
}

export interface ConnSpec {
  port: number;
  room: string;
  /** Accounting key of the room (project/room), unique across projects. */
  roomKey: string;
  auth?: ConnAuth | undefined;
  localAddress?: string | undefined;
  /** Follow the `seq` of `joined` and of every delivery (recovery): off unless asked, it costs a scan. */
  followSeq?: boolean | undefined;
  /**
   * Open without joining (ready at `connected`); the `rejoin` command then joins with this `since`.
   * Implies followSeq.
   */
  rejoinSince?: number | undefined;
  /**
   * Join with `"presence":true` (socket-base): the connection is ready once its `presence`
   * snapshot has come after `joined`.
   */
  presence?: boolean | undefined;
  /**
   * Count the frames with this `type` (`"type":"…"` found in the frame, no parse), and when the
   * last came; such a frame is only counted. Reset by `begin`, read with `counts`.
   */
  countType?: string | undefined;
}

export interface ConnectCommand {
  cmd: 'connect';
  protocol: Protocol;
  conns: ConnSpec[];
  concurrency: number;
  timeoutMs: number;
}

export interface BeginCommand {
  cmd: 'begin';
  step: number;
}

export interface PublishCommand {
  cmd: 'publish';
  step: number;
  /** Messages per second from this worker, spread over its senders in turn. */
  rate: number;
  durationMs: number;
  /** Indexes into this worker's connections (in the order they were given). */
  senders: number[];
  payloadBytes: number;
}

export interface HttpCommand {
  cmd: 'http';
  step: number;
  port: number;
  auth: ConnAuth;
  room: string;
  roomKey: string;
  concurrency: number;
  durationMs: number;
  payloadBytes: number;
}

export interface CollectCommand {
  cmd: 'collect';
}

/** Every connection opened with `rejoinSince` sends its `join` with `since`, all at once. */
export interface RejoinCommand {
  cmd: 'rejoin';
}

export interface PositionsCommand {
  cmd: 'positions';
}

export interface CountsCommand {
  cmd: 'counts';
}

export interface CloseCommand {
  cmd: 'close';
}

export type Command = (
  | ConnectCommand
  | BeginCommand
  | PublishCommand
  | HttpCommand
  | CollectCommand
  | RejoinCommand
  | PositionsCommand
  | CountsCommand
  | CloseCommand
) & { id: number };

export interface ConnectReply {
  ready: number;
  failed: number;
  errors: string[];
  elapsedMs: number;
}

export interface PublishReply {
  sent: Record<string, number>;
  elapsedMs: number;
  /** Messages the worker could not send on time (it fell behind its schedule). */
  behind: number;
}

export interface HttpReply {
  sent: Record<string, number>;
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  latency: HistogramData;
  elapsedMs: number;
}

export interface RoomCount {
  /** Open members of the room on this worker. */
  open: number;
  /** Deliveries of the current step received by the open members. */
  received: number;
}

export interface CollectReply {
  rooms: Record<string, RoomCount>;
  latency: HistogramData;
  /** Deliveries of an earlier step that arrived during this one. */
  late: number;
  /** Closes by the server since the worker started, by code. */
  closes: Record<string, number>;
  /** Error frames since the worker started, by message. */
  errors: Record<string, number>;
  /** Hrtime (µs) of the last delivery of the current step. */
  lastDeliveryUs: number;
}

export interface RejoinReply {
  joins: number;
  /** Hrtime (µs) just before the first `join` was written. */
  sentUs: number;
}

/** What one connection that follows `seq` has seen of its room. */
export interface Position {
  /** The `since` it rejoined with; null for a join without. */
  since: number | null;
  /** LAST as its latest `joined` gave it; null before any. */
  joinedSeq: number | null;
  recovered: boolean | null;
  /** The highest `seq` it was given, by `joined` or by a delivery. */
  highest: number;
  /** Deliveries after its starting position (`since`, else LAST at join), each the next in order. */
  replayed: number;
  /** Deliveries at or below a `seq` it already had: repeats, or late ones out of order. */
  repeated: number;
  /** `seq`s jumped over. */
  skipped: number;
  /** Hrtime (µs) of its latest delivery; 0 before any. */
  lastUs: number;
}

export interface PositionsReply {
  /** In the order the connections were given; null for one that does not follow `seq`. */
  conns: (Position | null)[];
}

/** The frames counted by one connection asked to count a type. */
export interface FrameCount {
  count: number;
  /** Hrtime (µs) of the last one; 0 before any. */
  lastUs: number;
}

export interface CountsReply {
  /** In the order the connections were given; null for one that counts no type. */
  conns: (FrameCount | null)[];
}

export type Reply =
  | {
      id: number;
      ok: true;
      result:
        | ConnectReply
        | PublishReply
        | HttpReply
        | CollectReply
        | RejoinReply
        | PositionsReply
        | CountsReply
        | null;
    }
  | { id: number; ok: false; error: string };
