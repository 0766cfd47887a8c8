/**
 * Source addresses for client sockets on this machine. Spread round-robin over 127.0.0.1 to
 * 127.0.0.250, many connections stay under a server's per-address limit (MAX_CONNECTIONS_PER_IP)
 * and each address has its own range of ephemeral ports.
 */

export const LOOPBACK_SOURCES = 250;

/** The source address of the index-th client socket. */
export function loopbackSource(index: number): string {
  return `127.0.0.${1 + (index % LOOPBACK_SOURCES)}`;
}
