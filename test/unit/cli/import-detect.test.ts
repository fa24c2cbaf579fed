import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assignConnections,
  describeSource,
  detect,
  envCandidates,
  parseDotenv,
  type ProviderInfo,
} from '../../../src/cli/import/detect.js';
import { leftovers } from '../../../src/cli/import/leftovers.js';

const PROVIDERS: ProviderInfo[] = [
  { name: 'openai', env: ['OPENAI_API_KEY'], fields: ['api_key'] },
  { name: 'anthropic', env: ['ANTHROPIC_API_KEY'], fields: ['api_key'] },
  { name: 'github', env: ['GITHUB_TOKEN', 'GH_TOKEN'], fields: ['access_token'] },
  { name: 'slack', env: ['SLACK_BOT_TOKEN'], fields: ['token'] },
  { name: 'datadog', env: ['DD_API_KEY', 'DD_APP_KEY'], fields: ['api_key', 'application_key'] },
];
const OPENAI = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123456789';
const ANTHROPIC = 'sk-ant-api03-abcdefghijklmnopqrstuvwxyz';
const GH = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';

describe('parseDotenv', () => {
  it('reads KEY=VALUE lines with export, quotes and comments, keeping 1-based line numbers', () => {
    const text = [
      '# comment',
      'export A="x y # not a comment"',
      "B='single'",
      'C=plain # trailing',
      '',
      'not a line',
      'D=',
      '1BAD=x',
      'E="unterminated',
    ].join('\n');
    const got = parseDotenv(text, '/p/.env').map((c) => [
      c.name,
      c.value,
      c.source.kind === 'dotenv' ? c.source.line : 0,
    ]);
    expect(got).toEqual([
      ['A', 'x y # not a comment', 2],
      ['B', 'single', 3],
      ['C', 'plain', 4],
      ['D', '', 7],
    ]);
  });

  it('handles CRLF files', () => {
    expect(parseDotenv('A=1\r\nB=2\r\n', 'f').map((c) => c.value)).toEqual(['1', '2']);
  });
});

describe('detect', () => {
  const env = (vars: Record<string, string>) => envCandidates(vars);

  it('matches by provider env name first, then by key shape', () => {
    const { findings } = detect(
      env({ OPENAI_API_KEY: OPENAI, RANDOM_NAME: ANTHROPIC, PATH: '/usr/bin', HOME: '/root' }),
      PROVIDERS,
      'authsome-managed',
    );
    expect(findings.map((f) => [f.provider, f.field, f.via])).toEqual([
      ['openai', 'api_key', 'env name OPENAI_API_KEY'],
      ['anthropic', 'api_key', 'key shape sk-ant-…'],
    ]);
  });

  it('sk-ant- is anthropic, not openai; unknown providers in the shape table are ignored', () => {
    const { findings } = detect(
      env({ X: ANTHROPIC, Y: 'hf_abcdefghijklmnopqrstuvwxyz' }),
      PROVIDERS,
      'authsome-managed',
    );
    expect(findings.map((f) => f.provider)).toEqual(['anthropic']);
  });

  it('skips placeholders and empty values silently, odd values and multi-field providers with a reason', () => {
    const { findings, skipped } = detect(
      env({
        GITHUB_TOKEN: 'authsome-managed',
        GH_TOKEN: '',
        OPENAI_API_KEY: 'has space inside',
        DD_API_KEY: 'abcdefabcdef',
      }),
      PROVIDERS,
      'authsome-managed',
    );
    expect(findings).toEqual([]);
    expect(skipped.map((s) => [s.provider, s.reason.slice(0, 20)])).toEqual([
      ['openai', 'does not look like a'],
      ['datadog', 'datadog needs 2 fiel'],
    ]);
  });

  it('skips providers whose hosts belong to many tenants, pointing at login --host', () => {
    const shop: ProviderInfo = {
      name: 'shopify',
      env: ['SHOPIFY_ACCESS_TOKEN'],
      fields: ['access_token'],
      tenantHosts: true,
    };
    const { findings, skipped } = detect(
      env({ SHOPIFY_ACCESS_TOKEN: 'shpat_abcdefghijklmnopqrstuvwxyz' }),
      [...PROVIDERS, shop],
      'authsome-managed',
    );
    expect(findings).toEqual([]);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.reason).toContain('authsome login shopify --host');
  });

  it('merges one value found in two places into one finding with two sources', () => {
    const all = [...env({ GITHUB_TOKEN: GH }), ...parseDotenv(`GH_TOKEN=${GH}\n`, '/x/.env')];
    const { findings } = detect(all, PROVIDERS, 'authsome-managed');
    expect(findings).toHaveLength(1);
    expect(findings[0]!.sources.map(describeSource)).toEqual(['$GITHUB_TOKEN', '/x/.env:1 (GH_TOKEN)']);
  });

  it('names a second value of one provider NAME-2', () => {
    const { findings } = detect(env({ GITHUB_TOKEN: GH, OTHER: `${GH}x` }), PROVIDERS, 'authsome-managed');
    expect(assignConnections(findings, 'work').map((f) => f.connection)).toEqual(['work', 'work-2']);
  });
});

describe('leftovers', () => {
  it('lists dotenv lines with a sed that removes them, shell variables with unset, and rc-file exports', () => {
    const home = mkdtempSync(join(tmpdir(), 'authsome-leftovers-'));
    try {
      writeFileSync(join(home, '.bashrc'), `alias ll='ls -l'\nexport OPENAI_API_KEY=${OPENAI}\n`);
      mkdirSync(join(home, '.config', 'fish'), { recursive: true });
      const left = leftovers(
        [
          { kind: 'dotenv', name: 'OPENAI_API_KEY', file: '/p/my app/.env', line: 3 },
          { kind: 'dotenv', name: 'GH_TOKEN', file: '/p/my app/.env', line: 1 },
          { kind: 'env', name: 'OPENAI_API_KEY' },
        ],
        [OPENAI],
        home,
      );
      expect(left[0]).toMatchObject({ where: '/p/my app/.env: lines 1 (GH_TOKEN), 3 (OPENAI_API_KEY)' });
      expect(left[0]!.fix).toContain("sed -i.bak '1d;3d' '/p/my app/.env' && rm '/p/my app/.env.bak'");
      expect(left[1]!.fix).toMatch(/^unset OPENAI_API_KEY/);
      expect(left[2]!.where).toBe(`${join(home, '.bashrc')}:2`);
      expect(JSON.stringify(left)).not.toContain(OPENAI);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
