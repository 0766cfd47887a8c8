/**
 * Socket.IO 4.8 with rooms, as its users write it: `socket.join(room)` and `io.to(room).emit`.
 * WebSocket transport only (the generator speaks engine.io v4 over a plain WebSocket).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? '0');
const host = process.env.HOST ?? '127.0.0.1';

interface RoomMessage {
  room: string;
  payload: string;
}

const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
});

io.on('connection', (socket) => {
  socket.on('join', (room: unknown) => {
    if (typeof room !== 'string') return;
    void socket.join(room);
    socket.emit('joined', room);
  });
  socket.on('message', (message: RoomMessage) => {
    if (typeof message?.room !== 'string' || typeof message.payload !== 'string') return;
    io.to(message.room).emit('message', { room: message.room, payload: message.payload });
  });
});

http.listen(port, host, () => {
  const actual = (http.address() as AddressInfo).port;
  process.stdout.write(`socketio listening on http://${host}:${actual}\n`);
});

process.on('SIGTERM', () => {
  void io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
