/**
 * `@nxs-sync/core/node`: the adapters of core that need Node.js I/O (files, real timers).
 * Everything else of core is I/O-free and lives in `@nxs-sync/core`.
 * @packageDocumentation
 */
export { createFileStorage, type FileStorageOptions } from "./file-storage.js";
export { createTimerScheduler, type TimerSchedulerOptions } from "./timer-scheduler.js";
