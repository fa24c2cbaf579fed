import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHome } from '../helpers/cli.js';
import { pgUrl } from '../helpers/pg.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { freshDatabase, header, TeamNode, writeProvider, type TestDatabase } from '../helpers/team.js';

/**
 * SPEC section 10, remote callers: a node started with --listen serves its proxy and control API on that
 * address over TLS with a certificate of the team CA. A person's own CLI home (a profile key, no daemon)
 * reaches a node with --daemon https://…; `proxy env` and `run` give an https:// proxy URL and a bundle
 * that trusts the node, and curl, Python requests and Node's fetch work through it. The listen addresses
 * are loopback aliases (127.0.0.2, 127.0.0.3): no traffic leaves the machine.
 */
const url = pgUrl();
const HOST = 'api.acme.test';
const BOB_SECRET = 'sk-bob-remote-5c1e2f';

function hasPythonRequests(): boolean {
  return spawnSync('python3', ['-c', 'import requests'], { stdio: 'ignore' }).status === 0;
}

/** Runs a command with an environment, collecting its output. */
function exec(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe.skipIf(url === undefined)(
  'team mode: remote callers over TLS (--listen, --daemon https://…)',
  () => {
    let db: TestDatabase;
    let up: Upstream;
    let a: TeamNode;
    let b: TeamNode;
    let bob: TestHome;
    let caFile: string;
    let daemonB: string;

    beforeAll(async () => {
      db = await freshDatabase(url!);
      const ca = await makeTestCa('team remote upstream CA');
      up = await startUpstream({ cert: await ca.issue([HOST]) });
      a = new TeamNode('a');
      const upstreamCa = join(a.t.dir, 'upstream-ca.pem');
      writeFileSync(upstreamCa, ca.certPem);
      const env = {
        AUTHSOME_RESOLVE: `${HOST}:443=127.0.0.1:${up.httpsPort}`,
        AUTHSOME_UPSTREAM_CA: upstreamCa,
      };
      Object.assign(a.t.env, env);
      await a.ok(['init', '--store', db.url, '--node', 'a']);
      await a.ok(['provider', 'add', writeProvider(a.t.dir, 'acme', HOST)]);
      await a.ok(['daemon', 'stop']);
      await a.ok(['daemon', 'start', '--listen', '127.0.0.2']);
      b = new TeamNode('b', env);
      await b.ok(['init', '--join', db.url, '--master-key', a.masterKeyFile, '--node', 'b']);
      await b.ok(['daemon', 'start', '--listen', '127.0.0.3']);
      // The owner registers bob; bob keeps only his key and the team's CA certificate in his own home.
      await a.ok(['profile', 'create', 'bob']);
      bob = new TestHome();
      mkdirSync(join(bob.home, 'client', 'identities'), { recursive: true, mode: 0o700 });
      copyFileSync(
        join(a.home, 'client', 'identities', 'bob.key'),
        join(bob.home, 'client', 'identities', 'bob.key'),
      );
      writeFileSync(
        join(bob.home, 'client', 'config.json'),
        JSON.stringify({ activeProfile: 'bob', owner: 'default' }),
      );
      caFile = join(bob.dir, 'team-ca.pem');
      writeFileSync(caFile, a.caPem);
      const l = b.info().listen!;
      daemonB = `https://127.0.0.3:${l.controlPort}`;
      bob.env['AUTHSOME_DAEMON'] = daemonB;
      bob.env['AUTHSOME_DAEMON_CA'] = caFile;
    }, 120_000);

    afterAll(async () => {
      await bob?.cleanup();
      await b?.cleanup();
      await a?.cleanup();
      await up?.close();
      await db?.drop();
    });

    it('daemon.json names the TLS listeners on the given address; the remote control port speaks TLS only', async () => {
      const l = b.info().listen!;
      expect(l.host).toBe('127.0.0.3');
      const plain = await new Promise<string>((resolve) => {
        const req = httpRequest(
          { host: '127.0.0.3', port: l.controlPort, path: '/v1/status', timeout: 5000 },
          (res) => resolve(`answered ${res.statusCode}`),
        );
        req.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end();
      });
      expect(plain).toMatch(/^error/);
    });

    it("a person's own CLI home logs in through node B over https (PoP signed for the https URL), with no local daemon", async () => {
      const r = await bob.run(['login', 'acme', '--connection', 'main'], { input: `${BOB_SECRET}\n` });
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(join(bob.home, 'server'))).toBe(false); // nothing of a daemon in bob's home
      const list = await bob.json<{ connections: Array<{ connection: string }> }>(['connection', 'list']);
      expect(list.connections.map((c) => c.connection)).toEqual(['main']);
      // A wrong CA for the node is refused before anything is sent.
      const other = join(bob.dir, 'other-ca.pem');
      writeFileSync(other, (await makeTestCa('not the team CA')).certPem);
      const bad = await bob.run(['connection', 'list', '--daemon-ca', other]);
      expect(bad.code).toBe(10);
      expect(bad.stderr).toContain('ERR_DAEMON_UNREACHABLE');
    });

    it('proxy env gives an https:// proxy URL on the node and a bundle that trusts it; curl and Python requests inject through it', async () => {
      const out = await bob.json<{ env: Record<string, string> }>(['proxy', 'env']);
      const proxy = new URL(out.env['HTTPS_PROXY']!);
      expect(proxy.protocol).toBe('https:');
      expect(proxy.hostname).toBe('127.0.0.3');
      expect(Number(proxy.port)).toBe(b.info().listen!.proxyPort);
      const bundle = out.env['CURL_CA_BUNDLE']!;
      expect(readFileSync(bundle, 'utf8')).toContain(a.caPem.trim().split('\n')[1]!);
      const env = { ...process.env, ...out.env };
      // curl takes the proxy's CA only from --proxy-cacert (docs/team.md).
      const seen = up.received.length;
      const curl = await exec('curl', ['-sS', '--proxy-cacert', bundle, `https://${HOST}/v1/me`], env);
      expect(curl.code, curl.err).toBe(0);
      expect(up.received.length).toBe(seen + 1);
      expect(header(up.received.at(-1)!.rawHeaders, 'authorization')).toBe(`Bearer ${BOB_SECRET}`);
      if (hasPythonRequests()) {
        const py = await exec(
          'python3',
          ['-c', `import requests; r = requests.get('https://${HOST}/v1/me'); print(r.status_code)`],
          env,
        );
        expect(py.code, py.err).toBe(0);
        expect(py.out.trim()).toBe('200');
        expect(header(up.received.at(-1)!.rawHeaders, 'authorization')).toBe(`Bearer ${BOB_SECRET}`);
      }
    });

    it("`authsome run` against node A: Node's fetch goes through the https proxy URL (run's preload)", async () => {
      const l = a.info().listen!;
      const script = `fetch('https://${HOST}/v1/me').then(r => console.log('status', r.status), e => { console.error(e); process.exit(3); })`;
      const r = await bob.run([
        '--daemon',
        `https://127.0.0.2:${l.controlPort}`,
        'run',
        '--',
        process.execPath,
        '-e',
        script,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('status 200');
      expect(header(up.received.at(-1)!.rawHeaders, 'authorization')).toBe(`Bearer ${BOB_SECRET}`);
    });

    it('the remote control API refuses a Host other than the name its certificate carries', async () => {
      const l = b.info().listen!;
      const { request } = await import('node:https');
      const { checkServerIdentity } = await import('node:tls');
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.3',
            port: l.controlPort,
            path: '/v1/status',
            ca: a.caPem,
            // The certificate is checked for the address dialled; only the Host header lies.
            checkServerIdentity: (_host: string, cert: PeerCertificate) =>
              checkServerIdentity('127.0.0.3', cert),
            headers: { host: `evil.test:${l.controlPort}` },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(403);
    });
  },
);
