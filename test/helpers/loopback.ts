/**
 * Source addresses for test sockets: a server on 127.0.0.1 sees its clients come from 127.0.0.1 to
 * 127.0.0.250 in turn, so that tests opening many sockets pass under MAX_CONNECTIONS_PER_IP.
 */
import { loopbackSource } from '../../bench/load/loopback.js';

let next = 0;

/** The source address of the next socket to `host` (the system's choice off 127.0.0.1). */
export function nextSource(host: string): string | undefined {
  return host === '127.0.0.1' ? loopbackSource(next++) : undefined;
}
