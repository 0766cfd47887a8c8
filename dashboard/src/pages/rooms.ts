/** A project's rooms, sorted by name, a page at a time (the next page starts after the last name). */
import { ROOMS_PAGE } from '../admin-api.js';
import { href, type Page } from '../app.js';
import { el, formatTime, replaceChildren, table } from '../dom.js';
import { describeError } from '../messages.js';

export const roomsPage: Page = (app, main, [hash = '']) => {
  const list = el('div', { class: 'table-wrap' });
  const next = el('button', { type: 'button' }, 'Next page');
  const first = el('button', { type: 'button' }, 'First page');
  const load = (after?: string): void => {
    app.api
      .rooms(hash, after)
      .then(({ rooms }) => {
        const rows = rooms.map((room) => [
          el('a', { href: href('projects', hash, 'rooms', room.room) }, room.room),
          String(room.lastSeq),
          room.lastTs === null ? '–' : formatTime(room.lastTs),
          String(room.present),
        ]);
        replaceChildren(
          list,
          rooms.length === 0
            ? el('p', {}, after === undefined ? 'No rooms yet.' : 'No more rooms.')
            : table(['Room', 'Last seq', 'Last activity', 'Present users'], rows, 'Rooms'),
        );
        const last = rooms.at(-1)?.room;
        next.disabled = rooms.length < ROOMS_PAGE || last === undefined;
        next.onclick = () => load(last);
      })
      .catch((error: unknown) =>
        replaceChildren(list, el('p', { class: 'status error' }, describeError(error))),
      );
  };
  first.addEventListener('click', () => load());
  replaceChildren(
    main,
    el('h1', {}, 'Rooms'),
    el('p', {}, el('a', { href: href('projects', hash) }, '← Project')),
    list,
    el('div', { class: 'row' }, first, next),
  );
  load();
  return undefined;
};
