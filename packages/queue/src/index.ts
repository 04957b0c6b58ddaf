/**
 * The public API of @nxs-sync/queue: named re-exports only.
 * @packageDocumentation
 */
export type {
  BlobRef,
  BlobStore,
  ClaimRequest,
  EnqueueResult,
  Heartbeat,
  HeartbeatResult,
  JobCounts,
  JobEvent,
  LeaseRef,
  ListOptions,
  QueueAdmin,
  QueueBackend,
  QueueBackendCapabilities,
  QueueWatcher,
  Settlement,
  SettleResult,
} from "./backend.js";
export { QueueErrorCode, RetryLaterError, UnrecoverableJobError } from "./errors.js";
export {
  type BackoffOptions,
  type ClaimedJob,
  JOB_ID_PATTERN,
  type JobFailure,
  type JobId,
  type JobRecord,
  JobState,
  type LeaseToken,
  MAX_FAILURES_KEPT,
  type NewJob,
  TERMINAL_STATES,
} from "./job.js";
export {
  decodeJobVersion,
  encodeJobVersion,
  JobPhase,
  type JobVersionParts,
  jobVersion,
  mergeJobCopies,
  phaseOf,
} from "./job-version.js";
export {
  createMemoryQueueBackend,
  DEFAULT_MEMORY_MAX_BLOB_BYTES,
  type MemoryQueueBackendOptions,
} from "./memory-backend.js";
