/**
 * authsome as a library (package.json `main`/`types`): mint a session environment for a child
 * process, list connections, read the audit trail, explain a URL — over the same PoP-signed control
 * API as the CLI. README, "Library API"; examples/library.mjs.
 */
export {
  Authsome,
  type AllowEntry,
  type AuditQuery,
  type AuthsomeSession,
  type ConnectOptions,
  type ExplainOptions,
  type SessionOptions,
} from './api.js';
export { AppError, ERROR_CODES, isAppError, type ErrorCode } from './errors.js';
export { PLACEHOLDER } from './cli/session-env.js';
export type { AuditRecord, AuditEventName } from './audit/types.js';
export type { ConnectionMeta } from './daemon/connections.js';
export type { Decision, Explanation } from './daemon/explain.js';
