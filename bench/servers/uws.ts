/**
 * uWebSockets.js (the unofficial npm build, 20.30) as the native ceiling: the same frames as the
 * minimal ws server, rooms as uWS topics, `app.publish` to every subscriber. It refuses to start
 * when the native binary does not load (the package would fall back to a JavaScript version).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

type Uws = typeof import('@trufflesuite/uws-js-unofficial');

const port = Number(process.env.PORT ?? '0');
const host = process.env.HOST ?? '127.0.0.1';
const require = createRequire(import.meta.url);

function loadNative(): Uws {
  const main = require.resolve('@trufflesuite/uws-js-unofficial');
  const binary = join(
    dirname(main),
    '..',
    'binaries',
    `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`,
  );
  return require(binary) as Uws;
}

let uws: Uws;
try {
  uws = loadNative();
} catch (error) {
  process.stderr.write(`uws: native binary does not load: ${String(error)}\n`);
  process.exit(2);
}

interface Frame {
  type?: unknown;
  room?: unknown;
  payload?: unknown;
}

const decoder = new TextDecoder();
const app = uws.App();
app.ws('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 8 * 1024 * 1024,
  // Typed as a number by the package; it is a flag: close a receiver that falls that far behind.
  closeOnBackpressureLimit: true as unknown as number,
  message: (socket, message) => {
    let frame: Frame;
    try {
      frame = JSON.parse(decoder.decode(message)) as Frame;
    } catch {
      return;
    }
    if (typeof frame.room !== 'string') return;
    if (frame.type === 'join') {
      socket.subscribe(frame.room);
      socket.send(JSON.stringify({ type: 'joined', room: frame.room }), false);
    } else if (frame.type === 'message' && typeof frame.payload === 'string') {
      app.publish(
        frame.room,
        JSON.stringify({ type: 'message', room: frame.room, payload: frame.payload }),
        false,
      );
    }
  },
});

app.listen(host, port, (token) => {
  if (!token) {
    process.stderr.write(`uws: cannot listen on ${host}:${port}\n`);
    process.exit(1);
  }
  process.stdout.write(`uws listening on http://${host}:${uws.us_socket_local_port(token)}\n`);
});

process.on('SIGTERM', () => process.exit(0));
