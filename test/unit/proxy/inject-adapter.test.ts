import { describe, expect, it } from 'vitest';
import { injectedHeaderNames, renderInjection } from '../../../src/proxy/inject-adapter.js';
import { Secret } from '../../../src/secret.js';
import { provider } from '../../helpers/fake-deps.js';

const fields = { api_key: new Secret('sk-1'), username: new Secret('u'), password: new Secret('p') };

describe('inject adapter (over src/providers/inject.ts)', () => {
  it('renders bearer, raw key, basic auth from two fields, and several headers', () => {
    const def = provider(
      'p',
      [],
      [
        { type: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' },
        { type: 'header', name: 'X-Api-Key', template: '{{api_key}}' },
        { type: 'header', name: 'X-Basic', template: "Basic {{base64(username, ':', password)}}" },
      ],
    );
    expect(renderInjection(def, fields, '/x').headers).toEqual([
      ['Authorization', 'Bearer sk-1'],
      ['X-Api-Key', 'sk-1'],
      ['X-Basic', `Basic ${Buffer.from('u:p').toString('base64')}`],
    ]);
    expect([...injectedHeaderNames(def)]).toEqual(['authorization', 'x-api-key', 'x-basic']);
  });

  it('sets query parameters, replacing caller copies', () => {
    const def = provider('p', [], [{ type: 'query', name: 'key', template: '{{api_key}}' }]);
    expect(renderInjection(def, fields, '/p?key=caller&x=1')).toEqual({
      headers: [],
      pathAndQuery: '/p?x=1&key=sk-1',
    });
  });

  it('refuses a credential that would split headers, without quoting it', () => {
    const def = provider('p', [], [{ type: 'header', name: 'A', template: '{{api_key}}' }]);
    let msg = '';
    try {
      renderInjection(def, { api_key: new Secret('x\r\nX-Evil: 1') }, '/');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).not.toBe('');
    expect(msg).not.toContain('X-Evil');
  });
});
