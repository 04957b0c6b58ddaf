/**
 * @nxs-sync/config/pocketbase: the config store's PocketBase backend (hook routes, an exact
 * compare-and-swap per server, a watch with catch-up), its collections and its hook piece.
 * @packageDocumentation
 */
export {
  createPocketBaseConfigBackend,
  type PocketBaseConfigBackend,
  type PocketBaseConfigBackendOptions,
} from "./backend.js";
export {
  CONFIG_HOOKS,
  configCollections,
  configHookPiece,
  configHooksPath,
  DEFAULT_COMPACTED_RETENTION_MS,
  MAX_VALUE_JSON,
  ORIGIN_COLLECTION,
  originCollection,
  ROLLOUTS_COLLECTION,
  rolloutsCollection,
  VERSIONS_COLLECTION,
  versionsCollection,
} from "./collections.js";
export { type Decoded, decodeRolloutRecord, decodeVersionRecord } from "./records.js";
