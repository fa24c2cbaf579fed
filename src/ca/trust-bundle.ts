import { rootCertificates } from 'node:tls';
import { readFile, rename, writeFile, chmod } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';

/** Debian/Ubuntu's bundle; it may hold roots the admin added that Node's built-in list lacks. */
const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * System roots plus our CA, for tools that take one bundle file (SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
 * CURL_CA_BUNDLE...) and would otherwise trust only our CA and break on every non-intercepted host.
 * Written atomically (temp + rename), mode 0644: it holds only public certificates.
 */
export async function buildTrustBundle(
  caPem: string,
  outPath: string,
  systemBundle: string = SYSTEM_BUNDLE,
): Promise<string> {
  const blocks = [...rootCertificates];
  try {
    blocks.push(...pemBlocks(await readFile(systemBundle, 'utf8')));
  } catch {
    // No system bundle (macOS, minimal containers): Node's built-in roots alone.
  }
  blocks.push(...pemBlocks(caPem));
  const seen = new Set<string>();
  const out: string[] = [];
  for (const b of blocks) {
    const key = b.replace(/\s+/g, '');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(b);
  }
  const tmp = `${outPath}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${out.join('\n')}\n`, { mode: 0o644 });
  await chmod(tmp, 0o644);
  await rename(tmp, outPath);
  return outPath;
}
