/**
 * The public API of @nxs-sync/config: named re-exports only.
 * @packageDocumentation
 */
export type { CompactOptions, ConfigBackend, ConfigWatcher, NewVersion, VersionQuery } from "./backend.js";
export {
  CACHE_FILE_FORMAT,
  type CacheFileContent,
  type CacheFileRead,
  cacheFileSchema,
  readCacheFile,
  writeCacheFile,
} from "./cache-file.js";
export { applyDiff, diffValues, type JsonPatchOperation } from "./diff.js";
export { ConfigConflictError, ConfigErrorCode, type FieldIssue, InvalidConfigError } from "./errors.js";
export {
  ConfigFileError,
  EXPORT_FORMAT,
  type ExportEntry,
  type ExportFile,
  exportFileOf,
  exportFileSchema,
  parseExport,
  renderExport,
} from "./files.js";
export {
  type ConfigRecords,
  createMemoryConfigBackend,
  type ImportRecordsResult,
  type MemoryConfigBackend,
  type MemoryConfigBackendOptions,
  type MemoryLinkState,
  replicateConfigRecords,
} from "./memory-backend.js";
export { effectiveVersion, isHiddenFrom, isTargeted, rolloutBucket } from "./rollout-target.js";
export {
  createKeyring,
  isSealed,
  isSecretSchema,
  type Keyring,
  type KeyringOptions,
  keyringFromEnv,
  openValue,
  redactValue,
  resealValue,
  type SealedSecret,
  type SecretPath,
  sealedPaths,
  sealValue,
  secret,
  secretPaths,
} from "./secrets.js";
export {
  type ConfigInput,
  type ConfigKey,
  type ConfigSchemas,
  type ConfigStore,
  type ConfigStoreEvent,
  type ConfigStoreOptions,
  type ConfigValue,
  type ConfigWatchEvent,
  createConfigStore,
  type HistoryEntry,
  type ImportResult,
  type KeyChange,
  type PutOptions,
  type RolloutOptions,
  type VersionRef,
} from "./store.js";
export { type CheckResult, checkValue, validateValue } from "./validate.js";
export {
  compareVersions,
  ENV_PATTERN,
  KEY_PATTERN,
  ROLLOUT_RANK,
  type RolloutRecord,
  type RolloutState,
  type RolloutTarget,
  rolloutRecordSchema,
  type StoredVersion,
  storedVersionSchema,
  VERSION_ID_PATTERN,
  type VersionMeta,
} from "./version.js";
export { toVersionMeta } from "./version-meta.js";
export {
  type CursorDecision,
  createWatchCursor,
  RESYNC_WINDOW,
  type VersionPosition,
  type WatchCursor,
} from "./watch-cursor.js";
