/**
 * The public API of @nxs-sync/core: named re-exports only, sorted by module (biome keeps the order).
 * Document model: change-codec, doc, hlc, json, path, schema, snapshot-binary, stamp, state-codec.
 * Sync engine: backoff, emitter, random, replica, scheduler. Contract: the rest. The in-memory
 * adapters are in `@nxs-sync/core/memory`, the Node ones in `@nxs-sync/core/node`.
 */
export { computeBackoff, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./backoff.js";
export { callGuarded, guardLogger } from "./callback-guard.js";
export type { Change, Json, Op, Path, Snapshot } from "./change.js";
export { OpKind } from "./change.js";
export {
  changeSchema,
  decodeChange,
  decodeSnapshot,
  opSchema,
  snapshotSchema,
  versionVectorSchema,
} from "./change-codec.js";
export {
  decodeChanges,
  type EncodedChangeRun,
  type EncodedChanges,
  encodeChanges,
} from "./changes-codec.js";
export type { WallClock } from "./clock.js";
export {
  type CreateDocOptions,
  createDoc,
  type Doc,
  type DocDraft,
  type DocWriter,
  type Frozen,
  type TypedDoc,
  type TypedDocWriter,
} from "./doc.js";
export { createEmitter, type Emitter, type Listener } from "./emitter.js";
export { type DefinedErrorCodes, defineErrorCodes, type ErrorCodeDefinition } from "./error-areas.js";
export {
  type ErrorArea,
  type ErrorAreaOf,
  type ErrorCodeInfo,
  type ErrorCodeRegistry,
  errorAreaOf,
  errorCodeInfo,
  listErrorCodes,
  type NxsErrorCode,
  type RegisteredErrorCode,
} from "./error-codes.js";
export {
  ClockError,
  ConflictError,
  ErrorCode,
  isNxsError,
  NxsError,
  type NxsErrorOptions,
  StorageError,
  TransportError,
  ValidationError,
} from "./errors.js";
export {
  type AckedVersion,
  computeStableFrontier,
  type StableFrontier,
  type StableFrontierInput,
} from "./frontier.js";
export { type HiddenPath, HiddenReason } from "./hidden-paths.js";
export {
  compareHlc,
  createHlcClock,
  decodeHlc,
  encodeHlc,
  HLC_COUNTER_LIMIT,
  type HlcClock,
  type HlcClockOptions,
  type HlcParts,
  hlcNode,
} from "./hlc.js";
export { type Brand, type DocId, type Hlc, ID_PATTERN, type ReplicaId, toDocId, toReplicaId } from "./ids.js";
export { canonicalJson } from "./json.js";
export {
  createLineLogger,
  defaultLogger,
  type LineLoggerOptions,
  type Logger,
  type LogLevel,
  silentLogger,
} from "./logger.js";
export { checkNumberOption, checkOption, type NumberOptionBounds } from "./option-checks.js";
export { createSeededRandom, type Random, seedFromString } from "./random.js";
export {
  type ApplySource,
  createReplica,
  type OpenReplicaOptions,
  openReplica,
  type PullReason,
  type Replica,
  type ReplicaEvents,
  type ReplicaOperation,
  type ReplicaOptions,
  ReplicaState,
  type ReplicaStatus,
  type RestoredState,
  type SnapshotReceiver,
} from "./replica.js";
export type {
  ApplyResult,
  HiddenChange,
  HiddenSnapshot,
  RejectedChange,
  ReplicatedDoc,
} from "./replicated-doc.js";
export {
  createReportThrottle,
  type ReportThrottle,
  type ReportThrottleOptions,
  type ThrottleDecision,
  throttleKey,
} from "./report-throttle.js";
export { type Cancel, createManualScheduler, type ManualScheduler, type Scheduler } from "./scheduler.js";
export { addWinsSet, counter, NodeKind } from "./schema.js";
export {
  type BinarySnapshotOptions,
  decodeSnapshotBinary,
  encodeSnapshotBinary,
} from "./snapshot-binary.js";
export { MAX_OPS_PER_CHANGE } from "./stamp.js";
export type { Storage, StoredState } from "./storage.js";
export {
  type HighWater,
  type PullPage,
  type PushAck,
  type Transport,
  type TransportListener,
  TransportState,
} from "./transport.js";
export type {
  AddWinsSetMark,
  CounterMark,
  CounterPath,
  DeletePath,
  PathError,
  SetElement,
  SetOfPath,
  SetPath,
  SetValue,
} from "./typed-path.js";
export {
  dominatesVersionVector,
  EMPTY_VERSION_VECTOR,
  getVersion,
  intersectVersionVectors,
  mergeVersionVectors,
  type VersionVector,
} from "./version-vector.js";
