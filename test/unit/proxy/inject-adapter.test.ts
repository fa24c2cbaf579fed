import { describe, expect, it } from 'vitest';
import { applyQuery, injectedHeaderNames, renderInjection } from '../../../src/proxy/inject-adapter.js';
import { Secret } from '../../../src/secret.js';
import { provider } from '../../helpers/fake-deps.js';

const fields = { api_key: new Secret('sk-1'), username: new Secret('u'), password: new Secret('p') };

describe('renderInjection', () => {
  it('renders bearer, raw key, custom prefix and several headers', () => {
    const def = provider(
      'p',
      [],
      [
        { type: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' },
        { type: 'header', name: 'X-Api-Key', template: '{{ api_key }}' },
        { type: 'header', name: 'X-User', template: 'Token {{username}}:{{password}}' },
      ],
    );
    expect(renderInjection(def, fields).headers).toEqual([
      ['Authorization', 'Bearer sk-1'],
      ['X-Api-Key', 'sk-1'],
      ['X-User', 'Token u:p'],
    ]);
    expect([...injectedHeaderNames(def)]).toEqual(['authorization', 'x-api-key', 'x-user']);
  });

  it('renders query parameters', () => {
    const def = provider('p', [], [{ type: 'query', name: 'key', template: '{{api_key}}' }]);
    expect(renderInjection(def, fields)).toEqual({ headers: [], query: [['key', 'sk-1']] });
  });

  it('refuses a missing field without naming its value', () => {
    const def = provider('p', [], [{ type: 'header', name: 'A', template: '{{nope}}' }]);
    expect(() => renderInjection(def, fields)).toThrow(/nope/);
  });

  it('refuses a credential that would split headers', () => {
    const def = provider('p', [], [{ type: 'header', name: 'A', template: '{{api_key}}' }]);
    const evil = { api_key: new Secret('x\r\nX-Evil: 1') };
    let msg = '';
    try {
      renderInjection(def, evil);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/cannot be sent/);
    expect(msg).not.toContain('X-Evil');
  });
});

describe('applyQuery', () => {
  it('replaces every caller copy (also encoded) and keeps the rest', () => {
    expect(applyQuery('/p?key=a&x=1&k%65y=b&key', [['key', 's k']])).toBe('/p?x=1&key=s%20k');
    expect(applyQuery('/p', [['key', 'v']])).toBe('/p?key=v');
    expect(applyQuery('/p?x=1', [])).toBe('/p?x=1');
  });
});
