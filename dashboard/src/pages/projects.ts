/** Every project with its live figures, and the form that creates one. */
import type { Project, Stats } from '../admin-api.js';
import { every, href, type Page } from '../app.js';
import { el, field, formatTime, replaceChildren, statusLine, table } from '../dom.js';
import { describeError } from '../messages.js';
import { secretBox } from '../secret.js';

export const projectsPage: Page = (app, main) => {
  const list = el('div', { class: 'table-wrap' });
  const name = field('Project name', { name: 'name', required: true, maxlength: '200' });
  const status = statusLine();
  const created = el('div');
  const form = el(
    'form',
    { class: 'card', 'aria-label': 'Create a project' },
    el('h2', {}, 'Create a project'),
    el('div', { class: 'row' }, name.wrapper, el('button', { type: 'submit' }, 'Create')),
    status.element,
    created,
  );
  let projects: Project[] = [];
  const stats = new Map<string, Stats>();

  const draw = (): void => {
    const rows = projects.map((project) => {
      const live = stats.get(project.hash);
      return [
        el('a', { href: href('projects', project.hash) }, project.name),
        el('code', {}, project.hash),
        formatTime(Date.parse(project.createdAt)),
        live === undefined ? '–' : String(live.connections),
        live === undefined ? '–' : live.messagesPerSecond.toFixed(1),
      ];
    });
    replaceChildren(
      list,
      projects.length === 0
        ? el('p', {}, 'No projects yet.')
        : table(['Name', 'Hash', 'Created', 'Live connections', 'Messages/s'], rows, 'Projects'),
    );
  };
  const load = async (): Promise<void> => {
    projects = (await app.api.projects()).projects;
    draw();
  };
  const refreshStats = async (): Promise<void> => {
    await Promise.all(
      projects.map(async (project) => stats.set(project.hash, await app.api.stats(project.hash))),
    );
    draw();
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    app.api
      .request<Project & { jwtSecret: string }>('POST', '/admin/projects', {
        name: name.input.value.trim(),
      })
      .then(async (project) => {
        status.ok(`Created project ${project.name} (${project.hash}).`);
        replaceChildren(
          created,
          secretBox('Its JWT secret', project.jwtSecret),
          el('a', { href: href('projects', project.hash) }, `Open ${project.name}`),
        );
        name.input.value = '';
        await load();
      })
      .catch((error: unknown) => status.fail(describeError(error)));
  });

  replaceChildren(main, el('h1', {}, 'Projects'), list, form);
  load().catch((error: unknown) =>
    replaceChildren(list, el('p', { class: 'status error' }, describeError(error))),
  );
  return every(app.pollMs, refreshStats);
};
