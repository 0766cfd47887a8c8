import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { checkProjectName, MAX_PROJECT_NAME_LENGTH } from '../../src/tenancy/project-name.js';

describe('project names (tenancy)', () => {
  it('accepts a non-empty string of at most 200 characters, kept exactly', () => {
    assert.equal(MAX_PROJECT_NAME_LENGTH, 200);
    for (const name of ['demo', ' padded ', 'Équipe 🚀', 'x'.repeat(200)]) {
      assert.equal(checkProjectName(name), name);
    }
  });

  it('refuses a missing, empty, blank or non-string name with nameRequired, a longer one with nameTooLong', () => {
    for (const name of [undefined, null, '', '   ', 5, ['demo'], { first: 'demo' }]) {
      assert.deepEqual(checkProjectName(name), { error: 'nameRequired' }, JSON.stringify(name));
    }
    assert.deepEqual(checkProjectName('x'.repeat(201)), { error: 'nameTooLong' });
  });

  it('the CLI checks names through the tenancy layer and imports nothing from src/http/', () => {
    const cli = readFileSync(new URL('../../src/cli/main.js', import.meta.url), 'utf8');
    assert.doesNotMatch(cli, /from '\.\.\/http\//);
    assert.match(cli, /from '\.\.\/tenancy\/project-name\.js'/);
  });
});
