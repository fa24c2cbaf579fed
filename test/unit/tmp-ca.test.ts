import { test } from 'vitest';
import { loadCa } from '../../src/ca/index.js';
import { x509, EC_KEY, EC_SIGN, subtle, pkcs8Pem } from '../../src/ca/x509.js';
import { createSecureContext } from 'node:tls';
test('x', async () => {
  const ca = await loadCa('/tmp/catest/ca');
  const keys = await subtle.generateKey(EC_KEY, true, ['sign','verify']) as CryptoKeyPair;
  const keyPem = pkcs8Pem(await subtle.exportKey('pkcs8', keys.privateKey));
  for (let round = 0; round < 3; round++) {
  let t = performance.now(); let pem = '';
  for (let i = 0; i < 50; i++) {
    const cert = await x509.X509CertificateGenerator.create({ subject: `CN=h${i}.x`, issuer: ca.cert.subject, signingAlgorithm: EC_SIGN, publicKey: keys.publicKey, signingKey: ca.key,
     extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: `h${i}.x` }])] });
    pem = cert.toString('pem');
  }
  console.log('gen', (performance.now() - t) / 50);
  t = performance.now();
  for (let i = 0; i < 50; i++) createSecureContext({ key: keyPem, cert: pem + '\n' + ca.certPem });
  console.log('ctx', (performance.now() - t) / 50);
  t = performance.now();
  for (let i = 0; i < 50; i++) await subtle.sign(EC_SIGN, ca.key, new Uint8Array(100));
  console.log('sign', (performance.now() - t) / 50);
  }
});
