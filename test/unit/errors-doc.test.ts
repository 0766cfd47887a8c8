import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CLOSE_CODES, ERRORS } from '../../src/errors.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

describe('docs/errors.md', () => {
  it('lists every catalogued message with its HTTP status and close code, and nothing else', () => {
    const rows = [...doc.matchAll(/^\|\s*`([^`]+)`\s*\|\s*(\d{3})\s*\|\s*(\d{4}|—)\s*\|/gm)].map(
      ([, message, status, close]) => `${message} ${status} ${close}`,
    );
    const catalogue = Object.values(ERRORS).map(
      (spec) => `${spec.message} ${spec.status} ${'close' in spec ? spec.close : '—'}`,
    );
    assert.deepEqual(rows.sort(), catalogue.sort());
  });

  it('explains every close code the server uses', () => {
    for (const { code } of Object.values(CLOSE_CODES)) {
      assert.match(doc, new RegExp(`^\\|\\s*${code}\\s*\\|`, 'm'), `close code ${code}`);
    }
  });
});
