export type { Decision, Policy, PolicyAction, PolicyRule, RateSpec, RequestFacts } from './types.js';
export { checkPolicy, normalisePolicy, parsePolicy, parsePolicyText, POLICY_SCHEMA_PATH } from './schema.js';
export type { PolicyProblem } from './schema.js';
export { compilePolicy, decide, ruleKey, type CompiledPolicy } from './decide.js';
export { pathProblem } from './glob.js';
export { parseRate } from './rate-spec.js';
export { resolveExePaths, type ExeResolution } from './exe-paths.js';
export { MemoryRateState, rateKey, type RateState, type TakeResult } from './rate.js';
export { RateFoldLog } from './rate-fold.js';
export { PgRateState, type PgRateOptions } from './pg-rate.js';
export { PgApprovalState, type PgApprovalOptions } from './pg-approvals.js';
export {
  APPROVAL_ID,
  MemoryApprovalState,
  newApprovalId,
  notFound as approvalNotFound,
  type ApprovalState,
  type HeldEvent,
  type HeldRequest,
  type HoldInput,
  type HoldOutcome,
  type RejectReason,
} from './approvals.js';
export { findCaller, procAvailable, socketHolders, UNKNOWN, type Caller, type SocketEnds } from './caller.js';
