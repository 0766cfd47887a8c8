/**
 * What the realtime layer knows of a client connection: bytes out, a close, a backlog figure.
 * The transport implements it; the realtime layer never sees a socket.
 */
export interface Connection {
  /** Sends one text frame. `frame` may be shared by many connections and must not be mutated. */
  send(frame: string | Buffer): void;
  /** Starts the closing handshake with a code and reason; safe to call twice. */
  close(code: number, reason: string): void;
  /** Bytes queued for this client and not yet written to the network. */
  readonly backlog: number;
}
