export { type ConfigConformanceContext, runConfigBackendConformance } from "./config.js";
export { type QueueConformanceContext, runQueueBackendConformance } from "./queue.js";
export { runStorageConformance, type StorageConformanceContext } from "./storage.js";
export { runTransportConformance, type TransportConformanceContext } from "./transport.js";
