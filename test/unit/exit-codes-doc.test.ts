import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';

/**
 * The README's exit-code table ("0 ok · 1 internal · … · 10 daemon …") is what scripts rely on: every
 * error code's exit code must be the number the README gives its kind. The kind of a code is read
 * from its name; a new code that fits no kind below fails here until someone decides where it goes.
 */
const README = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');

function readmeTable(): Map<number, string> {
  const start = README.indexOf('**Exit codes**');
  const para = README.slice(start, README.indexOf('\n\n', start)).replace(/\s+/g, ' ');
  const body = para.slice(para.indexOf(':') + 1, para.indexOf('.', para.indexOf('10 ')));
  const table = new Map<number, string>();
  for (const item of body.split('·')) {
    const m = /^\s*(\d+) (.+?)\s*$/.exec(item);
    if (m) table.set(Number(m[1]), m[2]!);
  }
  return table;
}

/** [kind as the README words it (a fragment of its label), which codes are of that kind]. */
const KINDS: Array<[string, (c: ErrorCode) => boolean]> = [
  ['internal', (c) => c === 'ERR_INTERNAL'],
  [
    'bad input',
    (c) =>
      /_INVALID$|_BAD_REQUEST$|_ORIGIN_FORM$|_MISDIRECTED$|_TOO_LARGE$/.test(c) &&
      c !== 'ERR_AUTH_POP_INVALID' &&
      c !== 'ERR_SESSION_INVALID' &&
      c !== 'ERR_UI_SESSION_INVALID',
  ],
  [
    'not found / already exists',
    (c) => /_NOT_FOUND$|_EXISTS$|_INITIALISED$|_IN_USE$/.test(c) && !c.startsWith('ERR_HOME_NOT'),
  ],
  ['identity', (c) => /^ERR_(AUTH_POP|SESSION_INVALID|UI_SESSION_INVALID|PROXY_AUTH_REQUIRED)/.test(c)],
  [
    'forbidden',
    (c) =>
      /_DENIED$|_FORBIDDEN$|_NOT_OWNER$|_LOOP$|_RATE_LIMITED$|_APPROVAL_REJECTED$|_APPROVAL_TIMEOUT$/.test(c),
  ],
  [
    'home not set up',
    (c) =>
      c === 'ERR_HOME_NOT_INITIALISED' || c === 'ERR_HOME_PERMISSIONS' || c === 'ERR_IDENTITY_KEY_MISSING',
  ],
  ['upstream', (c) => /^ERR_UPSTREAM_|^ERR_OAUTH_|^ERR_TOKEN_REFRESH/.test(c)],
  [
    'vault/audit unavailable',
    (c) =>
      /^ERR_VAULT_|^ERR_CA_UNAVAILABLE$|^ERR_AUDIT_UNAVAILABLE$|^ERR_STORE_(SCHEMA|UNAVAILABLE)$/.test(c),
  ],
  ['audit chain broken', (c) => c === 'ERR_AUDIT_BROKEN'],
  ['daemon', (c) => /^ERR_DAEMON_|^ERR_PROXY_BUSY$|^ERR_POLICY_HELD_FULL$/.test(c)],
];

describe("README's exit-code table", () => {
  const table = readmeTable();

  it('is read: eleven exit codes, 0 to 10', () => {
    expect([...table.keys()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it.each(Object.entries(ERROR_CODES) as Array<[ErrorCode, { exit: number }]>)(
    '%s exits with the number the README gives its kind',
    (code, { exit }) => {
      const kinds = KINDS.filter(([, is]) => is(code)).map(([k]) => k);
      expect(kinds, `${code} must be of exactly one kind`).toHaveLength(1);
      const label = table.get(exit);
      expect(label, `exit ${exit} is not in the README table`).toBeDefined();
      expect(label).toContain(kinds[0]);
    },
  );

  it("the CLI's --help epilogue lists the same numbers", () => {
    const main = readFileSync(resolve(import.meta.dirname, '../../src/cli/main.ts'), 'utf8');
    const epilogue = /'Exit codes: ([^']+)'/.exec(main)?.[1] ?? '';
    const numbers = [...epilogue.matchAll(/(\d+) ([a-z/ ]+?)(?:,|\.)/g)].map((m) => Number(m[1]));
    expect(numbers).toEqual([...table.keys()]);
    expect(epilogue).toContain('3 not found or already exists');
  });
});
