import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { findCanary, filesContaining } from '../helpers/canary.js';
import { TestHome } from '../helpers/cli.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { startDecoy, startOrigin, type Recorder, type ServerSet } from './servers.js';
import { Wire } from './wire.js';

/**
 * One real daemon (the BUILT CLI, spawned like a user would) with canary secrets, a hostile-but-
 * allowed ORIGIN, a DECOY that must never see a secret, and operator pins routing every trick
 * (undeclared port, other host, cleartext) to somewhere recorded. `leaks()` searches everything the
 * caller, the logs, the audit log, the home and the decoys received for every canary, in raw,
 * base64, base64url, hex and URL-encoded form.
 */
const rnd = (): string => randomBytes(8).toString('hex');
export const SECRETS = {
  personal: `sk-CANARY-personal-${rnd()}`,
  work: `sk-CANARY-work-${rnd()}`,
  other: `sk-CANARY-other-${rnd()}`,
  key: `key-CANARY-${rnd()}`,
  basicPass: `pw-CANARY-${rnd()}`,
  query: `q-CANARY-${rnd()}`,
  loop: `sk-CANARY-loop-${rnd()}`,
  tls: `sk-CANARY-tls-${rnd()}`,
} as const;
export const BASIC_USER = 'canary-user';

export const HOST = {
  api: 'api.canary.test',
  keys: 'keys.canary.test',
  basic: 'basic.canary.test',
  query: 'query.canary.test',
  decoy: 'decoy.canary.test',
  plain: 'plain.canary.test',
  loop: 'loop.canary.test',
  ctl: 'ctl.canary.test',
  ctl6: 'ctl6.canary.test',
  zero: 'zero.canary.test',
} as const;

const bearer = (name: string, hosts: string[]): object => ({
  name,
  displayName: name,
  docsUrl: 'https://example.test/docs',
  hosts: hosts.map((host) => ({ host })),
  fields: ['api_key'],
  inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
});

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface EnvOptions {
  /** Extra pins ("host:port=ip:port"), e.g. bad-certificate upstreams. */
  pins?: string[];
  /** Extra providers (JSON definitions), added by the owner. */
  providers?: object[];
  /** Connections to log in for "me": [provider, connection, stdin]. */
  logins?: Array<[string, string, string]>;
  /** server/config.json `proxy` settings. */
  proxy?: Record<string, unknown>;
  /** Other top-level server/config.json settings (e.g. `policy`). */
  config?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

export class AdvEnv {
  readonly t: TestHome;
  readonly upstreamCa: TestCa;
  readonly origin: ServerSet;
  readonly decoy: ServerSet;
  readonly wire: Wire;
  readonly outputs: string[] = [];
  readonly controlPort: number;
  readonly proxyPort: number;
  /** Upstreams that must never receive a secret (besides the decoy and the origin's cleartext port). */
  readonly mustNotSee: Array<[string, Recorder]> = [];
  tokens = { me: '', other: '', limited: '' };

  private constructor(t: TestHome, ca: TestCa, origin: ServerSet, decoy: ServerSet, ports: [number, number]) {
    this.t = t;
    this.upstreamCa = ca;
    this.origin = origin;
    this.decoy = decoy;
    [this.controlPort, this.proxyPort] = ports;
    this.wire = new Wire(this.proxyPort);
  }

  static async start(o: EnvOptions = {}): Promise<AdvEnv> {
    const ca = await makeTestCa('adversarial upstream CA');
    const cert = await ca.issue([...Object.values(HOST), '127.0.0.1']);
    const origin = await startOrigin(cert, HOST.decoy);
    const decoy = await startDecoy(cert);
    const ports: [number, number] = [await freePort(), await freePort()];
    const [cp, pp] = ports;
    const o443 = `127.0.0.1:${origin.https.port}`;
    const d443 = `127.0.0.1:${decoy.https.port}`;
    const pins = [
      ...[HOST.api, HOST.keys, HOST.basic, HOST.query].map((h) => `${h}:443=${o443}`),
      `${HOST.api}:80=127.0.0.1:${origin.http.port}`,
      `${HOST.api}:8443=${d443}`,
      `${HOST.decoy}:443=${d443}`,
      `${HOST.decoy}:80=127.0.0.1:${decoy.http.port}`,
      `${HOST.plain}:443=${d443}`,
      `${HOST.loop}:443=127.0.0.1:${pp}`,
      `${HOST.ctl}:443=127.0.0.1:${cp}`,
      `${HOST.ctl6}:443=[::ffff:127.0.0.1]:${cp}`,
      `${HOST.zero}:443=0.0.0.0:${cp}`,
      ...(o.pins ?? []),
    ];
    const t = new TestHome({
      AUTHSOME_DAEMON_PORT: String(cp),
      AUTHSOME_PROXY_PORT: String(pp),
      AUTHSOME_RESOLVE: pins.join(','),
      NODE_TLS_REJECT_UNAUTHORIZED: '0',
      ...o.env,
    });
    const caFile = join(t.dir, 'upstream-ca.pem');
    writeFileSync(caFile, ca.certPem);
    t.env['AUTHSOME_UPSTREAM_CA'] = caFile;
    mkdirSync(join(t.home, 'server'), { recursive: true, mode: 0o700 });
    writeFileSync(
      join(t.home, 'server', 'config.json'),
      JSON.stringify({ ...o.config, proxy: { headersTimeoutMs: 1500, idleTimeoutMs: 4000, ...o.proxy } }),
      { mode: 0o600 },
    );
    const env = new AdvEnv(t, ca, origin, decoy, ports);
    try {
      await env.setup(o);
    } catch (e) {
      await env.stop().catch(() => undefined);
      throw e;
    }
    return env;
  }

  async cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await this.t.run(args, input === undefined ? {} : { input });
    this.outputs.push(r.stdout, r.stderr);
    return r;
  }

  async ok(args: string[], input?: string): Promise<string> {
    const r = await this.cli(args, input);
    if (r.code !== 0) throw new Error(`authsome ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  private async setup(o: EnvOptions): Promise<void> {
    await this.ok(['init', '--profile', 'me']);
    const defs = [
      bearer('canaryco', [HOST.api]),
      {
        ...(bearer('keyco', [HOST.keys]) as Record<string, unknown>),
        inject: [{ type: 'header', name: 'X-Api-Key', template: '{{api_key}}' }],
      },
      {
        ...(bearer('basicco', [HOST.basic]) as Record<string, unknown>),
        fields: ['username', 'password'],
        inject: [
          { type: 'header', name: 'Authorization', template: "Basic {{base64(username, ':', password)}}" },
        ],
      },
      {
        ...(bearer('queryco', [HOST.query]) as Record<string, unknown>),
        inject: [{ type: 'query', name: 'key', template: '{{api_key}}' }],
      },
      bearer('loopco', [HOST.loop, HOST.ctl, HOST.ctl6, HOST.zero]),
      ...(o.providers ?? []),
    ];
    for (const [i, d] of defs.entries()) {
      const f = join(this.t.dir, `provider-${i}.json`);
      writeFileSync(f, JSON.stringify(d));
      await this.ok(['provider', 'add', f]);
    }
    const logins: Array<[string, string, string]> = [
      ['canaryco', 'personal', SECRETS.personal],
      ['canaryco', 'work', SECRETS.work],
      ['keyco', 'main', SECRETS.key],
      ['basicco', 'main', `${BASIC_USER}\n${SECRETS.basicPass}`],
      ['queryco', 'main', SECRETS.query],
      ['loopco', 'main', SECRETS.loop],
      ...(o.logins ?? []),
    ];
    for (const [p, c, input] of logins) await this.ok(['login', p, '--connection', c], `${input}\n`);
    await this.ok(['profile', 'create', 'other']);
    await this.ok(
      ['--profile', 'other', 'login', 'canaryco', '--connection', 'otherconn'],
      `${SECRETS.other}\n`,
    );
    this.tokens = {
      me: await this.mint(['proxy', 'env']),
      other: await this.mint(['--profile', 'other', 'proxy', 'env']),
      limited: await this.mint(['proxy', 'env', '--allow', 'canaryco:work']),
    };
  }

  /** A session token from `authsome proxy env --json` (the token sits in HTTPS_PROXY's userinfo). */
  async mint(args: string[]): Promise<string> {
    const out = JSON.parse(await this.ok([...args, '--json'])) as { env: Record<string, string> };
    return decodeURIComponent(new URL(out.env['HTTPS_PROXY']!).password);
  }

  basic(handle: string, token: string): string {
    return `Basic ${Buffer.from(`${handle}:${token}`).toString('base64')}`;
  }

  /** Proxy-Authorization of "me" (or another handle/token). */
  auth(handle = 'me', token = this.tokens.me): string {
    return this.basic(handle, token);
  }

  get localCa(): string {
    return readFileSync(join(this.t.home, 'server', 'ca', 'ca.pem'), 'utf8');
  }

  file(rel: string): string {
    const p = join(this.t.home, rel);
    return existsSync(p) ? readFileSync(p, 'latin1') : '';
  }

  auditLines(): Array<Record<string, unknown>> {
    return this.file('audit.log')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Every place a canary turned up ("where: form"), over every sink that must never hold one. */
  leaks(): string[] {
    const sinks: Array<[string, string]> = [
      ['caller bytes', this.wire.text()],
      ['CLI output', this.outputs.join('\n')],
      ['daemon.log', this.file('server/daemon.log')],
      ['audit.log', this.file('audit.log')],
      ['decoy (cleartext)', this.decoy.http.seen.text()],
      ['decoy (TLS)', this.decoy.https.seen.text()],
      ['origin cleartext port', this.origin.http.seen.text()],
      ...this.mustNotSee.map(([n, r]): [string, string] => [n, r.text()]),
    ];
    const out: string[] = [];
    for (const [name, secret] of Object.entries(SECRETS)) {
      for (const [where, text] of sinks) {
        const form = findCanary(text, secret);
        if (form !== undefined) out.push(`${name} in ${where} as ${JSON.stringify(form.slice(0, 12))}…`);
      }
      for (const f of filesContaining(this.t.home, secret)) out.push(`${name} in file ${f}`);
    }
    return out;
  }

  async stop(): Promise<void> {
    this.wire.close();
    await this.t.cleanup();
    await Promise.all([this.origin.close(), this.decoy.close()]);
  }
}
