/**
 * The project's actions: rename, and the dangerous buttons (disconnect, rotate the secret,
 * delete). Each says what it did.
 */
import type { ProjectDetail } from '../admin-api.js';
import type { App } from '../app.js';
import { el, field, replaceChildren, statusLine } from '../dom.js';
import { describeError, MESSAGES } from '../messages.js';
import { secretBox } from '../secret.js';

function projectPath(project: ProjectDetail, tail = ''): string {
  return `/admin/projects/${encodeURIComponent(project.hash)}${tail}`;
}

/**
 * Renames the project. The name goes to the server as typed and its refusal (`Name required`,
 * `Name too long`) is shown as it is; `renamed` is told the name the server kept.
 */
export function renameForm(
  app: App,
  project: ProjectDetail,
  renamed: (name: string) => void,
): HTMLElement {
  const name = field('New name', { name: 'new-name', autocomplete: 'off' });
  name.input.value = project.name;
  const status = statusLine();
  const form = el(
    'form',
    { class: 'card', 'aria-label': 'Rename project' },
    el('h2', {}, 'Rename'),
    el('div', { class: 'row' }, name.wrapper, el('button', { type: 'submit' }, 'Rename')),
    status.element,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    app.api
      .request<ProjectDetail>('PATCH', projectPath(project), { name: name.input.value })
      .then((updated) => {
        renamed(updated.name);
        status.ok(`Renamed to ${updated.name}.`);
      })
      .catch((error: unknown) => {
        status.fail(describeError(error));
        name.input.focus();
      });
  });
  return form;
}

/**
 * Disconnects one user's connections, or, only when chosen in so many words and confirmed, every
 * connection of the project. An empty user without that choice sends nothing.
 */
export function disconnectForm(app: App, project: ProjectDetail): HTMLElement {
  const user = field('User', { name: 'user' });
  const everyoneId = `everyone-${project.hash}`;
  const everyone = el('input', { type: 'checkbox', id: everyoneId, name: 'everyone' });
  const revokeId = `revoke-${project.hash}`;
  const revoke = el('input', { type: 'checkbox', id: revokeId, name: 'revoke' });
  const status = statusLine();
  everyone.addEventListener('change', () => {
    user.input.disabled = everyone.checked;
  });
  const form = el(
    'form',
    { class: 'card', 'aria-label': 'Disconnect' },
    el('h2', {}, 'Disconnect'),
    user.wrapper,
    el(
      'div',
      { class: 'check' },
      everyone,
      el('label', { for: everyoneId }, 'Every connection of the project'),
    ),
    el(
      'div',
      { class: 'check' },
      revoke,
      el('label', { for: revokeId }, 'Also revoke their tokens'),
    ),
    el('button', { type: 'submit' }, 'Disconnect'),
    status.element,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const all = everyone.checked;
    const who = user.input.value.trim();
    if (!all && who === '') {
      status.fail(MESSAGES.userRequired);
      user.input.focus();
      return;
    }
    if (all && !confirm(MESSAGES.confirmDisconnectAll)) {
      status.ok('Nothing was disconnected.');
      return;
    }
    const body = all
      ? { all: true, revoke: revoke.checked }
      : { user: who, revoke: revoke.checked };
    app.api
      .request('POST', projectPath(project, '/disconnect'), body)
      .then(() => {
        const target = all ? 'Every connection of the project' : `Every connection of ${who}`;
        status.ok(
          `${target} is being closed${revoke.checked ? '; their tokens are revoked' : ''}.`,
        );
      })
      .catch((error: unknown) => status.fail(describeError(error)));
  });
  return form;
}

export function rotateSecret(app: App, project: ProjectDetail): HTMLElement {
  const status = statusLine();
  const shown = el('div');
  const button = el('button', { type: 'button' }, 'Rotate secret');
  button.addEventListener('click', () => {
    if (!confirm(MESSAGES.confirmRotate)) return;
    app.api
      .request<{ jwtSecret: string }>('POST', projectPath(project, '/rotate-secret'))
      .then(({ jwtSecret }) => {
        status.ok(
          'Secret rotated: tokens signed with the old secret are refused for new connections.',
        );
        replaceChildren(shown, secretBox('The new JWT secret', jwtSecret));
      })
      .catch((error: unknown) => status.fail(describeError(error)));
  });
  return el(
    'section',
    { class: 'card', 'aria-label': 'Rotate secret' },
    el('h2', {}, 'Rotate secret'),
    button,
    status.element,
    shown,
  );
}

/** Deletes once the project's current name is typed; `renamed` relabels it after a rename. */
export function deleteForm(
  app: App,
  project: ProjectDetail,
): { element: HTMLElement; renamed(name: string): void } {
  const name = field(`Type ${project.name} to confirm`, {
    name: 'confirm-name',
    autocomplete: 'off',
  });
  const label = name.wrapper.querySelector('label');
  const status = statusLine();
  const form = el(
    'form',
    { class: 'card danger', 'aria-label': 'Delete project' },
    el('h2', {}, 'Delete project'),
    el('p', {}, 'Closes its sockets and removes its stored messages.'),
    name.wrapper,
    el('button', { type: 'submit', class: 'danger' }, 'Delete project'),
    status.element,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (name.input.value !== project.name) {
      status.fail(MESSAGES.nameMismatch);
      return;
    }
    app.api
      .request('DELETE', projectPath(project))
      .then(() => {
        replaceChildren(
          form,
          el('h2', {}, 'Deleted'),
          el('p', { class: 'status ok', role: 'status' }, `Project ${project.name} was deleted.`),
          el('a', { href: '#/projects' }, 'Back to projects'),
        );
      })
      .catch((error: unknown) => status.fail(describeError(error)));
  });
  return {
    element: form,
    renamed(newName) {
      if (label !== null) label.textContent = `Type ${newName} to confirm`;
    },
  };
}
