export { type ConfigConformanceContext, runConfigBackendConformance } from "./config.js";
export { type QueueConformanceContext, runQueueBackendConformance } from "./queue.js";
export { runStabilityStoreConformance, type StabilityFixture } from "./stability.js";
export { runStorageConformance, type StorageConformanceContext } from "./storage.js";
export { runTransportConformance, type TransportConformanceContext } from "./transport.js";
