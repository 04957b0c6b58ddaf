/**
 * `@nxs-sync/core/memory`: the in-memory adapters, for tests, examples and simulations. A storage
 * that keeps everything in the process (`createMemoryStorage`) and a hub of in-memory transports with
 * seeded delays, reordering and faults (`createMemoryHub`). Nothing here is durable or networked.
 * @packageDocumentation
 */

export { createMemoryStorage, type MemoryStorage } from "./memory/memory-storage.js";
export {
  createMemoryHub,
  type MemoryFaultTarget,
  type MemoryHub,
  type MemoryHubOptions,
  type MemoryHubStats,
  type MemoryTransport,
} from "./memory/memory-transport.js";
