import { runConfigBackendConformance } from "@nxs-sync/testing/conformance";
import { createMemoryConfigBackend } from "../../src/memory-backend.js";

/** Lets queued microtasks (the memory backend's deliveries) run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

let time = 1_700_000_000_000;
runConfigBackendConformance("memory", async () => ({
  // A server clock that moves 1 ms per reading: createdAt differs between versions, as keepSince needs.
  backend: createMemoryConfigBackend({ name: "conf", now: () => time++ }),
  cleanup: async () => {},
  settle: flush,
  maxSettleRounds: 20,
}));
