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

/** Masks a value for display: keeps a short prefix of long values only. Never used for short ones. */
export function mask(value: string): string {
  if (value.length < 16) return '****';
  return `${value.slice(0, 4)}…${'*'.repeat(4)} (${value.length} chars)`;
}
