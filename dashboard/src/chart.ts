/**
 * Line charts drawn as SVG by hand: a few dozen lines instead of a charting library's hundred
 * kilobytes. Each chart keeps its own samples for the last five minutes; the time axis is labelled
 * a minute a tick ("−5 min" … "now"), and the newest value is written at the line's right end.
 * Every label is SVG text set through textContent.
 */
import { el } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const WINDOW_MS = 5 * 60 * 1000;
const WIDTH = 300;
/** The plot's height; the time axis's labels go below it. */
const HEIGHT = 80;
const AXIS_LABELS = 16;
const MINUTES = 5;

interface Sample {
  at: number;
  value: number;
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string>,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

export class LiveChart {
  readonly element: HTMLElement;
  readonly #samples: Sample[] = [];
  readonly #figure: HTMLElement;
  readonly #line: SVGPolylineElement;
  readonly #peak: SVGTextElement;
  readonly #current: SVGTextElement;
  readonly #drawing: SVGSVGElement;

  /** @param key names the chart for tests and styles (`data-chart`). */
  constructor(
    readonly title: string,
    key: string,
  ) {
    this.#figure = el('span', { class: 'figure', 'data-figure': key }, '–');
    this.#line = svg('polyline', { class: 'line', points: '' });
    this.#peak = svg('text', { x: '2', y: '10', class: 'peak' });
    this.#current = svg('text', { x: String(WIDTH - 2), y: '10', class: 'current' });
    this.#current.setAttribute('text-anchor', 'end');
    const drawing = svg('svg', {
      viewBox: `0 0 ${WIDTH} ${HEIGHT + AXIS_LABELS}`,
      role: 'img',
      'aria-label': `${title} over the last 5 minutes`,
    });
    this.#drawing = drawing;
    drawing.append(
      svg('line', {
        x1: '0',
        y1: String(HEIGHT),
        x2: String(WIDTH),
        y2: String(HEIGHT),
        class: 'axis',
      }),
      ...timeAxis(),
      this.#line,
      this.#peak,
      this.#current,
    );
    this.element = el(
      'figure',
      { class: 'chart', 'data-chart': key },
      el('figcaption', {}, `${title}: `, this.#figure),
      drawing,
    );
  }

  add(value: number, at = Date.now()): void {
    this.#samples.push({ at, value });
    while (this.#samples.length > 0 && (this.#samples[0]?.at ?? at) < at - WINDOW_MS) {
      this.#samples.shift();
    }
    this.#figure.textContent = formatFigure(value);
    this.#draw(at);
  }

  #draw(now: number): void {
    const peak = Math.max(1, ...this.#samples.map((sample) => sample.value));
    const points = this.#samples.map((sample) => {
      const x = ((sample.at - (now - WINDOW_MS)) / WINDOW_MS) * WIDTH;
      const y = HEIGHT - (sample.value / peak) * (HEIGHT - 14);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    this.#line.setAttribute('points', points.join(' '));
    this.#peak.textContent = `max ${formatFigure(peak)}`;
    const last = this.#samples.at(-1);
    if (last === undefined) return;
    // Beside the line's newest point, kept clear of the top edge and of the axis.
    const y = HEIGHT - (last.value / peak) * (HEIGHT - 14);
    this.#current.setAttribute('y', Math.min(HEIGHT - 4, Math.max(10, y - 4)).toFixed(1));
    this.#current.textContent = formatFigure(last.value);
    this.#drawing.setAttribute(
      'aria-label',
      `${this.title} over the last 5 minutes, now ${formatFigure(last.value)}`,
    );
  }
}

/** A tick and a label each minute: "−5 min" at the left edge … "now" at the right. */
function timeAxis(): SVGElement[] {
  const parts: SVGElement[] = [];
  for (let minute = MINUTES; minute >= 0; minute--) {
    const x = ((MINUTES - minute) / MINUTES) * WIDTH;
    const anchor = minute === MINUTES ? 'start' : minute === 0 ? 'end' : 'middle';
    parts.push(
      svg('line', {
        x1: x.toFixed(1),
        y1: String(HEIGHT),
        x2: x.toFixed(1),
        y2: String(HEIGHT + 3),
        class: 'axis',
      }),
    );
    const label = svg('text', {
      x: x.toFixed(1),
      y: String(HEIGHT + AXIS_LABELS - 3),
      class: 'tick',
      'text-anchor': anchor,
    });
    label.textContent = minute === 0 ? 'now' : `\u2212${minute} min`;
    parts.push(label);
  }
  return parts;
}

function formatFigure(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

export interface StatsLike {
  connections: number;
  users: number;
  rooms: number;
  messagesPerSecond: number;
}

/** The four live figures of the issue: connections, users, rooms, messages/s. */
export class StatsCharts {
  readonly element: HTMLElement;
  readonly #charts: Record<keyof StatsLike, LiveChart> = {
    connections: new LiveChart('Connections', 'connections'),
    users: new LiveChart('Users', 'users'),
    rooms: new LiveChart('Rooms', 'rooms'),
    messagesPerSecond: new LiveChart('Messages/s', 'messagesPerSecond'),
  };

  constructor(title: string) {
    this.element = el(
      'section',
      { class: 'charts', 'aria-label': title },
      el('h2', {}, title),
      el('div', { class: 'chart-grid' }, ...Object.values(this.#charts).map((c) => c.element)),
    );
  }

  add(stats: StatsLike): void {
    const now = Date.now();
    for (const key of Object.keys(this.#charts) as (keyof StatsLike)[]) {
      this.#charts[key].add(stats[key], now);
    }
  }
}
