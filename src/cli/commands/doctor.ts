import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Argv } from 'yargs';
import { isAppError } from '../../errors.js';
import { DaemonClient } from '../../daemon/client.js';
import { runningDaemon } from '../../daemon/lifecycle.js';
import { readIdentityKey } from '../../identity/index.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit, type Output } from '../output.js';
import { mintSessionEnv } from '../session-env.js';
import { checkCaFiles, checkModes, checkNode, checkStoreOffline } from '../doctor/local.js';
import {
  checkAuthRequired,
  checkClock,
  checkInterception,
  checkStatus,
  checkPolicy,
  repairCa,
} from '../doctor/daemon-checks.js';
import { checkTools } from '../doctor/tools.js';
import { checkScratchRoundTrip } from '../doctor/scratch.js';
import { checkAudit } from '../doctor/audit-check.js';
import { exitCodeOf, fail, pass, skip, type Check, type Status } from '../doctor/types.js';

interface Run {
  checks: Check[];
  /** Set when ca.pem was replaced but the daemon's CA matches ca.key. */
  recoverableCa?: string;
}

/** A provider host for the probe and a different provider for the session's allow list. */
async function probeTargets(client: DaemonClient): Promise<{ host: string; allow: string }> {
  const { providers } = await client.call<{ providers: Array<{ name: string; hosts: string[] }> }>(
    'GET',
    '/v1/providers',
  );
  const plain = providers.filter((p) => p.hosts.some((h) => /^[a-z0-9.-]+$/.test(h)));
  const probe = plain.find((p) => p.name === 'openai') ?? plain[0];
  const other =
    providers.find((p) => p.name === 'github' && p !== probe) ?? providers.find((p) => p !== probe);
  if (!probe || !other) throw new TypeError('the doctor needs two providers with plain host names');
  return { host: probe.hosts.find((h) => /^[a-z0-9.-]+$/.test(h))!, allow: other.name };
}

async function diagnose(ctx: Ctx): Promise<Run> {
  const p = ctx.paths;
  const checks: Check[] = [checkNode()];
  if (!existsSync(p.clientConfig)) {
    checks.push(
      fail(
        'home',
        'home',
        `no authsome home at ${p.home}`,
        'authsome init   (or pass --home / set AUTHSOME_HOME)',
        'ERR_HOME_NOT_INITIALISED',
      ),
    );
    return { checks };
  }
  checks.push(...checkModes(p));
  const ca = checkCaFiles(p);
  checks.push(ca.check);
  const info = await runningDaemon(p);
  if (!info) {
    checks.push(
      fail(
        'daemon',
        'daemon',
        'not running (doctor does not start it)',
        'authsome daemon start',
        'ERR_DAEMON_UNREACHABLE',
      ),
      checkStoreOffline(p),
      await checkAudit(ctx, p),
      skip('proxy', 'proxy and tools', 'need the running daemon'),
    );
    return { checks };
  }
  const handle = await ctx.profile();
  const keyPath = p.identityKey(handle);
  if (!existsSync(keyPath)) {
    checks.push(
      fail(
        'profile',
        'profile key',
        `no key for profile "${handle}" at ${keyPath}`,
        'authsome profile list   (then --profile NAME or `authsome profile use NAME`)',
        'ERR_PROFILE_NOT_FOUND',
      ),
    );
    return { checks };
  }
  let client: DaemonClient;
  try {
    client = new DaemonClient(info, handle, await readIdentityKey(keyPath));
  } catch (e) {
    if (!isAppError(e)) throw e;
    checks.push(
      skip('daemon', 'daemon', `cannot sign requests as "${handle}" until its key is fixed: ${e.message}`),
    );
    return { checks };
  }
  const status = await checkStatus(client);
  checks.push(...status);
  if (status.some((c) => c.id === 'daemon' && c.status === 'fail')) return { checks };
  checks.push(await checkClock(info, ca.cert));
  checks.push(await checkPolicy(client));
  const audit = await checkAudit(ctx, p);
  checks.push(audit);
  if (audit.status === 'fail') {
    checks.push(
      skip(
        'proxy',
        'proxy and tools',
        'not run until the audit log is repaired (the daemon may refuse new sessions)',
      ),
    );
    return { checks };
  }
  const { host, allow } = await probeTargets(client);
  // The session may use only a connection that does not exist, of another provider than the probe host's, and
  // every probe names that connection: nothing can be injected, and the proxy answers (403) without going upstream.
  const probeCtx = Object.assign(Object.create(ctx) as Ctx, { client: async () => client });
  const connection = `doctor-probe-${randomBytes(6).toString('hex')}`;
  let s;
  try {
    s = await mintSessionEnv(probeCtx, {
      allow: `${allow}:${connection}`,
      ttl: '1m',
      label: 'authsome doctor',
      allowMissingConnection: true,
      // Its refusals are audited as doctor.probe, out of the default `authsome audit` view.
      probe: true,
    });
  } catch (e) {
    // A refused mint is a finding like any other: the report stays whole (and --json stays one object).
    if (!isAppError(e)) throw e;
    checks.push(await checkAuthRequired(info, host));
    checks.push(fail('proxy', 'proxy session', e.message, e.hint ?? 'authsome daemon status', e.code));
    return { checks };
  }
  try {
    const proxy = new URL(s.env['HTTPS_PROXY']!);
    const token = decodeURIComponent(proxy.password);
    const auth = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${token}`).toString('base64')}`;
    checks.push(await checkAuthRequired(info, host, auth));
    const ic = await checkInterception(p, info, { host, connection }, auth, ca);
    checks.push(ic.check);
    if (ic.recoverable && ca.check.status === 'fail')
      ca.check.fix =
        'authsome doctor --repair-ca   (ca.pem was replaced; the running daemon still has the certificate of ca.key)';
    checks.push(
      ...(await checkTools(`https://${host}/authsome-doctor`, connection, s.env, [
        token,
        encodeURIComponent(token),
      ])),
    );
    return { checks, ...(ic.recoverable ? { recoverableCa: ic.recoverable } : {}) };
  } finally {
    await client.call('DELETE', `/v1/sessions/${s.id}`).catch(() => undefined);
  }
}

const MARK: Record<Status, [string, string]> = {
  pass: ['✓', '32'],
  fail: ['✗', '31'],
  warn: ['!', '33'],
  skip: ['-', '2'],
};

export function renderChecks(out: Output, home: string, checks: readonly Check[]): string {
  const paint = (s: string, c: string) => (out.color ? `\x1b[${c}m${s}\x1b[0m` : s);
  const width = Math.max(...checks.map((c) => c.title.length));
  const lines = [`authsome doctor: ${home}`];
  for (const c of checks) {
    const [m, color] = MARK[c.status];
    lines.push(
      `  ${paint(m, color)} ${c.title.padEnd(width)}  ${c.status === 'skip' ? `skipped: ${c.detail}` : c.detail}`,
    );
    if (c.fix && c.status !== 'pass') lines.push(`    ${' '.repeat(width)}  fix: ${c.fix}`);
  }
  const n = (s: Status) => checks.filter((c) => c.status === s).length;
  lines.push('', `${n('pass')} passed, ${n('fail')} failed, ${n('warn')} warnings, ${n('skip')} skipped`);
  return lines.join('\n');
}

export function doctorCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'doctor',
    'check the daemon, store, key file modes, the CA, and a round trip through the proxy with curl, Node, Python and git; every failure names its fix',
    (a) =>
      a
        .option('quick', {
          type: 'boolean',
          describe: 'skip the injection round trip through a scratch home (a few seconds)',
        })
        .option('repair-ca', {
          type: 'boolean',
          describe: 'rewrite a replaced ca.pem from the running daemon (only if it matches ca.key)',
        }),
    async (argv) => {
      const ctx = new Ctx(argv);
      const quick = (argv as { quick?: boolean }).quick === true;
      // Independent of the user's home, so it runs alongside the other checks.
      if (!quick && !ctx.out.json && process.stderr.isTTY)
        process.stderr.write('checking… (the injection round trip takes a few seconds; --quick skips it)\n');
      const scratch = quick
        ? Promise.resolve(skip('scratch', 'injection round trip', '--quick'))
        : checkScratchRoundTrip();
      let run = await diagnose(ctx);
      if ((argv as { repairCa?: boolean }).repairCa && run.recoverableCa) {
        await repairCa(ctx.paths, run.recoverableCa);
        const again = await diagnose(ctx);
        run = {
          checks: [
            pass('repair-ca', 'repair CA', `rewrote ${ctx.paths.caCert} from the running daemon`),
            ...again.checks,
          ],
        };
      }
      run.checks.push(await scratch);
      const ok = run.checks.every((c) => c.status !== 'fail');
      emit(ctx.out, { ok, home: ctx.paths.home, checks: run.checks }, () =>
        renderChecks(ctx.out, ctx.paths.home, run.checks),
      );
      process.exitCode = exitCodeOf(run.checks);
    },
  );
}
