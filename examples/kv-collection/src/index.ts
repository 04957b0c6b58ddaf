// The example's entry point (the errors-docs test loads it: its `kv` error area is documented).
export {
  createKvStore,
  KV_COLLECTION,
  type KvEntry,
  KvErrorCode,
  type KvEvent,
  type KvStore,
  type KvStoreOptions,
  kvEntries,
  kvRegistry,
} from "./kv.js";
