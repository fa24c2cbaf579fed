/**
 * Finding API keys already lying around (issue 7 item 3): variables named as a provider's `env`
 * list says, or values with a well-known key shape. Pure functions; the command does the I/O.
 */

/** Where one plaintext copy lives. `line` is 1-based. */
export type Source =
  { kind: 'env'; name: string } | { kind: 'dotenv'; name: string; file: string; line: number };

export interface Candidate {
  readonly name: string;
  readonly value: string;
  readonly source: Source;
}

export interface ProviderInfo {
  readonly name: string;
  readonly env: readonly string[];
  /** Credential fields; only single-field providers can be filled from one variable. */
  readonly fields: readonly string[];
  /** Covers hosts of many tenants (a wildcard): its connections need `login --host`. */
  readonly tenantHosts?: boolean;
}

export interface Finding {
  provider: string;
  field: string;
  value: string;
  /** "env name GITHUB_TOKEN" or "key shape ghp_…". */
  via: string;
  sources: Source[];
}

export interface Skipped {
  source: Source;
  provider?: string;
  reason: string;
}

/** Prefixes vendors document for their keys; the more specific ones first (sk-ant- before sk-). */
export const KEY_SHAPES: ReadonlyArray<{ provider: string; shape: string; re: RegExp }> = [
  { provider: 'anthropic', shape: 'sk-ant-…', re: /^sk-ant-[A-Za-z0-9_-]{20,}$/ },
  { provider: 'openrouter', shape: 'sk-or-…', re: /^sk-or-[A-Za-z0-9_-]{20,}$/ },
  { provider: 'openai', shape: 'sk-…', re: /^sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}$/ },
  {
    provider: 'github',
    shape: 'ghp_…/github_pat_…',
    re: /^(?:gh[pousr]_[A-Za-z0-9_]{20,}|github_pat_[A-Za-z0-9_]{20,})$/,
  },
  { provider: 'slack', shape: 'xoxb-…/xoxp-…', re: /^xox[bpae]-[A-Za-z0-9-]{10,}$/ },
  { provider: 'gitlab', shape: 'glpat-…', re: /^glpat-[A-Za-z0-9_-]{20,}$/ },
  { provider: 'huggingface', shape: 'hf_…', re: /^hf_[A-Za-z0-9]{20,}$/ },
  { provider: 'groq', shape: 'gsk_…', re: /^gsk_[A-Za-z0-9]{20,}$/ },
  { provider: 'stripe', shape: 'sk_live_…', re: /^[rs]k_(?:live|test)_[A-Za-z0-9]{20,}$/ },
  { provider: 'replicate', shape: 'r8_…', re: /^r8_[A-Za-z0-9]{20,}$/ },
  { provider: 'perplexity', shape: 'pplx-…', re: /^pplx-[A-Za-z0-9]{20,}$/ },
  { provider: 'xai', shape: 'xai-…', re: /^xai-[A-Za-z0-9]{20,}$/ },
  { provider: 'npm', shape: 'npm_…', re: /^npm_[A-Za-z0-9]{20,}$/ },
  { provider: 'linear', shape: 'lin_api_…', re: /^lin_api_[A-Za-z0-9]{20,}$/ },
  { provider: 'tavily', shape: 'tvly-…', re: /^tvly-[A-Za-z0-9-]{20,}$/ },
];

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** KEY=VALUE lines (optional `export`, quotes, trailing ` # comment`). Multi-line values are not supported. */
export function parseDotenv(text: string, file: string): Candidate[] {
  const out: Candidate[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim().replace(/^export\s+/, '');
    const eq = line.indexOf('=');
    if (line.startsWith('#') || eq <= 0) return;
    const name = line.slice(0, eq).trim();
    if (!NAME.test(name)) return;
    let value = line.slice(eq + 1).trim();
    const q = value[0];
    if (q === '"' || q === "'") {
      const end = value.indexOf(q, 1);
      if (end < 0) return;
      value = value.slice(1, end);
    } else {
      value = value.replace(/\s+#.*$/, '').trim();
    }
    out.push({ name, value, source: { kind: 'dotenv', name, file, line: i + 1 } });
  });
  return out;
}

export function envCandidates(env: NodeJS.ProcessEnv): Candidate[] {
  return Object.entries(env)
    .filter((e): e is [string, string] => typeof e[1] === 'string')
    .map(([name, value]) => ({ name, value, source: { kind: 'env', name } }));
}

function looksLikeSecret(v: string): boolean {
  return v.length >= 8 && v.length <= 4096 && /^[\x21-\x7e]+$/.test(v);
}

/**
 * Matches candidates to providers: by variable name first (the provider's `env` list), else by key
 * shape. The same value found twice becomes one finding with two sources. `placeholder` values
 * (what `authsome run` sets) are skipped silently: they are not keys.
 */
export function detect(
  candidates: readonly Candidate[],
  providers: readonly ProviderInfo[],
  placeholder: string,
): { findings: Finding[]; skipped: Skipped[] } {
  const byEnv = new Map<string, ProviderInfo>();
  for (const p of providers) for (const e of p.env) byEnv.set(e, p);
  const known = new Map(providers.map((p) => [p.name, p]));
  const findings = new Map<string, Finding>();
  const skipped: Skipped[] = [];
  for (const c of candidates) {
    if (c.value === placeholder || c.value === '') continue;
    const named = byEnv.get(c.name);
    const shaped = named ? undefined : KEY_SHAPES.find((s) => known.has(s.provider) && s.re.test(c.value));
    const p = named ?? (shaped ? known.get(shaped.provider) : undefined);
    if (!p) continue;
    if (p.tenantHosts) {
      skipped.push({
        source: c.source,
        provider: p.name,
        reason: `${p.name} serves many tenants: bind the key to your own host with \`authsome login ${p.name} --host <your host>\``,
      });
      continue;
    }
    if (p.fields.length !== 1) {
      skipped.push({
        source: c.source,
        provider: p.name,
        reason: `${p.name} needs ${p.fields.length} fields (${p.fields.join(', ')}): run \`authsome login ${p.name}\``,
      });
      continue;
    }
    if (!looksLikeSecret(c.value)) {
      skipped.push({
        source: c.source,
        provider: p.name,
        reason: 'does not look like a key (too short, or contains spaces or control characters)',
      });
      continue;
    }
    const key = `${p.name}\0${c.value}`;
    const prior = findings.get(key);
    if (prior) prior.sources.push(c.source);
    else
      findings.set(key, {
        provider: p.name,
        field: p.fields[0]!,
        value: c.value,
        via: named ? `env name ${c.name}` : `key shape ${shaped!.shape}`,
        sources: [c.source],
      });
  }
  return { findings: [...findings.values()], skipped };
}

/** Connection names: `base` for the first value of a provider, then base-2, base-3… */
export function assignConnections(
  findings: readonly Finding[],
  base: string,
): Array<Finding & { connection: string }> {
  const seen = new Map<string, number>();
  return findings.map((f) => {
    const n = (seen.get(f.provider) ?? 0) + 1;
    seen.set(f.provider, n);
    return { ...f, connection: n === 1 ? base : `${base}-${n}` };
  });
}

export function describeSource(s: Source): string {
  return s.kind === 'env' ? `$${s.name}` : `${s.file}:${s.line} (${s.name})`;
}
