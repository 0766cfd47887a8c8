/**
 * The two internals of `ws` the transport relies on, beyond its typed API: `Sender.frame` (to frame
 * a message once for many sockets) and `_socket` (to write prepared frames to the network socket,
 * and read its bytesRead for the heartbeat).
 * They are checked at start-up and at the first socket, so that a `ws` release that moves them
 * fails at once with a message saying so, instead of sending broken frames.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import * as wsModule from 'ws';
import type { PreparedFrame } from './connection.js';

/** The `ws` release whose internals were read; package.json pins `ws` to it. */
export const WS_VERSION = '8.23.0';

export const TEXT_FRAME = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false };

interface Framer {
  frame(data: Buffer, options: typeof TEXT_FRAME): Buffer[];
}

/** The version of `ws` that Node resolves from here, for the error message. */
export function installedWsVersion(): string {
  try {
    const manifest: unknown = createRequire(import.meta.url)('ws/package.json');
    const version = (manifest as { version?: unknown }).version;
    return typeof version === 'string' ? version : 'of unknown version';
  } catch {
    return 'of unknown version';
  }
}

function broken(what: string, installed: string): Error {
  return new Error(
    `socket-base relies on ${what} of ws ${WS_VERSION}, and the installed ws ${installed} does ` +
      `not have it: install ws ${WS_VERSION} (package.json pins it) or adapt ` +
      'src/transport/ws-internals.ts to this release',
  );
}

/** Unmasked server text frames of a 2-byte and a 200-byte payload, as RFC 6455 writes them. */
const PROBES: [Buffer, Buffer][] = [
  [Buffer.from('ok'), Buffer.from([0x81, 0x02])],
  [Buffer.alloc(200, 0x61), Buffer.from([0x81, 0x7e, 0x00, 0xc8])],
];

/** `module.Sender`, once its `frame` is seen to frame text as RFC 6455 says; throws otherwise. */
export function checkSender(module: unknown, installed: string): Framer {
  const sender = (module as { Sender?: Partial<Framer> }).Sender;
  if (typeof sender?.frame !== 'function') throw broken('Sender.frame', installed);
  for (const [payload, header] of PROBES) {
    let framed: Buffer;
    try {
      framed = Buffer.concat(sender.frame(payload, TEXT_FRAME));
    } catch {
      throw broken('Sender.frame', installed);
    }
    if (!framed.equals(Buffer.concat([header, payload]))) throw broken('Sender.frame', installed);
  }
  return sender as Framer;
}

/** `socket._socket`, once it is seen to be a network socket that corks and counts what it read; throws otherwise. */
export function checkNetSocket(socket: unknown, installed: string): Socket {
  const net = (socket as { _socket?: Partial<Socket> })._socket;
  const corks =
    typeof net?.cork === 'function' &&
    typeof net.uncork === 'function' &&
    typeof net.write === 'function' &&
    typeof net.writableCorked === 'number' &&
    typeof net.bytesRead === 'number';
  if (!corks) throw broken('WebSocket._socket', installed);
  return net as Socket;
}

const Sender = (wsModule as unknown as { Sender: Framer }).Sender;

/** Throws, before any socket, when `Sender.frame` is not what it was (the transport calls it). */
export function checkWsInternals(): void {
  checkSender(wsModule, installedWsVersion());
}

/** Frames a text message once (RFC 6455, server to client: unmasked, uncompressed). */
export function prepareFrame(text: string): PreparedFrame {
  return Buffer.concat(Sender.frame(Buffer.from(text), TEXT_FRAME)) as PreparedFrame;
}

let netSocketChecked = false;

/** ws keeps the network socket in `_socket`; the first socket of the process checks it. */
export function netSocketOf(socket: WebSocket): Socket {
  if (!netSocketChecked) {
    checkNetSocket(socket, installedWsVersion());
    netSocketChecked = true;
  }
  return (socket as WebSocket & { _socket: Socket })._socket;
}
