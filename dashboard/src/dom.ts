/**
 * Building the page from code. Text always goes in through textContent (never innerHTML), so that
 * whatever the server sends (room names, payloads, user names) shows as text and never as markup.
 */

type Child = Node | string | null | undefined | false;
type Attributes = Record<string, string | boolean | undefined>;

/** An element with attributes (`true`: present, `false`/undefined: absent) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) element.setAttribute(name, '');
    else if (typeof value === 'string') element.setAttribute(name, value);
  }
  append(element, ...children);
  return element;
}

/** Appends children; strings become text nodes. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

/** Replaces every child of `parent`. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

let fieldCount = 0;

/** A labelled input: the label's `for` points at it, so that it is named for screen readers. */
export function field(
  label: string,
  attributes: Attributes & { name: string },
): { wrapper: HTMLElement; input: HTMLInputElement } {
  fieldCount++;
  const id = `field-${attributes.name}-${fieldCount}`;
  const input = el('input', { type: 'text', ...attributes, id });
  const wrapper = el('div', { class: 'field' }, el('label', { for: id }, label), input);
  return { wrapper, input };
}

/** A live region for a form's outcome: what it did, or the error that stopped it. */
export function statusLine(): {
  element: HTMLElement;
  ok(text: string): void;
  fail(text: string): void;
} {
  const element = el('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  return {
    element,
    ok(text) {
      element.className = 'status ok';
      element.textContent = text;
    },
    fail(text) {
      element.className = 'status error';
      element.textContent = text;
    },
  };
}

/** A time as the operator's locale shows it, to the second. */
export function formatTime(epochMs: number): string {
  return new Date(epochMs).toLocaleString(undefined, { hour12: false });
}

/** A table with a header row; `rows` are arrays of cells (strings or nodes). */
export function table(headers: string[], rows: Child[][], caption?: string): HTMLTableElement {
  return el(
    'table',
    {},
    caption === undefined ? null : el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...headers.map((header) => el('th', { scope: 'col' }, header)))),
    el(
      'tbody',
      {},
      ...rows.map((cells) => el('tr', {}, ...cells.map((cell) => el('td', {}, cell)))),
    ),
  );
}
