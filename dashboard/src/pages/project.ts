/** One project: what it is doing now, its settings, and the operator's actions on it. */
import { every, href, type Page } from '../app.js';
import { StatsCharts } from '../chart.js';
import { el, formatTime, replaceChildren } from '../dom.js';
import { describeError } from '../messages.js';
import { deleteForm, disconnectForm, renameForm, rotateSecret } from './project-actions.js';
import { settingsForm } from './settings-form.js';

export const projectPage: Page = (app, main, [hash = '']) => {
  const charts = new StatsCharts('Live figures');
  let stop: (() => void) | undefined;
  let left = false;
  app.api
    .project(hash)
    .then((project) => {
      if (left) return;
      const title = el('h1', {}, project.name);
      const deletion = deleteForm(app, project);
      const renamed = (name: string): void => {
        // The forms read project.name when they act: the delete form asks for the new one.
        project.name = name;
        title.textContent = name;
        deletion.renamed(name);
      };
      replaceChildren(
        main,
        title,
        el(
          'p',
          { class: 'meta' },
          'Hash ',
          el('code', {}, project.hash),
          ` · created ${formatTime(Date.parse(project.createdAt))}`,
        ),
        el(
          'nav',
          { class: 'sub', 'aria-label': 'Project pages' },
          el('a', { href: href('projects', hash, 'rooms') }, 'Rooms and history'),
          el('a', { href: href('projects', hash, 'playground') }, 'Playground'),
        ),
        charts.element,
        el(
          'div',
          { class: 'columns' },
          settingsForm(app, project),
          renameForm(app, project, renamed),
          disconnectForm(app, project),
          rotateSecret(app, project),
          deletion.element,
        ),
      );
      stop = every(app.pollMs, async () => charts.add(await app.api.stats(hash)));
    })
    .catch((error: unknown) => {
      replaceChildren(main, el('p', { class: 'status error' }, describeError(error)));
    });
  return () => {
    left = true;
    stop?.();
  };
};
