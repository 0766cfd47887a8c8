/**
 * Sign in with the admin token; it is checked with one admin call before it is kept. `notice`:
 * why the tab was signed out (a later admin call answered 401), shown as the form's error.
 */
import { AdminApi, AdminError } from '../admin-api.js';
import type { Page } from '../app.js';
import { el, field, replaceChildren, statusLine } from '../dom.js';
import { describeError, MESSAGES } from '../messages.js';
import { saveToken } from '../session.js';

export const signInPage: Page = (app, main, [notice]) => {
  const token = field('Admin token', {
    name: 'token',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const status = statusLine();
  const form = el(
    'form',
    { class: 'card narrow', 'aria-label': 'Sign in' },
    el('h1', {}, 'Sign in'),
    el('p', {}, 'The ADMIN_TOKEN the server was started with. It is kept for this tab only.'),
    token.wrapper,
    el('button', { type: 'submit' }, 'Sign in'),
    status.element,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const candidate = token.input.value.trim();
    new AdminApi(candidate)
      .projects()
      .then(() => {
        saveToken(candidate);
        app.navigate(location.hash === '' ? '#/projects' : location.hash);
      })
      .catch((error: unknown) => {
        const unauthorized = error instanceof AdminError && error.status === 401;
        status.fail(unauthorized ? MESSAGES.wrongToken : describeError(error));
      });
  });
  if (notice !== undefined) status.fail(notice);
  replaceChildren(main, form);
  token.input.focus();
  return undefined;
};
