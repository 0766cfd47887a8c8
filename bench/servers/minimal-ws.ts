/**
 * The yardstick: a minimal `ws` + `bufferutil` room server with the same join/message frames as
 * socket-base and no auth or storage. Kept plain and fixed on purpose: `perMessageDeflate: false`,
 * a Map of room → Set of sockets, JSON.parse per frame, and per message one JSON.stringify into one
 * Buffer that `ws.send` writes to every member.
 */
import { type WebSocket, WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? '0');
const host = process.env.HOST ?? '127.0.0.1';
const rooms = new Map<string, Set<WebSocket>>();

interface Frame {
  type?: unknown;
  room?: unknown;
  payload?: unknown;
}

const server = new WebSocketServer({ host, port, perMessageDeflate: false });

server.on('connection', (socket) => {
  const joined = new Set<string>();
  socket.on('message', (data: Buffer) => {
    let frame: Frame;
    try {
      frame = JSON.parse(data.toString()) as Frame;
    } catch {
      return;
    }
    if (typeof frame.room !== 'string') return;
    if (frame.type === 'join') {
      let members = rooms.get(frame.room);
      if (members === undefined) {
        members = new Set();
        rooms.set(frame.room, members);
      }
      members.add(socket);
      joined.add(frame.room);
      socket.send(JSON.stringify({ type: 'joined', room: frame.room }));
    } else if (frame.type === 'message' && typeof frame.payload === 'string') {
      const members = rooms.get(frame.room);
      if (members === undefined) return;
      const bytes = Buffer.from(
        JSON.stringify({ type: 'message', room: frame.room, payload: frame.payload }),
      );
      for (const member of members) member.send(bytes, { binary: false });
    }
  });
  socket.on('close', () => {
    for (const room of joined) {
      const members = rooms.get(room);
      members?.delete(socket);
      if (members?.size === 0) rooms.delete(room);
    }
  });
  socket.on('error', () => undefined);
});

server.on('listening', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  process.stdout.write(`minimal-ws listening on http://${host}:${actual}\n`);
});

process.on('SIGTERM', () => {
  for (const client of server.clients) client.terminate();
  server.close(() => process.exit(0));
});
