/**
 * A project's settings as a form: each value a positive whole number, or empty for none (null,
 * which falls back to the server's default). The server checks again and its error is shown.
 */
import type { ProjectDetail, Settings } from '../admin-api.js';
import type { App } from '../app.js';
import { el, field, statusLine } from '../dom.js';
import { describeError, MESSAGES } from '../messages.js';

type Group = keyof Settings;
const FIELDS: { group: Group; key: string; label: string }[] = [
  { group: 'retention', key: 'maxAgeSeconds', label: 'Keep messages for (seconds)' },
  { group: 'retention', key: 'maxMessagesPerRoom', label: 'Keep at most messages per room' },
  { group: 'limits', key: 'maxConnections', label: 'Max connections' },
  { group: 'limits', key: 'maxConnectionsPerUser', label: 'Max connections per user' },
  { group: 'limits', key: 'maxMessagesPerSecond', label: 'Max messages per second' },
];

export function settingsForm(app: App, project: ProjectDetail): HTMLElement {
  const status = statusLine();
  const inputs = FIELDS.map((spec) => {
    const own = (project.settings[spec.group] as Record<string, number | null>)[spec.key] ?? null;
    const effective =
      (project.effective[spec.group] as Record<string, number | null>)[spec.key] ?? null;
    const input = field(spec.label, {
      name: spec.key,
      inputmode: 'numeric',
      placeholder: effective === null ? 'none' : `default: ${effective}`,
    });
    input.input.value = own === null ? '' : String(own);
    return { spec, ...input };
  });
  const form = el(
    'form',
    { class: 'card', 'aria-label': 'Settings' },
    el('h2', {}, 'Settings'),
    el('p', {}, 'Empty: the server default (shown greyed), or none.'),
    el('div', { class: 'grid' }, ...inputs.map((input) => input.wrapper)),
    el('button', { type: 'submit' }, 'Save settings'),
    status.element,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const settings: Record<Group, Record<string, number | null>> = { retention: {}, limits: {} };
    for (const { spec, input } of inputs) {
      const text = input.value.trim();
      if (text !== '' && !/^[1-9]\d*$/.test(text)) {
        status.fail(`${spec.label} ${MESSAGES.notInteger}`);
        input.focus();
        return;
      }
      settings[spec.group][spec.key] = text === '' ? null : Number(text);
    }
    app.api
      .request<ProjectDetail>('PATCH', `/admin/projects/${encodeURIComponent(project.hash)}`, {
        settings,
      })
      .then(() => status.ok('Settings saved.'))
      .catch((error: unknown) => status.fail(describeError(error)));
  });
  return form;
}
