import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes, type webcrypto } from 'node:crypto';
import { AppError } from '../errors.js';
import { EC_KEY, EC_SIGN, pemBody, pkcs8Pem, randomSerial, subtle, x509 } from './x509.js';
import type { LocalCa } from './types.js';

const TEN_YEARS_MS = 10 * 365.25 * 24 * 3600 * 1000;
// `init` creates the CA only in a new home (an initialised one refuses): say what works in both.
const INIT_HINT =
  'restore server/ca/ca.pem and ca.key from a backup (`authsome doctor` shows what is wrong); in a home that was never initialised, run `authsome init`';

export function caFiles(dir: string): { cert: string; key: string } {
  return { cert: join(dir, 'ca.pem'), key: join(dir, 'ca.key') };
}

async function writeDurable(path: string, data: string, mode: number, flag: 'wx' | 'w'): Promise<void> {
  const fh = await open(path, flag, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  // open() honours the umask; the mode is part of the contract, so set it exactly.
  await chmod(path, mode);
}

/** A new ECDSA P-256 root, as PEM (not written anywhere). pathLen 0: it signs leaves only. */
export async function generateCaPem(now: Date = new Date()): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const id = randomBytes(4).toString('hex');
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=authsome local CA ${id}, O=authsome`,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + TEN_YEARS_MS),
    signingAlgorithm: EC_SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = pkcs8Pem(await subtle.exportKey('pkcs8', keys.privateKey));
  return { certPem: cert.toString('pem') + '\n', keyPem };
}

/**
 * A new root written to dir. The key is written first with 'wx', so an existing CA is never
 * overwritten (EEXIST surfaces as ERR_HOME_EXISTS).
 */
export async function createCa(dir: string, now: Date = new Date()): Promise<LocalCa> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const { certPem, keyPem } = await generateCaPem(now);
  const files = caFiles(dir);
  try {
    await writeDurable(files.key, keyPem, 0o600, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AppError(
        'ERR_HOME_EXISTS',
        `a CA key already exists in ${dir}`,
        'keep it, or remove the directory to start over',
      );
    }
    throw e;
  }
  await writeDurable(files.cert, certPem, 0o644, 'w');
  return { certPem, cert: new x509.X509Certificate(certPem), key: await importSigningKey(keyPem) };
}

async function importSigningKey(keyPem: string): Promise<webcrypto.CryptoKey> {
  return subtle.importKey('pkcs8', pemBody(keyPem, 'PRIVATE KEY'), EC_KEY, false, ['sign']);
}

/** A CA key file (ca.key, next.key) must be private to its owner (SPEC section 4). */
export async function assertPrivateKeyFile(path: string): Promise<void> {
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new AppError(
      'ERR_HOME_PERMISSIONS',
      `the CA key ${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)})`,
      `chmod 600 ${path}`,
    );
  }
}

/** Loads server/ca/; refuses a key readable by group or others (SPEC section 4). */
export async function loadCa(dir: string): Promise<LocalCa> {
  const files = caFiles(dir);
  let keyPem: string;
  let certPem: string;
  try {
    await assertPrivateKeyFile(files.key);
    [keyPem, certPem] = await Promise.all([readFile(files.key, 'utf8'), readFile(files.cert, 'utf8')]);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AppError('ERR_CA_UNAVAILABLE', `the local CA is missing in ${dir}`, INIT_HINT);
    }
    throw e;
  }
  return caFromPem(certPem, keyPem, `in ${dir}`, INIT_HINT);
}

/** The CA from its PEMs, checked to be a pair; `where` and `hint` make the error's message. */
export async function caFromPem(
  certPem: string,
  keyPem: string,
  where: string,
  hint: string,
): Promise<LocalCa> {
  try {
    const cert = new x509.X509Certificate(certPem);
    const key = await importSigningKey(keyPem);
    // The pair must match, or every leaf would fail verification far from the cause.
    const probe = new Uint8Array(randomBytes(32));
    const sig = await subtle.sign(EC_SIGN, key, probe);
    if (!(await subtle.verify(EC_SIGN, await cert.publicKey.export(EC_KEY, ['verify']), sig, probe))) {
      throw new Error('the CA key does not match ca.pem');
    }
    return { certPem, cert, key };
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw new AppError(
      'ERR_CA_UNAVAILABLE',
      `the local CA ${where} is unreadable: ${(e as Error).message}`,
      hint,
      { cause: e },
    );
  }
}
