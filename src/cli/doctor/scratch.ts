import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { fail, pass, type Check } from './types.js';

/**
 * The full injection path, end to end, without touching the user's vault: the running daemon's
 * upstream leg trusts only the system roots (+ AUTHSOME_UPSTREAM_CA fixed at its start) and refuses
 * loopback, so it cannot reach an origin the doctor starts. A scratch home can: its own daemon
 * starts with AUTHSOME_RESOLVE pinning a throwaway provider's host to a loopback HTTPS origin signed
 * by a throwaway CA. A throwaway secret then travels `authsome run` → proxy → origin, and we check
 * it arrived, reached no output, and was audited. Everything is deleted afterwards.
 */
const CLI = fileURLToPath(new URL('../main.js', import.meta.url));
const HOST = 'doctor-probe.authsome.test';

function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
  input = '',
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', (e) => resolve({ code: null, out: e.message }));
    c.on('close', (code) => resolve({ code, out }));
    c.stdin.end(input);
  });
}

async function origin(
  dir: string,
): Promise<{ server: Server; port: number; caFile: string; seen: string[] }> {
  const { createCa, LeafMinter } = await import('../../ca/index.js');
  const ca = await createCa(join(dir, 'origin-ca'));
  const leaf = await (await LeafMinter.create(ca)).mint(HOST, Date.now());
  const seen: string[] = [];
  const server = createServer({ SNICallback: (_name, cb) => cb(null, leaf.context) }, (req, res) => {
    seen.push(req.headers.authorization ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    caFile: join(dir, 'origin-ca', 'ca.pem'),
    seen,
  };
}

export async function checkScratchRoundTrip(): Promise<Check> {
  const title = 'injection round trip';
  const dir = await mkdtemp(join(tmpdir(), 'authsome-doctor-'));
  const secret = `doctor-${randomBytes(16).toString('hex')}`;
  let o: Awaited<ReturnType<typeof origin>> | undefined;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AUTHSOME_HOME: join(dir, 'home'),
    AUTHSOME_DAEMON_PORT: '0',
    AUTHSOME_PROXY_PORT: '0',
    NO_COLOR: '1',
  };
  delete env['AUTHSOME_STRICT'];
  try {
    o = await origin(dir);
    env['AUTHSOME_RESOLVE'] = `${HOST}:443=127.0.0.1:${o.port}`;
    env['AUTHSOME_UPSTREAM_CA'] = o.caFile;
    const def = {
      name: 'doctor-probe',
      displayName: 'authsome doctor probe',
      docsUrl: 'https://example.com/authsome-doctor',
      hosts: [{ host: HOST }],
      fields: ['api_key'],
      inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
    };
    await writeFile(join(dir, 'provider.json'), JSON.stringify(def));
    const fetchJs = `fetch('https://${HOST}/doctor').then(async (r) => console.log(r.status, await r.text()), (e) => { console.log('error', e.cause?.code ?? e.message); process.exitCode = 1; })`;
    const steps: Array<[string, string[], string?]> = [
      ['init', ['init', '--profile', 'doctor']],
      ['provider add', ['provider', 'add', join(dir, 'provider.json')]],
      ['login', ['login', 'doctor-probe'], `${secret}\n`],
      ['run', ['run', '--', process.execPath, '-e', fetchJs]],
    ];
    let output = '';
    for (const [what, args, input] of steps) {
      const r = await cli(args, env, input);
      output += r.out;
      if (r.code !== 0)
        return fail(
          'scratch',
          title,
          `the scratch home's \`authsome ${what}\` failed (exit ${r.code}): ${r.out.trim().split('\n').slice(-2).join(' ').split(secret).join('[secret]')}`,
          'run `authsome doctor` again; if it persists, report a bug with this output',
          'ERR_INTERNAL',
        );
    }
    if (output.includes(secret))
      return fail(
        'scratch',
        title,
        'the throwaway secret appeared in CLI output',
        'report a bug: this must never happen',
        'ERR_INTERNAL',
      );
    if (!o.seen.includes(`Bearer ${secret}`))
      return fail(
        'scratch',
        title,
        `the origin did not receive the injected header (got ${o.seen.length} request(s))`,
        'report a bug with `authsome doctor --json`',
        'ERR_INTERNAL',
      );
    const audit = readFileSync(join(dir, 'home', 'audit.log'), 'utf8');
    if (!audit.includes('"event":"proxy.inject"') || audit.includes(secret))
      return fail(
        'scratch',
        title,
        'the scratch audit log lacks the proxy.inject record (or holds the secret)',
        'report a bug',
        'ERR_AUDIT_UNAVAILABLE',
      );
    return pass(
      'scratch',
      title,
      'scratch home: init → provider add → login → run node fetch → proxy injected a throwaway secret into a loopback origin; audited; never printed',
    );
  } catch (e) {
    return fail(
      'scratch',
      title,
      `could not set up the scratch round trip: ${(e as Error).message}`,
      'check that the temp directory is writable',
      'ERR_INTERNAL',
    );
  } finally {
    await cli(['daemon', 'stop'], env).catch(() => undefined);
    if (o) {
      o.server.closeAllConnections();
      await new Promise((r) => o!.server.close(r));
    }
    await rm(dir, { recursive: true, force: true });
  }
}
