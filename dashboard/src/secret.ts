/** A secret shown once, with a button that copies it: the server never shows it again. */
import { el } from './dom.js';

export function secretBox(label: string, secret: string): HTMLElement {
  const value = el('code', { class: 'secret', 'data-secret': '' }, secret);
  const copy = el('button', { type: 'button' }, 'Copy');
  copy.addEventListener('click', () => {
    navigator.clipboard.writeText(secret).then(
      () => {
        copy.textContent = 'Copied';
      },
      () => {
        // No clipboard (an insecure origin): select the text so that Ctrl+C copies it.
        const range = document.createRange();
        range.selectNodeContents(value);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(range);
      },
    );
  });
  return el(
    'div',
    { class: 'secret-box' },
    el('p', {}, `${label} (shown once: copy it now)`),
    value,
    copy,
  );
}
