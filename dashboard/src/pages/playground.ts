/**
 * Try the API without writing code: mint a token through the admin API, connect with the SDK to
 * the public side (PUBLIC_URL, so it works from ADMIN_PORT), join, send, broadcast, and watch
 * every frame and who is present. The SDK is loaded only here, so other pages stay small.
 */
import type { Room, SocketBase } from '@socket-base/client';
import type { Page } from '../app.js';
import { el, field, replaceChildren, statusLine } from '../dom.js';
import { FrameLog } from '../frame-log.js';
import { describeError } from '../messages.js';

type Sdk = typeof import('@socket-base/client');

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const playgroundPage: Page = (app, main, [hash = '']) => {
  const log = new FrameLog();
  let client: SocketBase | undefined;
  let jwt: string | undefined;
  const rooms = new Map<string, Room>();

  // Mint a token.
  const sub = field('User (sub)', { name: 'sub', required: true });
  sub.input.value = 'playground';
  const ttl = field('Lifetime (seconds)', { name: 'ttl', inputmode: 'numeric' });
  ttl.input.value = '3600';
  const claim = field('Rooms claim (comma-separated patterns, empty: every room)', {
    name: 'rooms-claim',
  });
  const minted = el('code', { class: 'token', 'data-token': '' });
  const mintStatus = statusLine();
  const mintForm = el(
    'form',
    { class: 'card', 'aria-label': 'Mint a token' },
    el('h2', {}, '1. Mint a token'),
    el('div', { class: 'grid' }, sub.wrapper, ttl.wrapper, claim.wrapper),
    el('button', { type: 'submit' }, 'Mint token'),
    mintStatus.element,
    minted,
  );
  mintForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const patterns = claim.input.value
      .split(',')
      .map((pattern) => pattern.trim())
      .filter((pattern) => pattern !== '');
    app.api
      .request<{ jwt: string; exp: number }>(
        'POST',
        `/admin/projects/${encodeURIComponent(hash)}/tokens`,
        {
          sub: sub.input.value.trim(),
          ttlSeconds: Number(ttl.input.value.trim()),
          ...(patterns.length === 0 ? {} : { claims: { rooms: patterns } }),
        },
      )
      .then((token) => {
        jwt = token.jwt;
        minted.textContent = token.jwt;
        mintStatus.ok(`Token minted, valid until ${new Date(token.exp * 1000).toLocaleString()}.`);
        connect.disabled = false;
      })
      .catch((error: unknown) => mintStatus.fail(describeError(error)));
  });

  // Connect.
  const state = el('output', { 'data-state': '' }, 'not connected');
  const connect = el('button', { type: 'button', disabled: true }, 'Connect');
  const disconnect = el('button', { type: 'button', disabled: true }, 'Close connection');
  const connectStatus = statusLine();
  connect.addEventListener('click', () => {
    if (jwt === undefined) return;
    const token = jwt;
    connect.disabled = true;
    import('/sdk/socket-base.js' as string)
      .then((sdk: Sdk) => {
        client?.close();
        client = new sdk.SocketBase({
          url: app.publicUrl,
          hash,
          token,
          WebSocket: log.recordingWebSocket(),
        });
        client.on('state', (value) => {
          state.textContent = value;
          state.dataset.state = value;
        });
        client.on('error', (error) => connectStatus.fail(error.message));
        client.on('broadcast', ({ payload, from }) =>
          connectStatus.ok(`Broadcast from ${from}: ${payload}`),
        );
        disconnect.disabled = false;
      })
      .catch((error: unknown) => {
        connect.disabled = false;
        connectStatus.fail(errorText(error));
      });
  });
  disconnect.addEventListener('click', () => {
    client?.close();
    client = undefined;
    rooms.clear();
    drawPresence();
    connect.disabled = false;
    disconnect.disabled = true;
    connectStatus.ok('Connection closed.');
  });
  const connectCard = el(
    'section',
    { class: 'card', 'aria-label': 'Connect' },
    el('h2', {}, '2. Connect'),
    el('p', {}, `To ${app.publicUrl} · state: `, state),
    el('div', { class: 'row' }, connect, disconnect),
    connectStatus.element,
  );

  // Join, send, broadcast.
  const roomName = field('Room', { name: 'room', required: true });
  const joinStatus = statusLine();
  const joinForm = el(
    'form',
    { class: 'card', 'aria-label': 'Join a room' },
    el('h2', {}, '3. Join a room'),
    el('div', { class: 'row' }, roomName.wrapper, el('button', { type: 'submit' }, 'Join')),
    joinStatus.element,
  );
  const presence = el('div', { class: 'presence', 'aria-live': 'polite' });
  const leaveButton = (name: string, room: Room): HTMLButtonElement => {
    const button = el('button', { type: 'button', 'aria-label': `Leave ${name}` }, 'Leave');
    button.addEventListener('click', () => {
      button.disabled = true;
      room
        .leave()
        .then(() => {
          if (rooms.get(name) === room) rooms.delete(name);
          joinStatus.ok(`Left ${name}.`);
          drawPresence();
        })
        .catch((error: unknown) => {
          button.disabled = false;
          joinStatus.fail(errorText(error));
        });
    });
    return button;
  };
  const drawPresence = (): void => {
    replaceChildren(
      presence,
      el('h2', {}, 'Presence'),
      ...[...rooms].map(([name, room]) =>
        el(
          'div',
          { 'data-room': name },
          el('h3', {}, name),
          leaveButton(name, room),
          el(
            'ul',
            {},
            // room.users may or may not hold this client's own user: each name once.
            ...[...new Set([client?.user ?? '', ...room.users])]
              .filter((u) => u !== '')
              .map((user) => el('li', {}, user)),
          ),
        ),
      ),
    );
  };
  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = roomName.input.value.trim();
    if (client === undefined) {
      joinStatus.fail('Connect first');
      return;
    }
    const room = client.room(name, { presence: true });
    room.on('presence', drawPresence);
    room
      .join()
      .then(({ seq }) => {
        rooms.set(name, room);
        sendRoom.input.value = name;
        joinStatus.ok(`Joined ${name} at seq ${seq}.`);
        drawPresence();
      })
      .catch((error: unknown) => joinStatus.fail(errorText(error)));
  });

  const sendRoom = field('Room', { name: 'send-room', required: true });
  const payload = field('Message', { name: 'payload', required: true });
  const sendStatus = statusLine();
  const sendForm = el(
    'form',
    { class: 'card', 'aria-label': 'Send a message' },
    el('h2', {}, '4. Send a message'),
    el(
      'div',
      { class: 'row' },
      sendRoom.wrapper,
      payload.wrapper,
      el('button', { type: 'submit' }, 'Send'),
    ),
    sendStatus.element,
  );
  sendForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const room = rooms.get(sendRoom.input.value.trim());
    if (room === undefined) {
      sendStatus.fail('Join that room first');
      return;
    }
    room
      .send(payload.input.value)
      .then(({ seq }) => sendStatus.ok(`Stored as seq ${seq}.`))
      .catch((error: unknown) => sendStatus.fail(errorText(error)));
  });

  const broadcastText = field('Broadcast', { name: 'broadcast', required: true });
  const broadcastStatus = statusLine();
  const broadcastForm = el(
    'form',
    { class: 'card', 'aria-label': 'Broadcast' },
    el('h2', {}, '5. Broadcast to the project'),
    el(
      'div',
      { class: 'row' },
      broadcastText.wrapper,
      el('button', { type: 'submit' }, 'Broadcast'),
    ),
    broadcastStatus.element,
  );
  broadcastForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (client === undefined) {
      broadcastStatus.fail('Connect first');
      return;
    }
    client
      .broadcast(broadcastText.input.value)
      .then(() => broadcastStatus.ok('Broadcast sent.'))
      .catch((error: unknown) => broadcastStatus.fail(errorText(error)));
  });

  drawPresence();
  replaceChildren(
    main,
    el('h1', {}, 'Playground'),
    el(
      'div',
      { class: 'columns' },
      el('div', {}, mintForm, connectCard, joinForm, sendForm, broadcastForm, presence),
      el(
        'section',
        { class: 'card', 'aria-label': 'Frame log' },
        el('h2', {}, 'Frames in and out'),
        log.element,
      ),
    ),
  );
  return () => client?.close();
};
