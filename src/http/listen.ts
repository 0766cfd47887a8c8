/** Binding a node:http server, and the URL a person at a terminal uses to reach it. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  /** http://host:port with the real port and the address actually bound. */
  url: string;
  port: number;
}

export async function listen(server: Server, port: number, host: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return { url: `http://${shownHost(address.address)}:${address.port}`, port: address.port };
}

/** A wildcard bind is reachable on the loopback address, which is the one worth printing. */
function shownHost(address: string): string {
  if (address === '0.0.0.0' || address === '::') return '127.0.0.1';
  return address.includes(':') ? `[${address}]` : address;
}
