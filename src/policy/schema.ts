import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { AppError } from '../errors.js';
import { packageRoot } from '../config/settings.js';
import { globProblem } from './glob.js';
import { parseRate } from './rate-spec.js';
import type { Policy, PolicyRule } from './types.js';

export const POLICY_SCHEMA_PATH = join(packageRoot(), 'config', 'schema', 'policy.schema.json');

// Compiled once, as the provider schema is: every `policy set` and every stored policy read goes through it.
const ajv = new Ajv2020({ allErrors: true, strict: true });
const validateShape = ajv.compile(JSON.parse(readFileSync(POLICY_SCHEMA_PATH, 'utf8')) as object);

export interface PolicyProblem {
  /** e.g. "rules[3].path"; "(root)" for the document itself. */
  readonly path: string;
  readonly reason: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

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

/** Plainer words than ajv's for the patterns of this schema. */
const PATTERN_REASONS: Array<[RegExp, string]> = [
  [/\.(provider|connection)$/, "must be a name: 1-64 characters of a-z, 0-9, '.', '_' or '-'"],
  [/\.methods\[\d+\]$/, 'must be an HTTP method such as GET or POST'],
  [/\.exe\[\d+\]$/, 'must be an absolute path (starting with "/")'],
  [/\.path$/, 'must start with "/"'],
  [/\.rate$/, 'must be N/sec, N/min, N/hour or N/day with N a positive whole number, e.g. "60/min"'],
];

function ajvProblem(e: ErrorObject): PolicyProblem {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required')
    return { path: pointerToPath(e.instancePath, String(p['missingProperty'])), reason: 'is required' };
  if (e.keyword === 'additionalProperties')
    return {
      path: pointerToPath(e.instancePath, String(p['additionalProperty'])),
      reason: 'is not an allowed property',
    };
  const path = pointerToPath(e.instancePath);
  if (e.keyword === 'enum') {
    const allowed = Array.isArray(p['allowedValues'])
      ? p['allowedValues'].map((v) => JSON.stringify(v)).join(', ')
      : '';
    return { path, reason: `must be one of ${allowed}` };
  }
  if (e.keyword === 'pattern') {
    const plain = PATTERN_REASONS.find(([re]) => re.test(path));
    if (plain) return { path, reason: plain[1] };
  }
  return { path, reason: e.message ?? `fails ${e.keyword}` };
}

/** Checks the schema cannot express. Tolerates wrongly typed input (ajv reports that). */
function semanticProblems(raw: unknown, add: (path: string, reason: string) => void): void {
  if (!isObj(raw) || !Array.isArray(raw['rules'])) return;
  raw['rules'].forEach((rule: unknown, i) => {
    if (!isObj(rule)) return;
    const at = `rules[${i}]`;
    if (typeof rule['path'] === 'string') {
      const bad = globProblem(rule['path']);
      if (bad) add(`${at}.path`, bad);
    }
    // A budget that also waits for a person, or a deny that counts, would mean two things at once.
    if ('rate' in rule && rule['action'] !== 'allow' && typeof rule['action'] === 'string')
      add(`${at}.rate`, `is only allowed on "allow" rules (this rule is "${rule['action']}")`);
  });
}

/** Every problem with a candidate policy; empty when it is valid. */
export function checkPolicy(raw: unknown): PolicyProblem[] {
  const semantic: PolicyProblem[] = [];
  semanticProblems(raw, (path, reason) => semantic.push({ path, reason }));
  const shape = validateShape(raw) ? [] : (validateShape.errors ?? []).map(ajvProblem);
  // Where both fire on one field, the semantic reason says more.
  const explained = new Set(semantic.map((p) => p.path));
  const merged = [...shape.filter((p) => !explained.has(p.path)), ...semantic];
  const seen = new Set<string>();
  return merged.filter((p) => {
    const k = `${p.path}\0${p.reason}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

const MAX_LISTED = 40;
const HINT = 'fix the fields listed; config/schema/policy.schema.json and docs/policy.md document the format';

/**
 * Validates a policy document and returns its normalised form. Throws ERR_POLICY_INVALID listing
 * every problem as "rules[3].path: reason".
 */
export function parsePolicy(json: unknown): Policy {
  const problems = checkPolicy(json);
  if (problems.length > 0) {
    const lines = problems.slice(0, MAX_LISTED).map((p) => `${p.path}: ${p.reason}`);
    if (problems.length > MAX_LISTED) lines.push(`… and ${problems.length - MAX_LISTED} more`);
    const message =
      lines.length === 1 ? `invalid policy: ${lines[0]}` : `invalid policy:\n  - ${lines.join('\n  - ')}`;
    throw new AppError('ERR_POLICY_INVALID', message, HINT);
  }
  return normalisePolicy(json as Policy);
}

/** Parses JSON text, then validates it. The JSON error never quotes the text (it might hold a pasted secret). */
export function parsePolicyText(text: string, source: string): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new AppError(
      'ERR_POLICY_INVALID',
      `${source}: not valid JSON${pos === undefined ? '' : ` (at character ${pos})`}`,
      HINT,
    );
  }
  return parsePolicy(raw);
}

/**
 * The normalised form of a valid policy: fixed key order, `default` present, methods upper-case
 * without repeats, rates spelled N/sec|min|hour|day. Idempotent.
 */
export function normalisePolicy(p: Policy): Policy {
  return {
    default: p.default ?? 'allow',
    ...(p.description !== undefined ? { description: p.description } : {}),
    rules: p.rules.map(normaliseRule),
  };
}

export function normaliseRule(r: PolicyRule): PolicyRule {
  return {
    ...(r.provider !== undefined ? { provider: r.provider } : {}),
    ...(r.connection !== undefined ? { connection: r.connection } : {}),
    ...(r.methods !== undefined ? { methods: [...new Set(r.methods.map((m) => m.toUpperCase()))] } : {}),
    ...(r.path !== undefined ? { path: r.path } : {}),
    ...(r.exe !== undefined ? { exe: [...new Set(r.exe)] } : {}),
    action: r.action,
    ...(r.rate !== undefined ? { rate: parseRate(r.rate)?.text ?? r.rate } : {}),
    ...(r.note !== undefined ? { note: r.note } : {}),
  };
}
