/**
 * @nxs-sync/queue/pocketbase: the queue's PocketBase backend (hook routes, one transaction per
 * transition, claim epochs for two servers), its collections and its hook piece.
 * @packageDocumentation
 */
export {
  createPocketBaseQueueBackend,
  type DeadLetterEvent,
  type PocketBaseQueueBackend,
  type PocketBaseQueueBackendOptions,
  type TakeoverEvent,
} from "./backend.js";
export {
  BLOBS_COLLECTION,
  blobsCollection,
  DEFAULT_MAX_BLOB_BYTES,
  DEFAULT_TOMBSTONE_RETENTION_MS,
  EPOCHS_COLLECTION,
  epochsCollection,
  FLOW_COLLECTION,
  flowCollection,
  JOBS_COLLECTION,
  jobsCollection,
  MAX_INLINE_JSON,
  QUEUE_HOOKS,
  queueCollections,
  queueHookPiece,
  queueHooksPath,
  RATES_COLLECTION,
  ratesCollection,
} from "./collections.js";
