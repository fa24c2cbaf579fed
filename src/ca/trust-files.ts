import { existsSync, statSync } from 'node:fs';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { buildTrustBundle, pemBlocks } from './trust-bundle.js';
import { trustStorePkcs12 } from './pkcs12.js';

/**
 * The files that make clients trust the local CA, all public and mode 0644, in server/ca/:
 *
 * - roots.pem: the local roots a client must trust: the CA that signs leaves (ca.pem), and during a
 *   rotation's overlap the one that takes over at its end (next.pem, rotate.ts). NODE_EXTRA_CA_CERTS
 *   and `authsome ca path` name this file, so one path covers both roots while they overlap.
 * - bundle.pem: the system roots plus roots.pem, for tools that take one bundle (SSL_CERT_FILE…).
 * - truststore.p12: the same certificates as a PKCS#12 trust store, for Java.
 *
 * They are derived: rebuilt whenever roots.pem would change (a new or rotated CA) or one is missing.
 */
export interface TrustFiles {
  readonly roots: string;
  readonly bundle: string;
  readonly javaStore: string;
}

export function trustFilePaths(caDir: string): TrustFiles & { cert: string; next: string } {
  return {
    cert: join(caDir, 'ca.pem'),
    next: join(caDir, 'next.pem'),
    roots: join(caDir, 'roots.pem'),
    bundle: join(caDir, 'bundle.pem'),
    javaStore: join(caDir, 'truststore.p12'),
  };
}

/** Not a secret: the store holds public certificates only and has no MAC (see pkcs12.ts). */
export const JAVA_TRUST_STORE_PASSWORD = 'authsome';

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode: 0o644 });
  await chmod(tmp, 0o644);
  await rename(tmp, path);
}

const newer = (a: string, b: string): boolean => statSync(a).mtimeMs >= statSync(b).mtimeMs;

/** What roots.pem must hold: ca.pem's certificate, then next.pem's while a rotation overlaps. */
export async function localRootsPem(caDir: string): Promise<string> {
  const p = trustFilePaths(caDir);
  const current = await readFile(p.cert, 'utf8');
  const next = await readIfExists(p.next);
  return `${[...pemBlocks(current), ...pemBlocks(next ?? '')].join('\n')}\n`;
}

/** Brings roots.pem, bundle.pem and truststore.p12 up to date with ca.pem (and next.pem). */
export async function ensureTrustFiles(caDir: string, systemBundle?: string): Promise<TrustFiles> {
  const p = trustFilePaths(caDir);
  const roots = await localRootsPem(caDir);
  if ((await readIfExists(p.roots)) !== roots) await writeAtomic(p.roots, roots);
  if (!existsSync(p.bundle) || !newer(p.bundle, p.roots))
    await buildTrustBundle(roots, p.bundle, ...(systemBundle ? [systemBundle] : []));
  if (!existsSync(p.javaStore) || !newer(p.javaStore, p.bundle)) {
    const blocks = pemBlocks(await readFile(p.bundle, 'utf8'));
    const local = new Set(pemBlocks(roots).map((b) => b.replace(/\s+/g, '')));
    let n = 0;
    const certs = blocks.map((b) => ({
      der: Buffer.from(b.replace(/-----[^-]+-----|\s+/g, ''), 'base64'),
      alias: local.has(b.replace(/\s+/g, '')) ? `authsome-local-ca-${n++}` : `system-root-${n++}`,
    }));
    await writeAtomic(p.javaStore, trustStorePkcs12(certs));
  }
  return { roots: p.roots, bundle: p.bundle, javaStore: p.javaStore };
}
