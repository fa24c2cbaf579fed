import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { VERSION } from '../version.js';
import { isAppError } from '../errors.js';
import type { App } from '../app.js';
import type { UiAudit } from './ui-audit.js';

/**
 * `authsome doctor`'s checks that the daemon can run on itself, for the dashboard (SPEC section 11).
 * Left to the CLI (they test the CLI's side, or make traffic): the CLI's Node.js, client config and
 * profile key files, the clock skew between CLI and daemon, the proxy's 407 and TLS interception
 * probes with a minted session, the tools (curl, Node, Python, git) under `run`, the scratch-home
 * injection round trip and --repair-ca.
 */

export type DoctorStatus = 'pass' | 'fail' | 'warn' | 'skip';
export interface DoctorCheck {
  id: string;
  title: string;
  status: DoctorStatus;
  detail: string;
  fix?: string;
}

const DAY_MS = 86_400_000;
const RESTART = 'authsome daemon stop && authsome daemon start';

const check = (
  id: string,
  title: string,
  status: DoctorStatus,
  detail: string,
  fix?: string,
): DoctorCheck => ({
  id,
  title,
  status,
  detail,
  ...(fix !== undefined ? { fix } : {}),
});

export async function daemonChecks(
  app: App,
  audit: UiAudit,
  profile: string,
  owner: boolean,
): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  out.push(
    check(
      'daemon',
      'daemon',
      'pass',
      `authsome ${VERSION}, pid ${process.pid}, Node.js ${process.versions.node}; control 127.0.0.1:${app.controlPort()}, proxy 127.0.0.1:${app.proxyPort()}; up since ${app.startedAt.toISOString()}`,
    ),
  );
  if (major < 20) out[0]!.status = 'warn';
  out.push(await storeCheck(app));
  out.push(...(await modeChecks(app)));
  out.push(await caCheck(app));
  out.push(await auditCheck(audit));
  out.push(await policyCheck(app, profile));
  out.push(await approvalsCheck(app, profile, owner));
  return out;
}

async function storeCheck(app: App): Promise<DoctorCheck> {
  try {
    const n = (await app.registry.list()).length;
    return check(
      'store',
      'store and master key',
      'pass',
      `the store opens with this master key; ${n} profile(s)`,
    );
  } catch (e) {
    return check(
      'store',
      'store and master key',
      'fail',
      `reading the store failed: ${isAppError(e) ? `${e.message} [${e.code}]` : 'internal error'}`,
      RESTART,
    );
  }
}

/** SPEC section 3: the server's files are private to the user (the CLI's own key files are doctor's). */
async function modeChecks(app: App): Promise<DoctorCheck[]> {
  const p = app.settings.paths;
  const items: Array<[string, number]> = [
    [p.home, 0o700],
    [p.serverDir, 0o700],
    [p.kvStore, 0o700],
    [p.caDir, 0o700],
    [p.masterKey, 0o600],
    [p.caKey, 0o600],
    [p.auditLog, 0o600],
  ];
  const out: DoctorCheck[] = [];
  let checked = 0;
  for (const [path, want] of items) {
    const st = await stat(path).catch(() => undefined);
    if (!st) continue;
    checked++;
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0)
      out.push(
        check(
          `mode:${path}`,
          'file modes',
          'fail',
          `${path} is accessible by group or others (mode ${mode.toString(8)}, want ${want.toString(8)})`,
          `chmod ${want.toString(8)} ${path}`,
        ),
      );
  }
  if (out.length === 0)
    out.push(
      check(
        'modes',
        'file modes',
        'pass',
        `${checked} server files and directories are private (0600 / 0700)`,
      ),
    );
  return out;
}

async function caCheck(app: App): Promise<DoctorCheck> {
  const p = app.settings.paths;
  const title = 'local CA';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(await readFile(p.caCert));
  } catch {
    return check(
      'ca',
      title,
      'fail',
      `cannot read a certificate at ${p.caCert}`,
      `restore ${p.caCert} from a backup`,
    );
  }
  const matches = await readFile(p.caKey).then(
    (k) => cert.checkPrivateKey(createPrivateKey(k)),
    () => undefined,
  );
  const until = Date.parse(cert.validTo);
  const subject = cert.subject.replace(/\n/g, ', ');
  if (matches === false)
    return check(
      'ca',
      title,
      'fail',
      `${p.caCert} does not belong to the CA key`,
      'authsome doctor --repair-ca',
    );
  if (until <= Date.now())
    return check(
      'ca',
      title,
      'fail',
      `the CA expired on ${cert.validTo}`,
      'see docs/troubleshooting.md, "CA expired"',
    );
  if (until - Date.now() < 30 * DAY_MS)
    return check(
      'ca',
      title,
      'warn',
      `the CA expires on ${cert.validTo}, in less than 30 days`,
      'make a new CA before then',
    );
  return check(
    'ca',
    title,
    'pass',
    `${subject}; valid until ${cert.validTo}${matches === undefined ? ' (its key is kept elsewhere)' : '; matches its key'}`,
  );
}

async function auditCheck(audit: UiAudit): Promise<DoctorCheck> {
  try {
    const v = await audit.verify();
    return v.ok
      ? check(
          'audit',
          'audit log',
          'pass',
          `${v.lines} lines, chain intact, holds the daemon's last record (seq ${v.head})`,
        )
      : check(
          'audit',
          'audit log',
          'fail',
          `broken at line ${v.firstBroken?.line}: ${v.firstBroken?.reason}`,
          'authsome audit verify   (names the line; restore the log from a backup, or keep it as evidence)',
        );
  } catch (e) {
    return check(
      'audit',
      'audit log',
      'fail',
      isAppError(e) ? e.message : 'cannot read the audit log',
      RESTART,
    );
  }
}

async function policyCheck(app: App, profile: string): Promise<DoctorCheck> {
  try {
    const s = await app.policies.stored(profile);
    if (!s)
      return check(
        'policy',
        'policy',
        'pass',
        `profile "${profile}" has no policy: every request it may inject is allowed`,
      );
    const rules = s.policy.rules;
    const count = (a: string) => rules.filter((x) => x.action === a).length;
    return check(
      'policy',
      'policy',
      'pass',
      `profile "${profile}": default ${s.policy.default}, ${rules.length} rule(s) (${count('allow')} allow, ${count('deny')} deny, ${count('approve')} approve); set ${s.setAt} by ${s.setBy}`,
    );
  } catch (e) {
    return check(
      'policy',
      'policy',
      'fail',
      isAppError(e) ? e.message : 'cannot read the policy',
      `authsome policy set ${profile} FILE   (or authsome policy clear ${profile})`,
    );
  }
}

async function approvalsCheck(app: App, profile: string, owner: boolean): Promise<DoctorCheck> {
  const all = await app.policies.approvals.list();
  const held = owner ? all.length : all.filter((h) => h.profile === profile).length;
  const max = app.settings.policy.maxHeld;
  return check(
    'approvals',
    'held requests',
    all.length >= max ? 'warn' : 'pass',
    `${held} request(s)${owner ? '' : ` of profile "${profile}"`} wait for approval (at most ${max} can; timeout ${app.settings.policy.approvalTimeoutS} s)`,
    ...(all.length >= max ? ['answer them: authsome approvals'] : []),
  );
}
