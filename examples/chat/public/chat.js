// The chat page: asks a name, then chats in one room on the socket-base SDK. Its backend
// (server.js) signs the tokens and says where socket-base is; the SDK comes from socket-base.
const HISTORY_LIMIT = 50;

const roomName = new URLSearchParams(location.search).get('room') || 'general';
const nameForm = document.querySelector('#name-form');
const sendForm = document.querySelector('#send-form');
const messageList = document.querySelector('#messages');
const userList = document.querySelector('#users');
const stateView = document.querySelector('#state');
const notice = document.querySelector('#notice');

document.querySelector('#room-name').textContent = roomName;
document.title = `#${roomName} · socket-base chat`;

const config = await (await fetch('/config.json')).json();
// socket-base serves its SDK, so the page always has the one that matches the server.
const { SocketBase } = await import(`${config.url}/sdk/socket-base.js`).catch((error) => {
  showNotice(`Could not load the SDK from ${config.url}: is socket-base running?`);
  throw error;
});
nameForm.querySelector('fieldset').disabled = false;

nameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = nameForm.elements.name.value.trim();
  if (name === '') return;
  nameForm.hidden = true;
  document.querySelector('#chat').hidden = false;
  document.querySelector('#me').textContent = name;
  chat(name).catch((error) => showNotice(error.message));
});

async function chat(name) {
  const client = new SocketBase({
    url: config.url,
    hash: config.hash,
    // Called for the first connect, before a token expires and after one is refused: each time
    // the backend signs a fresh one.
    token: () => fetchToken(name),
    reconnect: config.reconnect,
  });
  client.on('state', showState);
  client.on('error', (error) => showNotice(error.message));

  const room = client.room(roomName, { presence: true });
  room.on('message', (message) => {
    messageList.append(messageView(message, name));
    messageList.scrollTop = messageList.scrollHeight;
  });
  room.on('presence', () => showUsers(room.users, name));
  // The messages missed could not be replayed (too many, or removed): start again from history.
  room.on('reset', () => {
    messageList.replaceChildren();
    showHistory(room, room.lastSeq, name).catch((error) => showNotice(error.message));
  });

  sendForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = sendForm.elements.text;
    if (input.value.trim() === '') return;
    // While disconnected the SDK keeps the message and sends it after the reconnect, once.
    room.send(input.value).catch((error) => showNotice(`Not sent: ${error.message}`));
    input.value = '';
  });

  const { seq } = await room.join();
  showUsers(room.users, name);
  await showHistory(room, seq, name);
}

async function fetchToken(name) {
  const response = await fetch('/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`No token: HTTP ${response.status}`);
  return (await response.json()).token;
}

let historyLoads = 0;

/**
 * Puts the stored messages up to `upTo` (the room's position when live delivery began) before the
 * live ones, which the SDK delivers from upTo + 1 on: together each message once, in seq order.
 */
async function showHistory(room, upTo, me) {
  const load = ++historyLoads;
  const since = Math.max(0, upTo - HISTORY_LIMIT);
  const { messages } = await room.history({ since, limit: HISTORY_LIMIT });
  // A reset came while this was loading: the newer load owns the list.
  if (load !== historyLoads) return;
  const earlier = messages.filter((message) => message.seq <= upTo);
  messageList.prepend(...earlier.map((message) => messageView(message, me)));
  messageList.scrollTop = messageList.scrollHeight;
}

function messageView(message, me) {
  const item = document.createElement('li');
  item.dataset.seq = String(message.seq);
  if (message.from === me) item.classList.add('own');
  const time = document.createElement('time');
  time.dateTime = new Date(message.ts).toISOString();
  time.textContent = new Date(message.ts).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
  });
  const from = document.createElement('b');
  from.className = 'from';
  from.textContent = message.from;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = message.payload;
  item.append(time, from, text);
  return item;
}

/** The users present: the SDK's list (kept from the server's list and events), and this one. */
function showUsers(users, me) {
  const present = [...new Set([...users, me])].sort();
  userList.replaceChildren(
    ...present.map((user) => {
      const item = document.createElement('li');
      item.textContent = user;
      if (user === me) item.classList.add('own');
      return item;
    }),
  );
}

function showState(state) {
  stateView.textContent = state;
  stateView.dataset.state = state;
  if (state === 'open') showNotice('');
}

function showNotice(text) {
  notice.textContent = text;
}
