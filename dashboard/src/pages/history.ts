/**
 * A room's stored messages, newest page first; "Older" reads the page before the oldest shown.
 * Payloads are shown as text in <pre>: whatever they hold, nothing in them is markup.
 */
import type { StoredMessage } from '../admin-api.js';
import { HISTORY_PAGE } from '../admin-api.js';
import { href, type Page } from '../app.js';
import { el, formatTime, replaceChildren, table } from '../dom.js';
import { describeError } from '../messages.js';

export const historyPage: Page = (app, main, [hash = '', room = '']) => {
  const list = el('div', { class: 'table-wrap' });
  const older = el('button', { type: 'button' }, 'Older messages');
  const newest = el('button', { type: 'button' }, 'Newest');
  const draw = (messages: StoredMessage[]): void => {
    const rows = messages.map((message) => [
      String(message.seq),
      message.from,
      formatTime(message.ts),
      el('pre', { class: 'payload' }, message.payload),
    ]);
    replaceChildren(
      list,
      messages.length === 0
        ? el('p', {}, 'No messages.')
        : table(['Seq', 'From', 'Time', 'Payload'], rows, `Messages of ${room}`),
    );
  };
  const load = (before?: string): void => {
    app.api
      .history(hash, room, before)
      .then(({ messages }) => {
        draw(messages);
        const oldest = messages[0]?.id;
        older.disabled = messages.length < HISTORY_PAGE || oldest === undefined;
        older.onclick = () => load(oldest);
      })
      .catch((error: unknown) =>
        replaceChildren(list, el('p', { class: 'status error' }, describeError(error))),
      );
  };
  newest.addEventListener('click', () => load());
  replaceChildren(
    main,
    el('h1', {}, 'History of ', el('span', { class: 'room-name' }, room)),
    el('p', {}, el('a', { href: href('projects', hash, 'rooms') }, '← Rooms')),
    list,
    el('div', { class: 'row' }, newest, older),
  );
  load();
  return undefined;
};
