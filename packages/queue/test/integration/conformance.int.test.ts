import type { ProcessPocketBase } from "@nxs-sync/testing";
import { runQueueBackendConformance } from "@nxs-sync/testing/conformance";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll } from "vitest";
import { backendOf, closeBackends, startQueueServer } from "./servers.js";

/** The port's conformance suite against the PocketBase backend on one real server (real time). */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
beforeAll(async () => {
  server = await startQueueServer(servers, "queue-conformance");
});
afterAll(closeBackends);

runQueueBackendConformance("pocketbase", () => ({
  backend: backendOf([server.url]),
  wait: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  leaseMs: 600,
}));
