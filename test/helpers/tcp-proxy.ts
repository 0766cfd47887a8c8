import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** The port on 127.0.0.1 the proxy listens on. */
  port: number;
  /** Destroys every open connection and resets new ones at once, as a dead server would. */
  cut(): void;
  /**
   * Stops forwarding without closing anything, as a network that silently drops packets would:
   * bytes are held back, new connections are accepted but never reach the target.
   */
  freeze(): void;
  /**
   * Once a client sends bytes containing `marker` (which must arrive in one chunk: a short
   * protocol message written at once), they still reach the target, but nothing the target sends
   * back on that connection reaches the client: the request was made, its answer is lost. `cut`
   * then drops the connection, as a network failing at that moment would.
   */
  holdRepliesAfter(marker: Buffer): void;
  /** Forwards again: new connections reach the target, held bytes are delivered. */
  restore(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

interface Link {
  client: Socket;
  upstream: Socket | undefined;
  /** Bytes held back while frozen, per direction. */
  toUpstream: Buffer[];
  toClient: Buffer[];
  /** Whether the target's bytes are held back since the client sent the marker. */
  holdingReplies: boolean;
}

/**
 * A TCP proxy on a free port of 127.0.0.1 in front of `targetHost:targetPort`, for tests that take
 * a server away without touching the server itself.
 */
export async function startTcpProxy(
  targetPort = 5432,
  targetHost = '127.0.0.1',
): Promise<TcpProxy> {
  let mode: 'open' | 'cut' | 'frozen' = 'open';
  const links = new Set<Link>();
  let marker: Buffer | undefined;

  const destroy = (link: Link): void => {
    links.delete(link);
    link.client.destroy();
    link.upstream?.destroy();
  };

  const open = (link: Link): void => {
    const upstream = connect(targetPort, targetHost);
    link.upstream = upstream;
    upstream.on('data', (chunk: Buffer) => {
      if (mode === 'frozen' || link.holdingReplies) link.toClient.push(chunk);
      else link.client.write(chunk);
    });
    upstream.on('error', () => destroy(link));
    upstream.on('close', () => destroy(link));
    for (const chunk of link.toUpstream.splice(0)) upstream.write(chunk);
  };

  const server = createServer((client) => {
    if (mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const link: Link = {
      client,
      upstream: undefined,
      toUpstream: [],
      toClient: [],
      holdingReplies: false,
    };
    links.add(link);
    client.on('data', (chunk: Buffer) => {
      if (marker?.length && chunk.includes(marker)) {
        marker = undefined;
        link.holdingReplies = true;
      }
      if (mode === 'frozen' || !link.upstream) link.toUpstream.push(chunk);
      else link.upstream.write(chunk);
    });
    client.on('error', () => destroy(link));
    client.on('close', () => destroy(link));
    if (mode === 'open') open(link);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    port,
    cut() {
      mode = 'cut';
      for (const link of [...links]) {
        link.client.resetAndDestroy();
        destroy(link);
      }
    },
    freeze() {
      mode = 'frozen';
    },
    holdRepliesAfter(bytes) {
      marker = bytes;
    },
    restore() {
      mode = 'open';
      marker = undefined;
      for (const link of links) {
        link.holdingReplies = false;
        if (!link.upstream) {
          open(link);
          continue;
        }
        for (const chunk of link.toUpstream.splice(0)) link.upstream.write(chunk);
        for (const chunk of link.toClient.splice(0)) link.client.write(chunk);
      }
    },
    close() {
      for (const link of [...links]) destroy(link);
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
