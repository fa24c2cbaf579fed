import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { AppError } from '../errors.js';
import { packageRoot } from '../config/settings.js';
import { NAME_PATTERN } from '../names.js';
import { hostPatternProblem, pathPrefixProblem } from './host.js';
import { FIELD_NAME, parseTemplate, templateFields } from './template.js';
import type { ProviderDef } from './types.js';

export const PROVIDER_SCHEMA_PATH = join(packageRoot(), 'config', 'schema', 'provider.schema.json');

// Compiled once: every definition (bundled at start, custom on `provider add`) goes through it.
const ajv = new Ajv2020({ allErrors: true, strict: true });
const validateShape = ajv.compile(JSON.parse(readFileSync(PROVIDER_SCHEMA_PATH, 'utf8')) as object);

export interface ProviderProblem {
  /** e.g. "inject[0].template"; "(root)" for the document itself. */
  readonly path: string;
  readonly reason: string;
}

const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const QUERY_NAME = /^[A-Za-z0-9._~-]{1,64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
// RFC 9110 section 7.6.1 plus the framing headers the proxy owns.
const HOP_BY_HOP = new Set(
  'connection keep-alive proxy-connection te trailer transfer-encoding upgrade'.split(' '),
);
// `authsome run` sets these itself, or they change how the child loads code; a placeholder there breaks or hijacks it.
const RESERVED_ENV = new Set(
  [
    'http_proxy https_proxy no_proxy all_proxy node_extra_ca_certs ssl_cert_file ssl_cert_dir',
    'requests_ca_bundle curl_ca_bundle git_ssl_cainfo pip_cert npm_config_cafile node_options node_path',
    'path home shell pythonpath pythonhome bash_env env node_use_env_proxy',
    // every toolchain's trust variable that `run` sets (issue 19), and the JVM's options
    'aws_ca_bundle grpc_default_ssl_roots_file_path httplib2_ca_certs cloudsdk_core_custom_ca_certs_file',
    'nix_ssl_cert_file cargo_http_cainfo deno_cert java_tool_options jdk_java_options',
  ]
    .join(' ')
    .split(' '),
);
const RESERVED_ENV_PREFIX = ['authsome_', 'ld_', 'dyld_'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): Array<[number, string]> =>
  Array.isArray(v)
    ? v.flatMap((x, i): Array<[number, string]> => (typeof x === 'string' ? [[i, x]] : []))
    : [];

export function headerNameProblem(name: string): string | undefined {
  if (!HEADER_TOKEN.test(name)) return 'must be an HTTP header name (RFC 9110 token characters only)';
  const l = name.toLowerCase();
  if (HOP_BY_HOP.has(l)) return `"${name}" is a hop-by-hop header`;
  if (l === 'host' || l === 'content-length') return `"${name}" is set by the proxy from the request itself`;
  if (l.startsWith('proxy-')) return 'Proxy-* headers belong to the hop to the proxy and are never forwarded';
  if (l.startsWith('x-authsome-')) return "X-Authsome-* headers are authsome's own and never reach upstream";
  if (l === 'cookie') return '"Cookie" would replace the caller\'s cookies';
  return undefined;
}

function httpsUrlProblem(value: string, fragmentOk = false): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute https:// URL';
  }
  if (url.protocol !== 'https:') return 'must be an https:// URL';
  if (url.username || url.password) return 'must not contain userinfo';
  if (url.hash && !fragmentOk) return 'must not contain a fragment';
  return undefined;
}

function envProblem(name: string): string | undefined {
  if (!ENV_NAME.test(name))
    return 'must be an environment variable name (A-Z, a-z, 0-9, _; not starting with a digit)';
  const l = name.toLowerCase();
  if (RESERVED_ENV.has(l) || RESERVED_ENV_PREFIX.some((p) => l.startsWith(p))) {
    return `"${name}" is set by authsome itself or changes how programs load; it cannot be a placeholder`;
  }
  return undefined;
}

function checkHosts(hosts: unknown, add: (path: string, reason: string) => void): void {
  if (!Array.isArray(hosts)) return;
  const seen = new Map<string, number>();
  hosts.forEach((h: unknown, i) => {
    if (!isObj(h)) return;
    const host = h['host'];
    const prefix = h['pathPrefix'];
    if (typeof host !== 'string') return;
    const hostBad = hostPatternProblem(host);
    if (hostBad) add(`hosts[${i}].host`, hostBad);
    const prefixBad = typeof prefix === 'string' ? pathPrefixProblem(prefix) : undefined;
    if (prefixBad) add(`hosts[${i}].pathPrefix`, prefixBad);
    if (hostBad || prefixBad) return;
    const key = `${host}:${String(h['port'] ?? 443)}${typeof prefix === 'string' ? prefix : ''}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else add(`hosts[${i}]`, `repeats hosts[${first}]`);
  });
}

function checkInject(
  inject: unknown,
  declared: ReadonlySet<string>,
  add: (path: string, reason: string) => void,
): Set<string> | undefined {
  const used = new Set<string>();
  let complete = Array.isArray(inject);
  const names = new Map<string, number>();
  (Array.isArray(inject) ? inject : []).forEach((rule: unknown, i) => {
    if (!isObj(rule)) return void (complete = false);
    const { type, name, template } = rule;
    if (typeof name === 'string' && (type === 'header' || type === 'query')) {
      const bad =
        type === 'header'
          ? headerNameProblem(name)
          : QUERY_NAME.test(name)
            ? undefined
            : 'must be 1-64 of A-Z a-z 0-9 . _ ~ -';
      if (bad) add(`inject[${i}].name`, bad);
      const key = `${type}:${type === 'header' ? name.toLowerCase() : name}`;
      const first = names.get(key);
      if (first === undefined) names.set(key, i);
      else add(`inject[${i}].name`, `is injected twice (see inject[${first}])`);
    }
    if (typeof template !== 'string') return void (complete = false);
    const parsed = parseTemplate(template);
    if (!parsed.ok) {
      add(`inject[${i}].template`, parsed.reason);
      return void (complete = false);
    }
    if (type === 'header' && template.trim() !== template)
      add(`inject[${i}].template`, 'must not start or end with whitespace');
    for (const f of templateFields(parsed.parts)) {
      used.add(f);
      if (!declared.has(f)) {
        add(
          `inject[${i}].template`,
          `names unknown field "${f}" (declared: ${[...declared].join(', ') || 'none'})`,
        );
      }
    }
  });
  return complete ? used : undefined;
}

function checkFlows(
  obj: Obj,
  declared: ReadonlySet<string>,
  add: (path: string, reason: string) => void,
): void {
  const flows = 'flows' in obj ? strings(obj['flows']).map(([, f]) => f) : ['api-key'];
  const oauth = isObj(obj['oauth']) ? obj['oauth'] : undefined;
  const wantsOAuth = flows.includes('device') || flows.includes('pkce');
  if (flows.includes('device') && typeof oauth?.['deviceUrl'] !== 'string')
    add('oauth.deviceUrl', 'is required when flows include "device"');
  if (flows.includes('pkce') && typeof oauth?.['authorizeUrl'] !== 'string')
    add('oauth.authorizeUrl', 'is required when flows include "pkce"');
  if (flows.includes('pkce') && oauth?.['pkce'] === false)
    add('oauth.pkce', 'must not be false when flows include "pkce"');
  if (oauth && !wantsOAuth) add('oauth', 'is declared but flows include neither "device" nor "pkce"');
  if (wantsOAuth && !declared.has('access_token'))
    add('fields', 'must include "access_token" when flows include an OAuth flow');
  if (!oauth) return;
  for (const k of ['authorizeUrl', 'tokenUrl', 'deviceUrl', 'revokeUrl']) {
    const v = oauth[k];
    const bad = typeof v === 'string' ? httpsUrlProblem(v) : undefined;
    if (bad) add(`oauth.${k}`, bad);
  }
}

/** Semantic checks the JSON Schema cannot express. Tolerates wrongly typed input (ajv reports that). */
function semanticProblems(raw: unknown, add: (path: string, reason: string) => void): void {
  if (!isObj(raw)) return;
  const { name, docsUrl } = raw;
  if (typeof name === 'string' && !NAME_PATTERN.test(name)) {
    add('name', "must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit");
  }
  const docsBad = typeof docsUrl === 'string' ? httpsUrlProblem(docsUrl, true) : undefined;
  if (docsBad) add('docsUrl', docsBad);
  checkHosts(raw['hosts'], add);
  const declared = new Set<string>();
  for (const [i, f] of strings(raw['fields'])) {
    if (FIELD_NAME.test(f)) declared.add(f);
    else add(`fields[${i}]`, "must be a-z first, then a-z, 0-9 or '_' (at most 32 characters)");
  }
  const used = checkInject(raw['inject'], declared, add);
  if (used) {
    for (const [i, f] of strings(raw['fields']))
      if (declared.has(f) && !used.has(f)) add(`fields[${i}]`, 'is declared but no inject template uses it');
  }
  for (const [i, e] of strings(raw['env'])) {
    const bad = envProblem(e);
    if (bad) add(`env[${i}]`, bad);
  }
  checkFlows(raw, declared, add);
}

function pointerToPath(pointer: string, extra?: string): string {
  const segs = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) segs.push(extra);
  let out = '';
  for (const s of segs) out += /^[0-9]+$/.test(s) ? `[${s}]` : out ? `.${s}` : s;
  return out || '(root)';
}

function ajvProblem(e: ErrorObject): ProviderProblem {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required')
    return { path: pointerToPath(e.instancePath, String(p['missingProperty'])), reason: 'is required' };
  if (e.keyword === 'additionalProperties') {
    return {
      path: pointerToPath(e.instancePath, String(p['additionalProperty'])),
      reason: 'is not an allowed property',
    };
  }
  if (e.keyword === 'enum') {
    const allowed = Array.isArray(p['allowedValues'])
      ? p['allowedValues'].map((v) => JSON.stringify(v)).join(', ')
      : '';
    return { path: pointerToPath(e.instancePath), reason: `must be one of ${allowed}` };
  }
  return { path: pointerToPath(e.instancePath), reason: e.message ?? `fails ${e.keyword}` };
}

/** Every problem with a candidate definition; empty when it is valid. */
export function checkProviderDef(raw: unknown): ProviderProblem[] {
  const semantic: ProviderProblem[] = [];
  semanticProblems(raw, (path, reason) => semantic.push({ path, reason }));
  const ok = validateShape(raw);
  const shape = ok ? [] : (validateShape.errors ?? []).map(ajvProblem);
  // Schema patterns mirror the semantic rules for editors; where both fire, the semantic reason says more.
  const explained = new Set(semantic.map((p) => p.path));
  const merged = [...shape.filter((p) => !explained.has(p.path)), ...semantic];
  const seen = new Set<string>();
  return merged.filter((p) => {
    const k = `${p.path}\0${p.reason}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

const MAX_LISTED = 40;

/**
 * Validates a parsed definition and returns a clean copy (without "$schema"). `source` names the file
 * (or "custom provider X") in the error, which lists every problem as "path: reason".
 */
export function validateProvider(raw: unknown, source: string): ProviderDef {
  const problems = checkProviderDef(raw);
  if (problems.length > 0) {
    const lines = problems.slice(0, MAX_LISTED).map((p) => `  - ${p.path}: ${p.reason}`);
    if (problems.length > MAX_LISTED) lines.push(`  - … and ${problems.length - MAX_LISTED} more`);
    throw new AppError(
      'ERR_PROVIDER_INVALID',
      `${source}: invalid provider definition:\n${lines.join('\n')}`,
      'fix the fields listed; config/schema/provider.schema.json documents the format',
    );
  }
  const copy = structuredClone(raw) as ProviderDef & { $schema?: unknown };
  delete copy.$schema;
  return copy;
}

/** Parses JSON text, then validates it. The JSON error never quotes the text (it might hold a pasted secret). */
export function parseProviderJson(text: string, source: string): ProviderDef {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new AppError(
      'ERR_PROVIDER_INVALID',
      `${source}: not valid JSON${pos === undefined ? '' : ` (at character ${pos})`}`,
      'fix the JSON syntax; config/schema/provider.schema.json documents the format',
    );
  }
  return validateProvider(raw, source);
}
