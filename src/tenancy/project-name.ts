/**
 * The rule for a project's name, shared by the admin API and the CLI so that both refuse the same
 * names with the same errors.
 */
import type { ErrorCode } from '../errors.js';

export const MAX_PROJECT_NAME_LENGTH = 200;

/** The name itself when it is a non-empty string of at most 200 characters, else why not. */
export function checkProjectName(
  name: unknown,
): string | { error: Extract<ErrorCode, 'nameRequired' | 'nameTooLong'> } {
  if (typeof name !== 'string' || name.trim() === '') return { error: 'nameRequired' };
  if (name.length > MAX_PROJECT_NAME_LENGTH) return { error: 'nameTooLong' };
  return name;
}
