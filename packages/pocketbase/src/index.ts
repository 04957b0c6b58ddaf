/**
 * @nxs-sync/pocketbase: nxs-sync over PocketBase. One client layer (auth, retry, error mapping),
 * the schema (`ensureSchema`, JS migration), the record codecs, the transport with realtime
 * catch-up and failover, and the server-to-server replicator.
 * @packageDocumentation
 */

export type { PullBodiesEvent } from "./change-reader.js";
export type { PushRequestEvent } from "./change-writer.js";
export {
  type Checkpointer,
  type CheckpointerOptions,
  type CheckpointResult,
  createCheckpointer,
} from "./checkpointer.js";
export { type ReplicatorCliContext, ReplicatorExitCode, runReplicatorCli } from "./cli.js";
export {
  closeSdkClient,
  createPocketBaseClient,
  createSdkClient,
  installEventSource,
  isUniqueViolation,
  NODES_COLLECTION,
  type NodeAuth,
  OPERATORS_COLLECTION,
  type PocketBaseClient,
  type PocketBaseClientOptions,
  REPLICATORS_COLLECTION,
  type RetryOptions,
  toTransportError,
  uniqueViolationFields,
} from "./client.js";
export {
  type CollectionDefinition,
  type RecordCheck,
  type ReplicatedCollection,
  replicatedCollectionOf,
} from "./collection-definition.js";
export {
  type CollectionRegistry,
  createCollectionRegistry,
  createNxsCollectionRegistry,
} from "./collection-registry.js";
export {
  AuthRules,
  defaultReplicatedCollections,
  nxsCollectionDefinitions,
  schemaDefinitions,
} from "./collections/nxs.js";
export {
  checkRecordCollections,
  DEFAULT_RECORD_COLLECTIONS,
  RECORD_BASES_COLLECTION,
  RECORDS_HOOKS,
  RECORDS_TOPIC,
  recordBasesCollection,
  recordsCollections,
  recordsHookPiece,
  TOMBSTONES_COLLECTION,
  tombstonesCollection,
} from "./collections/records.js";
export {
  type Ack,
  type CompactionResult,
  type CompactOptions,
  type Compactor,
  type CompactorOptions,
  compactDoc,
  createCompactor,
  fetchLatestSnapshot,
  listAcks,
  publishSnapshot,
  purgeChangesBelow,
  type RefusedSnapshot,
  writeAck,
} from "./compaction.js";
export { type EnsureSchemaOptions, type EnsureSchemaResult, ensureSchema } from "./ensure-schema.js";
export {
  createEndpointPool,
  DEFAULT_CALL_RETRY,
  type Endpoint,
  type EndpointHealth,
  type EndpointPool,
  type EndpointPoolEvents,
  type EndpointPoolOptions,
  type FailoverOptions,
  type PoolCallOptions,
  type SwitchEvent,
} from "./failover.js";
export {
  FENCE_HOOKS,
  FENCE_PATH,
  type FenceState,
  fenceHookPiece,
  liftFence,
  readFence,
  setFence,
} from "./fence.js";
export {
  checkHookPiece,
  checkHookPieces,
  type HookPiece,
  type HookRegistry,
  hookPieceFromFile,
  hookPiecePath,
  NXS_HOOK_PIECE_NAME,
  nxsHookPiece,
  writeHooksBundle,
} from "./hook-pieces.js";
export {
  checkHooksVersion,
  type HooksVersion,
  NXS_HOOKS_VERSION,
  NXS_SCHEMA_VERSION,
  NXS_VERSION_PATH,
} from "./hooks.js";
export {
  compareVersions,
  DeletePolicies,
  type DeletePolicy,
  isBelowPurgeFrontier,
  type MergeRule,
  MergeRules,
  type MergeSpec,
  type MonotonicField,
  mergeRecords,
  Order,
  type PlannedCopy,
  type PlannedPurge,
  type PlanOptions,
  planCopies,
  planPurges,
  type RecordFields,
  type TombstoneOptions,
} from "./merge-plan.js";
export { type RenderMigrationOptions, renderMigration } from "./migration-gen.js";
export {
  createRealtimeSession,
  DEFAULT_REALTIME_RETRY,
  pocketBaseRealtimeLink,
  type RealtimeEvent,
  type RealtimeHandlers,
  type RealtimeLink,
  type RealtimeSession,
  type RealtimeSessionOptions,
  type RealtimeTopic,
} from "./realtime-session.js";
export { type AuthSecrets, readSecrets, readSecretsDigest, writeSecrets } from "./record-secrets.js";
export {
  createRecordSync,
  type ExportedRecord,
  exportRecords,
  importRecords,
  type RecordConflict,
  type RecordDigest,
  type RecordExport,
  type RecordImportResult,
  type RecordSync,
  type RecordSyncOptions,
  type RecordSyncStats,
  type RecordTombstone,
  readRecordDigest,
} from "./record-sync.js";
export {
  createRecordWatch,
  type RecordWatch,
  type RecordWatchOptions,
  type RecordWatchSource,
} from "./record-watch.js";
export {
  type ChangeRecord,
  type DecodeChangeOptions,
  type DecodeResult,
  decodeChangeRecord,
  decodeSnapshotRecord,
  encodeChangeRecord,
  encodeSnapshotRecord,
  type RecordLimits,
  sliceChangeRecord,
} from "./records.js";
export {
  createReplicator,
  type Replicator,
  type ReplicatorEvents,
  type ReplicatorOptions,
  type ReplicatorServer,
  type ReplicatorStatus,
  type SyncStats,
} from "./replicator.js";
export { contentFields } from "./replicator-digest.js";
export type { ReportUntrusted } from "./replicator-snapshots.js";
export { openRoutePool, type RoutePool, type RoutePoolOptions } from "./route-pool.js";
export {
  type CollectionDef,
  type CollectionName,
  Collections,
  collectionOfRole,
  ensureNode,
  type FieldDef,
  fleetRateLimitRules,
  MAX_CHANGES_BYTES,
  MAX_SNAPSHOT_BYTES,
  mergeRateLimits,
  NODE_ID_PATTERN,
  NODE_TOKEN_DURATION_S,
  NodeRole,
  type NodeSpec,
  type RateLimitRule,
  type RateLimitsSettings,
} from "./schema.js";
export { type Heads, readHeads, type UnbackedClaim, unbackedClaim } from "./snapshot-trust.js";
export {
  createPocketBaseStabilityStore,
  type PocketBaseStabilityStoreOptions,
} from "./stability-store.js";
export {
  createPocketBaseTransport,
  type PocketBaseTransport,
  type PocketBaseTransportEvents,
  type PocketBaseTransportOptions,
  type PocketBaseTransportStatus,
  type QuarantineEvent,
} from "./transport.js";
