/**
 * The public API of @nxs-sync/queue: named re-exports only.
 * @packageDocumentation
 */
export type {
  BlobRef,
  BlobStore,
  ClaimedJobs,
  ClaimRequest,
  EnqueueResult,
  FireResult,
  FlowLimits,
  FlowRecord,
  Heartbeat,
  HeartbeatResult,
  JobCounts,
  JobEvent,
  LeaseRef,
  ListOptions,
  ParkRequest,
  QueueAdmin,
  QueueBackend,
  QueueBackendCapabilities,
  QueueFlow,
  QueueHandoff,
  QueueSchedules,
  QueueWatcher,
  RateLimit,
  ScheduleRecord,
  ScheduleSpec,
  SettleAndClaimResult,
  Settlement,
  SettleResult,
  WatchOptions,
} from "./backend.js";
export { EACH_GROUP } from "./backend.js";
export { blobRefSchema } from "./blob-ref.js";
export {
  type CronScheduler,
  type CronSchedulerOptions,
  createCronScheduler,
  dueTick,
  type FireEvent,
} from "./cron.js";
export {
  QueueErrorCode,
  RetryLaterError,
  type RetryLaterOptions,
  UnrecoverableJobError,
} from "./errors.js";
export {
  checkFlowGroup,
  checkFlowLimits,
  checkJobGroup,
  checkPauseMs,
  checkWeight,
  createFlowGate,
  type FlowGate,
  type FlowGateInput,
  type FlowVerdict,
  isPaused,
  MAX_RATE_INTERVAL_MS,
  type RateEntry,
} from "./flow.js";
export {
  type BackoffOptions,
  type ClaimedJob,
  type DedupeMode,
  JOB_ID_PATTERN,
  type JobFailure,
  type JobId,
  type JobKey,
  type JobRecord,
  JobState,
  type LeaseToken,
  MAX_FAILURES_KEPT,
  MAX_PRIORITY,
  type NewJob,
  PRIORITY_STEP_MS,
  TERMINAL_STATES,
} from "./job.js";
export { createCryptoRandom, newJobId, toJobId } from "./job-id.js";
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
export {
  type AddOptions,
  type CleanOptions,
  type CreateQueueOptions,
  createQueue,
  DEFAULT_JOB_OPTIONS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  type FlowTarget,
  type Queue,
  type QueueDefaults,
  type QueueEvents,
  type QueueJob,
  type ScheduleOptions,
} from "./queue.js";
export { DEFAULT_BACKOFF, retryDelay } from "./retry-delay.js";
export {
  checkJobKey,
  checkPriority,
  checkScheduleSpec,
  DEDUPE_MODES,
  parseCron,
  SCHEDULE_ID_PATTERN,
  tickJobId,
} from "./scheduling.js";
export {
  type CloseWorkerOptions,
  createWorker,
  type JobContext,
  type JobHandler,
  type JobResult,
  type Worker,
  type WorkerOptions,
} from "./worker.js";
