import type { ProcessPocketBase } from "@nxs-sync/testing";
import { runConfigBackendConformance } from "@nxs-sync/testing/conformance";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll } from "vitest";
import { backendOf, closeBackends, startConfigServer } from "./pocketbase-servers.js";

/** The port's conformance suite against the PocketBase backend on one real server (real time). */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
beforeAll(async () => {
  server = await startConfigServer(servers, "config-conformance");
});
afterAll(closeBackends);

runConfigBackendConformance("pocketbase", () => ({ backend: backendOf([server.url]) }));
