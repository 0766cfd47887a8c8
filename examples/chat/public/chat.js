// The chat page: everything real-time is the SDK's. It reconnects, rejoins from the last message
// shown and retries sends, so this file only draws what it is told.
const params = new URLSearchParams(location.search);
const roomName = params.get('room') ?? 'general';
const config = await (await fetch('/config.json')).json();
// The server that carries the chat also serves the SDK, so the page always gets a matching build.
const { SocketBase } = await import(`${config.socketBaseUrl}/sdk/socket-base.js`);

const $ = (selector) => document.querySelector(selector);
const messageList = $('#messages');
const stateBadge = $('#state');

function showError(error) {
  $('#error').textContent = error?.message ?? String(error);
}

function messageElement(message) {
  const item = document.createElement('li');
  item.dataset.seq = String(message.seq);
  const from = document.createElement('b');
  from.textContent = message.from;
  const text = document.createElement('span');
  // textContent, never innerHTML: a message is whatever another user typed.
  text.textContent = message.payload;
  item.append(from, text);
  return item;
}

function appendMessage(message) {
  messageList.append(messageElement(message));
  messageList.lastElementChild.scrollIntoView({ block: 'end' });
}

function drawUsers(users) {
  $('#users').replaceChildren(
    ...[...users].sort().map((user) => {
      const item = document.createElement('li');
      item.textContent = user;
      return item;
    }),
  );
}

/** Query parameters for the SDK's reconnect option (tests shorten the backoff with them). */
function reconnectOption() {
  const minDelayMs = Number(params.get('reconnectMin'));
  const maxDelayMs = Number(params.get('reconnectMax'));
  if (!minDelayMs || !maxDelayMs) return undefined;
  return { minDelayMs, maxDelayMs };
}

async function fetchToken(name) {
  const response = await fetch('/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`token: ${response.status}`);
  return (await response.json()).jwt;
}

async function start(name) {
  const client = new SocketBase({
    url: config.socketBaseUrl,
    hash: config.hash,
    // A function, not a string: the SDK calls it again when the token is about to expire.
    token: () => fetchToken(name),
    reconnect: reconnectOption(),
  });
  client.on('state', (state) => {
    stateBadge.textContent = state;
    stateBadge.dataset.state = state;
  });
  client.on('error', showError);

  const room = client.room(roomName, { presence: true });
  room.on('message', appendMessage);
  // room.users already holds the change when an event is told (also after a reconnect, when the
  // SDK compares the server's list with what it knew).
  room.on('presence', () => drawUsers(room.users));
  // Draws the latest stored messages, then those delivered live that are newer. On a reset (the
  // gap could not be replayed) what is on screen may miss messages, so it is drawn again.
  const redrawFromHistory = async () => {
    const { messages } = await room.history({ limit: 100 });
    const newestStored = messages.at(-1)?.seq ?? 0;
    // Messages delivered live while the history loaded may be in it too: keep only newer ones.
    const live = [...messageList.children].filter(
      (item) => Number(item.dataset.seq) > newestStored,
    );
    messageList.replaceChildren(...messages.map(messageElement), ...live);
  };
  room.on('reset', () => redrawFromHistory().catch(showError));

  const joined = room.join();
  $('#compose').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#text');
    const text = input.value;
    input.value = '';
    // Sends typed before the first join wait for it, in order. Later ones are the SDK's: made
    // while offline, they wait in it and go, once each, after the reconnect.
    joined.then(() => room.send(text)).catch(showError);
  });
  await joined;
  drawUsers(room.users);
  // What was said before this page came: the latest stored messages, before the live ones.
  await redrawFromHistory();
}

$('#room-name').textContent = roomName;
$('#name').focus();
// Enabled only now that the SDK is loaded: a submit before would reload the page instead.
$('#login button').disabled = false;
$('#login').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('#name').value.trim();
  $('#login').hidden = true;
  $('#chat').hidden = false;
  $('#text').focus();
  start(name).catch(showError);
});
