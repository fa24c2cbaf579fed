import { describe, expect, it } from 'vitest';
import { parseTemplate, templateFields } from '../../../src/providers/template.js';

describe('parseTemplate', () => {
  it('parses literals, fields and base64 concatenations', () => {
    const r = parseTemplate("Basic {{base64(email, '/token:', api_token)}} x {{other}}");
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.parts).toEqual([
      { kind: 'lit', text: 'Basic ' },
      {
        kind: 'base64',
        args: [
          { kind: 'field', name: 'email' },
          { kind: 'lit', text: '/token:' },
          { kind: 'field', name: 'api_token' },
        ],
      },
      { kind: 'lit', text: ' x ' },
      { kind: 'field', name: 'other' },
    ]);
    expect(templateFields(r.parts)).toEqual(['email', 'api_token', 'other']);
  });

  it('allows an empty quoted literal and spaces around args', () => {
    const r = parseTemplate("{{base64( key ,'' )}}");
    expect(r.ok && r.parts).toEqual([
      {
        kind: 'base64',
        args: [
          { kind: 'field', name: 'key' },
          { kind: 'lit', text: '' },
        ],
      },
    ]);
  });

  it.each([
    '{{}}',
    '{{Api}}',
    '{{base64()}}',
    "{{base64('a'}}",
    '{{a}}}',
    'tab\there {{a}}',
    'é {{a}}',
    '{{ a }}',
  ])('refuses %j', (t) => {
    expect(parseTemplate(t).ok).toBe(false);
  });
});
