/**
 * Every WebSocket frame the playground's client sends and receives, with its time, and the
 * closing handshake: the close the client asks for (out) and the one that ends the socket (in).
 * The SDK takes a WebSocket constructor; this one is the browser's own, watched.
 */
import { el } from './dom.js';

export type Direction = 'in' | 'out';

export class FrameLog {
  readonly element: HTMLOListElement = el('ol', { class: 'frame-log', 'aria-label': 'Frames' });

  add(direction: Direction, text: string): void {
    const time = new Date().toISOString().slice(11, 23);
    const entry = el(
      'li',
      { 'data-direction': direction },
      el('time', {}, time),
      el('span', { class: 'direction' }, direction === 'in' ? '← in' : '→ out'),
      el('code', {}, text),
    );
    this.element.prepend(entry);
    // A busy room would grow the page without end: the oldest frames go past 500.
    while (this.element.childElementCount > 500) this.element.lastElementChild?.remove();
  }

  /** A WebSocket class whose frames, in and out, go into this log. */
  recordingWebSocket(): typeof WebSocket {
    const log = this;
    return class RecordingWebSocket extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener('message', (event) => log.add('in', String(event.data)));
        this.addEventListener('close', (event) =>
          log.add(
            'in',
            `(closed: code ${event.code}${event.reason === '' ? '' : `, ${event.reason}`})`,
          ),
        );
      }
      override close(code?: number, reason?: string): void {
        log.add('out', `(close${code === undefined ? '' : `: code ${code}`})`);
        super.close(code, reason);
      }
      override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
        log.add('out', typeof data === 'string' ? data : '(binary)');
        super.send(data);
      }
    };
  }
}
