import { createHash, randomBytes } from 'node:crypto';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../errors.js';
import { assertPrivateKeyFile, createCa } from './root.js';

/**
 * `authsome ca rotate`: a new local CA, in two steps so that nothing that trusts the old one breaks.
 *
 * 1. start: the new CA is made beside the current one (next.pem, next.key 0600) and rotation.json says
 *    when the switch happens. roots.pem, bundle.pem and truststore.p12 now hold both roots, while leaves
 *    are still signed by the current CA: a process that loaded the old trust before the rotation (Node's
 *    NODE_EXTRA_CA_CERTS, Java, a long-lived Python context) keeps working, and every process started
 *    from now on trusts both.
 * 2. finish (at the end of the overlap, or `ca rotate --finish`): next.* become ca.*, the old key is
 *    gone, the trust files hold the new root only, and the daemon mints every leaf from the new CA.
 *
 * The default overlap is the session lifetime limit: every session token minted before the rotation
 * has expired when the old CA stops signing, so no `authsome run` child sees the switch.
 */
export interface Rotation {
  readonly startedAt: string;
  /** When the new CA starts signing and the old root is dropped. */
  readonly switchAt: string;
  /** SHA-256 fingerprint (hex) of next.pem. */
  readonly next: string;
}

export function rotationFiles(caDir: string): { pem: string; key: string; state: string } {
  return { pem: join(caDir, 'next.pem'), key: join(caDir, 'next.key'), state: join(caDir, 'rotation.json') };
}

export function fingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

export async function readRotation(caDir: string): Promise<Rotation | undefined> {
  const f = rotationFiles(caDir);
  let text: string;
  try {
    text = await readFile(f.state, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const r = JSON.parse(text) as Partial<Rotation>;
  if (typeof r.startedAt !== 'string' || typeof r.switchAt !== 'string' || typeof r.next !== 'string')
    throw new AppError(
      'ERR_CA_UNAVAILABLE',
      `${f.state} is damaged`,
      'finish the rotation with `authsome ca rotate --finish`, or remove next.pem, next.key and rotation.json to abandon it',
    );
  return { startedAt: r.startedAt, switchAt: r.switchAt, next: r.next };
}

/** Makes next.pem/next.key and rotation.json; refuses while a rotation is in progress. */
export async function startRotation(
  caDir: string,
  overlapMs: number,
  now: number = Date.now(),
): Promise<Rotation> {
  const f = rotationFiles(caDir);
  const current = await readRotation(caDir);
  if (current || existsSync(f.pem) || existsSync(f.key))
    throw new AppError(
      'ERR_INPUT_INVALID',
      `a CA rotation is already in progress${current ? ` (the new CA takes over at ${current.switchAt})` : ''}`,
      'finish it now with `authsome ca rotate --finish`, then rotate again if you need another CA',
    );
  // createCa writes ca.key (0600, exclusive) and ca.pem; made in a private scratch directory beside
  // the current CA (same file system), then renamed into place: a crash leaves only the scratch dir.
  const scratch = join(caDir, `.next-${randomBytes(4).toString('hex')}`);
  try {
    const made = await createCa(scratch, new Date(now));
    await rename(join(scratch, 'ca.key'), f.key);
    await rename(join(scratch, 'ca.pem'), f.pem);
    const rotation: Rotation = {
      startedAt: new Date(now).toISOString(),
      switchAt: new Date(now + overlapMs).toISOString(),
      next: fingerprint(made.certPem),
    };
    const tmp = `${f.state}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(rotation, null, 2) + '\n', { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, f.state);
    return rotation;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * next.* become ca.*; the old key is replaced (gone). Also completes a finish cut short by a crash
 * between the two renames (ca.key already the new key, next.pem still beside it).
 */
export async function finishRotation(caDir: string): Promise<{ fingerprint: string } | undefined> {
  const f = rotationFiles(caDir);
  const caKey = join(caDir, 'ca.key');
  const caPem = join(caDir, 'ca.pem');
  if (!existsSync(f.pem)) {
    await rm(f.state, { force: true });
    return undefined;
  }
  const nextPem = await readFile(f.pem, 'utf8');
  const cert = new X509Certificate(nextPem);
  const keyFile = existsSync(f.key) ? f.key : caKey;
  await assertPrivateKeyFile(keyFile);
  if (!cert.checkPrivateKey(createPrivateKey(await readFile(keyFile))))
    throw new AppError(
      'ERR_CA_UNAVAILABLE',
      `${f.pem} does not belong to ${keyFile}: the rotation cannot finish`,
      'remove next.pem, next.key and rotation.json to abandon it (the current CA stays), then `authsome ca rotate` again',
    );
  if (keyFile === f.key) await rename(f.key, caKey);
  await rename(f.pem, caPem);
  await rm(f.state, { force: true });
  return { fingerprint: fingerprint(nextPem) };
}

/** A rotation whose switch time has come (the daemon finishes it at start, and by a timer). */
export async function rotationDue(caDir: string, now: number = Date.now()): Promise<Rotation | undefined> {
  const r = await readRotation(caDir);
  return r && Date.parse(r.switchAt) <= now ? r : undefined;
}
