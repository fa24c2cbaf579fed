import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { findCanary } from '../helpers/canary.js';
import { CA_VARS } from '../../src/cli/session-env.js';
import { loadCa } from '../../src/ca/root.js';
import { LeafMinter } from '../../src/ca/leaf.js';

/**
 * Issue 19 item 5: every toolchain's trust variable, each read by a real client where this machine has
 * one. Each client runs under `authsome run` with every trust variable removed but its own (so that
 * one alone must make it trust the intercepting CA), then with its own removed as well (it must then
 * fail: the variable is what made it work). A client that is not installed is skipped, saying so.
 */
const TOKEN = `ghp_CANARYtrust${randomBytes(10).toString('hex')}`;
const ALL_TRUST = [...CA_VARS, 'NODE_EXTRA_CA_CERTS', 'JAVA_TOOL_OPTIONS', 'SSL_CERT_DIR'];
const GCLOUD_LIB = '/usr/lib/google-cloud-sdk/lib/third_party';
const GCLOUD_PYTHON = '/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3';
const FETCH_JAVA = resolve(import.meta.dirname, '../helpers/clients/Fetch.java');

const has = (cmd: string, args: string[] = ['--version'], env?: NodeJS.ProcessEnv): boolean => {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, timeout: 20_000 });
  return r.error === undefined && r.status === 0;
};

interface Client {
  name: string;
  variable: string;
  /** Why it cannot run here, or undefined when it can. */
  missing: () => string | undefined;
  /** argv after `env -u …`; `url` is the provider URL to fetch through the proxy. */
  argv: (url: string, dir: string) => string[];
  env?: (dir: string, url: string) => Record<string, string>;
  /** Seconds after which the failing run is stopped (a client that retries a TLS failure for long). */
  failFastS?: number;
}

const CLIENTS: Client[] = [
  {
    name: 'Python urllib (OpenSSL)',
    variable: 'SSL_CERT_FILE',
    missing: () => (has('python3') ? undefined : 'python3 is not installed'),
    argv: (url) => [
      'python3',
      '-c',
      `import urllib.request; print(urllib.request.urlopen("${url}", timeout=15).status)`,
    ],
  },
  {
    name: 'httplib2 (the copy bundled with the Google Cloud SDK; not installable here: no PyPI)',
    variable: 'HTTPLIB2_CA_CERTS',
    missing: () =>
      has('python3', ['-c', 'import httplib2'], { PYTHONPATH: GCLOUD_LIB })
        ? undefined
        : 'httplib2 is not installed (no PyPI here, and no Google Cloud SDK copy)',
    argv: (url) => [
      'python3',
      '-c',
      `import httplib2; print(httplib2.Http(timeout=15).request("${url}")[0].status)`,
    ],
    env: () => ({ PYTHONPATH: GCLOUD_LIB }),
  },
  {
    name: 'AWS CLI (botocore)',
    variable: 'AWS_CA_BUNDLE',
    missing: () => (has('aws') ? undefined : 'the AWS CLI is not installed'),
    argv: (url) => ['aws', '--region', 'us-east-1', '--endpoint-url', url, 'sts', 'get-caller-identity'],
    env: () => ({
      AWS_ACCESS_KEY_ID: 'AKIDAUTHSOMETEST',
      AWS_SECRET_ACCESS_KEY: 'not-a-secret',
      AWS_MAX_ATTEMPTS: '1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    }),
  },
  {
    name: 'gcloud',
    variable: 'CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE',
    missing: () => (has('gcloud') ? undefined : 'the Google Cloud SDK is not installed'),
    // --verbosity=debug: the TLS failure is logged at the first attempt (gcloud then retries for ~30 s).
    argv: (_url, dir) => [
      'gcloud',
      'projects',
      'list',
      `--access-token-file=${join(dir, 'gcloud-token')}`,
      '--verbosity=debug',
    ],
    failFastS: 8,
    env: (dir, url) => ({
      CLOUDSDK_CONFIG: join(dir, 'gcloud'),
      CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
      CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
      CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
      CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
      CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER: `${url}/`,
    }),
  },
  {
    name: 'cargo (sparse registry index)',
    variable: 'CARGO_HTTP_CAINFO',
    missing: () => (has('cargo') ? undefined : 'cargo is not installed'),
    argv: () => ['cargo', 'search', '--registry', 'authsome', 'anything'],
    env: (dir, url) => ({
      CARGO_HOME: join(dir, 'cargo'),
      CARGO_REGISTRIES_AUTHSOME_INDEX: `sparse+${url}/`,
      CARGO_NET_RETRY: '0',
    }),
  },
  {
    name: 'Java (HttpsURLConnection through the proxy)',
    variable: 'JAVA_TOOL_OPTIONS',
    missing: () => (has('java', ['-version']) ? undefined : 'java is not installed'),
    // Java reads no proxy variable: the program takes HTTPS_PROXY itself (docs/integrations.md, "Java").
    argv: (url) => ['java', '-Djdk.http.auth.tunneling.disabledSchemes=', FETCH_JAVA, url],
  },
  {
    name: 'Deno',
    variable: 'DENO_CERT',
    missing: () => (has('deno') ? undefined : 'deno is not installed'),
    argv: (url) => ['deno', 'eval', `console.log((await fetch("${url}")).status)`],
  },
  {
    name: 'Nix',
    variable: 'NIX_SSL_CERT_FILE',
    missing: () => (has('nix') ? undefined : 'nix is not installed'),
    argv: (url) => ['nix', 'store', 'ping', '--store', url],
  },
];

/** `env -u` for every trust variable except `keep`. */
const envUnset = (keep: string | undefined): string[] =>
  ALL_TRUST.filter((v) => v !== keep).flatMap((v) => ['-u', v]);

describe('every toolchain’s trust variable, read by a real client', () => {
  let up: Upstream;
  let t: TestHome;
  const outputs: CliResult[] = [];
  const run = async (args: string[], opts: { input?: string } = {}) => {
    const r = await t.run(args, opts);
    outputs.push(r);
    return r;
  };

  beforeAll(async () => {
    const ca = await makeTestCa('trust variables upstream CA');
    up = await startUpstream({ cert: await ca.issue(['api.github.com']) });
    t = new TestHome();
    writeFileSync(join(t.dir, 'upstream-ca.pem'), ca.certPem);
    writeFileSync(join(t.dir, 'gcloud-token'), 'ya29.not-a-real-token\n');
    for (const d of ['gcloud', 'cargo']) mkdirSync(join(t.dir, d));
    t.env['AUTHSOME_RESOLVE'] = `api.github.com:443=127.0.0.1:${up.httpsPort}`;
    t.env['AUTHSOME_UPSTREAM_CA'] = join(t.dir, 'upstream-ca.pem');
    expect((await run(['init', '--profile', 'me'])).code).toBe(0);
    expect((await run(['login', 'github'], { input: `${TOKEN}\n` })).code).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
    await up.close();
  });

  it('run and proxy env set every variable to the bundle, and Java’s options to the trust store', async () => {
    const before = '-Xmx64m -Djavax.net.ssl.trustStore=/elsewhere.jks';
    const r = await t.run(['proxy', 'env', '--json', '--ttl', '1m'], { env: { JAVA_TOOL_OPTIONS: before } });
    expect(r.code, r.stderr).toBe(0);
    const { env } = JSON.parse(r.stdout) as { env: Record<string, string> };
    const ca = join(t.home, 'server', 'ca');
    for (const v of CA_VARS) expect(env[v], v).toBe(join(ca, 'bundle.pem'));
    expect(env['NODE_EXTRA_CA_CERTS']).toBe(join(ca, 'roots.pem'));
    // the user's options first, ours after them (a later -D wins)
    expect(env['JAVA_TOOL_OPTIONS']).toBe(
      `${before} -Djavax.net.ssl.trustStore=${join(ca, 'truststore.p12')} -Djavax.net.ssl.trustStorePassword=authsome -Djavax.net.ssl.trustStoreType=PKCS12`,
    );
    const bundle = readFileSync(join(ca, 'bundle.pem'), 'utf8');
    expect(bundle).toContain(readFileSync(join(ca, 'ca.pem'), 'utf8').trim());
    expect(bundle.match(/BEGIN CERTIFICATE/g)!.length).toBeGreaterThan(50);
    if (has('keytool', ['-help'])) {
      const list = spawnSync('keytool', [
        '-list',
        '-storetype',
        'PKCS12',
        '-storepass',
        'authsome',
        '-keystore',
        join(ca, 'truststore.p12'),
      ]);
      expect(list.stdout.toString().match(/trustedCertEntry/g)?.length).toBe(
        bundle.match(/BEGIN CERTIFICATE/g)!.length,
      );
    }
  });

  for (const c of CLIENTS) {
    const why = c.missing();
    if (why) {
      it.skip(`${c.name} reads ${c.variable} — skipped: ${why}`, () => undefined);
      continue;
    }
    it(`${c.name} reads ${c.variable}: it alone makes the client trust the proxy; without it the client fails`, async () => {
      const path = `/${c.variable.toLowerCase()}`;
      const url = `https://api.github.com${path}`;
      const extra = Object.entries(c.env?.(t.dir, url) ?? {}).map(([k, v]) => `${k}=${v}`);
      const reached = () => up.received.filter((x) => x.url.startsWith(path));
      const before = reached().length;
      const ok = await run(['run', '--', 'env', ...envUnset(c.variable), ...extra, ...c.argv(url, t.dir)]);
      const got = reached().slice(before);
      expect(got.length, `${c.name} did not reach the upstream:\n${ok.stdout}\n${ok.stderr}`).toBeGreaterThan(
        0,
      );
      for (const x of got) {
        const auth = x.rawHeaders.filter(
          (_, i) => i % 2 === 1 && /^authorization$/i.test(x.rawHeaders[i - 1]!),
        );
        expect(auth).toEqual([`Bearer ${TOKEN}`]);
      }
      const mid = reached().length;
      const bad = await run([
        'run',
        '--',
        ...(c.failFastS ? ['timeout', String(c.failFastS)] : []),
        'env',
        ...envUnset(undefined),
        ...extra,
        ...c.argv(url, t.dir),
      ]);
      expect(reached().length, `${c.name} reached the upstream without ${c.variable}`).toBe(mid);
      expect(bad.stdout + bad.stderr).toMatch(/certif|PKIX|SSL|TLS/i);
    }, 90_000);
  }

  const grpcWhy = existsSync(GCLOUD_PYTHON)
    ? has(GCLOUD_PYTHON, ['-c', 'import grpc'])
      ? undefined
      : 'no Python with grpc (no PyPI here)'
    : 'no Python with grpc (no PyPI here, and no Google Cloud SDK copy)';
  (grpcWhy ? it.skip : it)(
    `gRPC (Python grpcio) reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH${grpcWhy ? ` — skipped: ${grpcWhy}` : ''}`,
    async () => {
      // gRPC is HTTP/2 only and the intercepting proxy speaks HTTP/1.1, so gRPC to a provider host fails
      // at ALPN whatever the trust. Direct to a loopback HTTP/2 origin whose certificate the local CA
      // signed, the variable alone decides whether the client trusts it.
      const leaf = await (
        await LeafMinter.create(await loadCa(join(t.home, 'server', 'ca')))
      ).mint('localhost', Date.now());
      const server: Http2SecureServer = createSecureServer(
        { SNICallback: (_n, cb) => cb(null, leaf.context), allowHTTP1: false },
        (req, res) => {
          res.writeHead(200, { 'content-type': 'application/grpc' });
          res.addTrailers({ 'grpc-status': '12', 'grpc-message': 'authsome-probe-reached' });
          res.end();
        },
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      const script = [
        'import grpc',
        `ch = grpc.secure_channel("localhost:${port}", grpc.ssl_channel_credentials())`,
        'try:',
        '    ch.unary_unary("/authsome.Probe/Call")(b"", timeout=10)',
        'except grpc.RpcError as e:',
        '    print("RPC", e.code(), e.details())',
      ].join('\n');
      try {
        const ok = await run([
          'run',
          '--',
          'env',
          ...envUnset('GRPC_DEFAULT_SSL_ROOTS_FILE_PATH'),
          GCLOUD_PYTHON,
          '-c',
          script,
        ]);
        expect(ok.stdout, ok.stderr).toContain('UNIMPLEMENTED authsome-probe-reached');
        const bad = await run(['run', '--', 'env', ...envUnset(undefined), GCLOUD_PYTHON, '-c', script]);
        expect(bad.stdout).not.toContain('authsome-probe-reached');
        expect(bad.stdout).toMatch(/UNAVAILABLE.*(certificate|handshake|SSL)/i);
      } finally {
        server.close();
      }
    },
    60_000,
  );

  it('no secret reaches any output', () => {
    for (const o of outputs) expect(findCanary(o.stdout + o.stderr, TOKEN)).toBeUndefined();
  });
});
