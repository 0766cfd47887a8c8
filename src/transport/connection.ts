/**
 * What the realtime layer knows of a client connection: frames out, a close, a backlog figure.
 * The transport implements it; the realtime layer never sees a socket.
 */

/**
 * A text frame already framed for the wire by the transport, to be sent as is to many connections:
 * a message is serialised and framed once, whatever the number of receivers.
 */
export type PreparedFrame = Buffer & { readonly __brand: 'PreparedFrame' };

export type PrepareFrame = (text: string) => PreparedFrame;

export interface Connection {
  /** Sends one text frame to this connection only. */
  send(text: string): void;
  /** Sends a frame prepared for many connections. */
  sendPrepared(frame: PreparedFrame): void;
  /** Starts the closing handshake with a code and reason; safe to call twice. */
  close(code: number, reason: string): void;
  /** Bytes queued for this client and not yet written to the network. */
  readonly backlog: number;
}

/** What the transport hands an admitted socket's frames to. */
export interface ClientHandler {
  onText(text: string): void;
  /** A binary frame whose bytes are not UTF-8 text. */
  onUnreadable(): void;
  onClose(): void;
}

export type Admission =
  | { ok: true; handler: ClientHandler }
  | { ok: false; message: string; code: number };

export type Admit = (
  connection: Connection,
  hash: string,
  token: string,
  address: string,
) => Promise<Admission>;
