import { inspect } from 'node:util';

/**
 * A credential value. Printing, JSON-encoding or inspecting it yields "[redacted]"; only the
 * injector (and the vault when sealing) calls reveal().
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    if (typeof value !== 'string') throw new TypeError('Secret value must be a string');
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}

/**
 * Masks a value for display (`explain`, `import`): only values of 24 characters or more keep their
 * first 4 (usually the provider's public prefix: `ghp_`, `sk-p`) and show their length, so at least
 * 20 characters always stay hidden. Shorter values show nothing at all.
 */
export const MASK_MIN_LENGTH = 24;
export function mask(value: string): string {
  if (value.length < MASK_MIN_LENGTH) return '****';
  return `${value.slice(0, 4)}…${'*'.repeat(4)} (${value.length} chars)`;
}
