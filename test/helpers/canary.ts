import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every form a leaked secret could take in bytes we inspect. */
export function canaryForms(secret: string): string[] {
  const b = Buffer.from(secret);
  return [
    secret,
    b.toString('base64'),
    b.toString('base64url'),
    b.toString('hex'),
    encodeURIComponent(secret),
  ];
}

export function findCanary(haystack: string | Buffer, secret: string): string | undefined {
  const text = Buffer.isBuffer(haystack) ? haystack.toString('latin1') : haystack;
  return canaryForms(secret).find((f) => text.includes(f));
}

/** Files under dir whose raw bytes contain the secret in any form (the vault seals, so none should). */
export function filesContaining(dir: string, secret: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (findCanary(readFileSync(p), secret)) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}
