export { createCa, loadCa, caFiles, caFromPem, generateCaPem } from './root.js';
export { LeafCache, type LeafCacheOptions } from './leaf-cache.js';
export { LeafMinter, LEAF_VALIDITY_MS } from './leaf.js';
export { buildTrustBundle } from './trust-bundle.js';
export type { LeafSource, LocalCa, LeafEntry } from './types.js';
