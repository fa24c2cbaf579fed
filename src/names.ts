import { AppError } from './errors.js';

/** Names of profiles, connections and providers (SPEC section 2). Never normalised. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export type NameKind = 'profile' | 'connection' | 'provider';

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

export function assertName(kind: NameKind, name: unknown): string {
  if (!isValidName(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : String(typeof name);
    throw new AppError(
      'ERR_NAME_INVALID',
      `invalid ${kind} name ${shown}: names are 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
      `choose a ${kind} name such as "work" or "agent-pr-bot"`,
    );
  }
  return name;
}
