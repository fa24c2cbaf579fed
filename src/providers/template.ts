/**
 * The injection template grammar (also described in config/schema/provider.schema.json):
 *
 *   template    = *( literal / placeholder )
 *   literal     = 1*( printable ASCII except "{" and "}" )
 *   placeholder = "{{" ( field / "base64(" arg *( "," arg ) ")" ) "}}"
 *   arg         = field / "'" *( printable ASCII except "'" "{" "}" "\" ) "'"    ; spaces around args allowed
 *   field       = [a-z] *31( [a-z0-9_] )
 *
 * `{{base64(a, ':', b)}}` concatenates its args and base64-encodes the result (HTTP Basic, RFC 7617).
 * The grammar is deliberately tiny: no escapes, no nesting, no expressions, so a definition cannot
 * compute anything a reviewer cannot read at a glance.
 */

export const FIELD_NAME = /^[a-z][a-z0-9_]{0,31}$/;

export type TemplateArg = { kind: 'lit'; text: string } | { kind: 'field'; name: string };
export type TemplatePart = TemplateArg | { kind: 'base64'; args: TemplateArg[] };

export type ParseResult = { ok: true; parts: TemplatePart[] } | { ok: false; reason: string };

const LITERAL = /^[\x20-\x7e]*$/;
// Sticky tokeniser for base64 args: optional spaces, a quoted literal or a field name, spaces, then "," or end.
const ARG = / *(?:'([\x20-\x26\x28-\x5b\x5d-\x7a\x7c\x7e]*)'|([a-z][a-z0-9_]{0,31})) *(,|$)/y;

function parseArgs(inner: string): TemplateArg[] | string {
  const args: TemplateArg[] = [];
  ARG.lastIndex = 0;
  while (ARG.lastIndex < inner.length) {
    const m = ARG.exec(inner);
    if (!m) return 'base64(…) takes field names and single-quoted literals separated by commas';
    args.push(m[2] !== undefined ? { kind: 'field', name: m[2] } : { kind: 'lit', text: m[1] ?? '' });
    if (m[3] === '') break;
    if (ARG.lastIndex === inner.length) return 'base64(…) has a trailing comma';
  }
  if (!args.some((a) => a.kind === 'field')) return 'base64(…) must name at least one field';
  return args;
}

/** Parses a template. Reasons never quote the template text (a user may have pasted a secret into it). */
export function parseTemplate(text: string): ParseResult {
  const parts: TemplatePart[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    const lit = text.slice(i, open < 0 ? text.length : open);
    if (lit.length > 0) {
      if (!LITERAL.test(lit)) return { ok: false, reason: 'literal text must be printable ASCII' };
      if (/[{}]/.test(lit))
        return { ok: false, reason: "a single '{' or '}' is not allowed outside a {{…}} placeholder" };
      parts.push({ kind: 'lit', text: lit });
    }
    if (open < 0) break;
    const close = text.indexOf('}}', open + 2);
    if (close < 0) return { ok: false, reason: "a '{{' is never closed with '}}'" };
    const inner = text.slice(open + 2, close);
    const b64 = /^base64\((.*)\)$/.exec(inner);
    if (FIELD_NAME.test(inner)) {
      parts.push({ kind: 'field', name: inner });
    } else if (b64) {
      const args = parseArgs(b64[1] ?? '');
      if (typeof args === 'string') return { ok: false, reason: args };
      parts.push({ kind: 'base64', args });
    } else {
      return {
        ok: false,
        reason:
          "a placeholder must be {{field}} or {{base64(field, ':', field)}} (field names: a-z, 0-9, '_')",
      };
    }
    i = close + 2;
  }
  if (!parts.some((p) => p.kind !== 'lit')) return { ok: false, reason: 'must reference at least one field' };
  return { ok: true, parts };
}

/** Every field a parsed template reads, in order of first use. */
export function templateFields(parts: readonly TemplatePart[]): string[] {
  const out: string[] = [];
  const add = (a: TemplateArg): void => {
    if (a.kind === 'field' && !out.includes(a.name)) out.push(a.name);
  };
  for (const p of parts) {
    if (p.kind === 'base64') p.args.forEach(add);
    else add(p);
  }
  return out;
}
