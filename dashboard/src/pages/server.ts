/** The whole deployment's live figures, from GET /admin/stats. */
import { every, type Page } from '../app.js';
import { StatsCharts } from '../chart.js';
import { el, replaceChildren } from '../dom.js';

export const serverPage: Page = (app, main) => {
  const charts = new StatsCharts('Every project');
  const totals = el('p', { class: 'meta' });
  replaceChildren(main, el('h1', {}, 'Server'), totals, charts.element);
  return every(app.pollMs, async () => {
    const stats = await app.api.serverStats();
    totals.textContent = `${stats.projects} projects · ${stats.instances} instances · ${stats.storedMessages} stored messages`;
    charts.add(stats);
  });
};
