/**
 * The public API of @nxs-sync/core: named re-exports only, sorted by module (biome keeps the order).
 * The source is grouped by layer, each folder using only the ones above it: errors/ (error types,
 * codes, logger), clock/ (HLC, ids, version vectors), model/ (change and op types, paths, schema),
 * crdt/ (the replicated state: registers, counters, sets), codec/ (wire and snapshot formats), doc/
 * (the document and its change log), sync/ (the replica engine and its ports). The in-memory
 * adapters are in `@nxs-sync/core/memory` (memory/), the Node ones in `@nxs-sync/core/node` (node/).
 */
export type { WallClock } from "./clock/clock.js";
export {
  type AckedVersion,
  computeStableFrontier,
  type StableFrontier,
  type StableFrontierInput,
} from "./clock/frontier.js";
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
} from "./clock/hlc.js";
export {
  type Brand,
  type DocId,
  type Hlc,
  ID_PATTERN,
  type ReplicaId,
  toDocId,
  toReplicaId,
} from "./clock/ids.js";
export { createSeededRandom, type Random, seedFromString } from "./clock/random.js";
export {
  dominatesVersionVector,
  EMPTY_VERSION_VECTOR,
  getVersion,
  intersectVersionVectors,
  mergeVersionVectors,
  type VersionVector,
} from "./clock/version-vector.js";
export {
  changeSchema,
  decodeChange,
  decodeSnapshot,
  opSchema,
  snapshotSchema,
  versionVectorSchema,
} from "./codec/change-codec.js";
export {
  decodeChanges,
  type EncodeChangesOptions,
  type EncodedChangeRun,
  type EncodedChangeRunV2,
  type EncodedChanges,
  type EncodedChangesV2,
  encodeChanges,
  type HlcDeltaV2,
  MAX_CHANGES_PER_BATCH,
} from "./codec/changes-codec.js";
export {
  type BinarySnapshotOptions,
  decodeSnapshotBinary,
  encodeSnapshotBinary,
} from "./codec/snapshot-binary.js";
export { MAX_OPS_PER_CHANGE } from "./crdt/stamp.js";
export {
  type CreateDocOptions,
  createDoc,
  type Doc,
  type DocDraft,
  type DocWriter,
  type Frozen,
  type TypedDoc,
  type TypedDocWriter,
} from "./doc/doc.js";
export type {
  ApplyResult,
  HiddenChange,
  HiddenSnapshot,
  RejectedChange,
  ReplicatedDoc,
} from "./doc/replicated-doc.js";
export { callGuarded, guardLogger } from "./errors/callback-guard.js";
export { type DefinedErrorCodes, defineErrorCodes, type ErrorCodeDefinition } from "./errors/error-areas.js";
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
} from "./errors/error-codes.js";
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
} from "./errors/errors.js";
export {
  createLineLogger,
  defaultLogger,
  type LineLoggerOptions,
  type Logger,
  type LogLevel,
  silentLogger,
} from "./errors/logger.js";
export { checkNumberOption, checkOption, type NumberOptionBounds } from "./errors/option-checks.js";
export type { Change, Json, Op, Path, Snapshot } from "./model/change.js";
export { OpKind } from "./model/change.js";
export { type HiddenPath, HiddenReason } from "./model/hidden-paths.js";
export { canonicalJson } from "./model/json.js";
export { addWinsSet, counter, NodeKind } from "./model/schema.js";
export type {
  AddWinsSetMark,
  CounterMark,
  CounterPath,
  DeletePath,
  GetPath,
  GetValue,
  PathError,
  SetElement,
  SetOfPath,
  SetPath,
  SetValue,
} from "./model/typed-path.js";
export { computeBackoff, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./sync/backoff.js";
export { createEmitter, type Emitter, type Listener } from "./sync/emitter.js";
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
} from "./sync/replica.js";
export {
  createReportThrottle,
  type ReportThrottle,
  type ReportThrottleOptions,
  type ThrottleDecision,
  throttleKey,
} from "./sync/report-throttle.js";
export {
  type Cancel,
  createManualScheduler,
  type ManualScheduler,
  type Scheduler,
} from "./sync/scheduler.js";
export {
  type CompactionLease,
  checkpointWithStore,
  compactWithStore,
  type StabilityStore,
  type StoreCheckpoint,
  type StoreCompaction,
  type StoredAck,
} from "./sync/stability.js";
export type { Storage, StoredState } from "./sync/storage.js";
export {
  type HighWater,
  type PullPage,
  type PushAck,
  type Transport,
  type TransportListener,
  TransportState,
} from "./sync/transport.js";
export {
  createTransportListeners,
  type TransportListeners,
  type TransportListenersOptions,
} from "./sync/transport-listeners.js";
