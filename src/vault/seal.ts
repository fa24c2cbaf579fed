import { randomBytes } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { AppError } from '../errors.js';

/**
 * Sealed value layout: version (1 byte, 0x01) || nonce (24 bytes) || XChaCha20-Poly1305 ciphertext+tag.
 * The full record key is the associated data, so a value moved to another key fails to open.
 * XChaCha's 192-bit nonce makes random nonces safe for any realistic number of writes under one key.
 */

export const SEAL_VERSION = 0x01;
export const MASTER_KEY_BYTES = 32;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + NONCE_BYTES;

let ready = false;

/** Waits for libsodium's WebAssembly to load; seal/open are synchronous afterwards. */
export async function initSodium(): Promise<void> {
  if (ready) return;
  await sodium.ready;
  ready = true;
}

function checkReady(masterKey: Uint8Array): void {
  if (!ready) throw new TypeError('initSodium() must be awaited before sealing');
  if (!(masterKey instanceof Uint8Array) || masterKey.length !== MASTER_KEY_BYTES) {
    throw new TypeError(`master key must be ${MASTER_KEY_BYTES} bytes`);
  }
}

const encoder = new TextEncoder();

export function seal(masterKey: Uint8Array, recordKey: string, plaintext: Uint8Array): Uint8Array {
  checkReady(masterKey);
  // Node's CSPRNG, not libsodium's: the wasm build's RNG depends on how it was bootstrapped.
  const nonce = randomBytes(NONCE_BYTES);
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    plaintext,
    encoder.encode(recordKey),
    null,
    nonce,
    masterKey,
  );
  const out = new Uint8Array(HEADER_BYTES + ct.length);
  out[0] = SEAL_VERSION;
  out.set(nonce, 1);
  out.set(ct, HEADER_BYTES);
  return out;
}

/** Opens a sealed value; any failure (version, length, tag) is ERR_VAULT_CORRUPT naming only the key. */
export function open(masterKey: Uint8Array, recordKey: string, sealed: Uint8Array): Uint8Array {
  checkReady(masterKey);
  if (sealed.length < HEADER_BYTES + TAG_BYTES || sealed[0] !== SEAL_VERSION) throw corrupt(recordKey);
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      sealed.subarray(HEADER_BYTES),
      encoder.encode(recordKey),
      sealed.subarray(1, HEADER_BYTES),
      masterKey,
    );
  } catch {
    // libsodium's own message says nothing useful; the cause is deliberately dropped.
    throw corrupt(recordKey);
  }
}

export function corrupt(recordKey: string, what = 'does not open'): AppError {
  return new AppError(
    'ERR_VAULT_CORRUPT',
    `vault record ${JSON.stringify(recordKey)} ${what}`,
    'restore server/kv_store from a backup, or delete and re-add this record',
  );
}
