/**
 * The gateway worker of the chaos suite: one process = one incarnation of a gateway, a replica over
 * a PocketBase transport (endpoints: own server first, then the other) and a file storage. The
 * worker body (restore, apply the engine's ops, report every write and ack) is the harness's,
 * shared with every transport. Started by `startChaosGateway` (`@nxs-sync/testing`) as
 * `node --import tsx`.
 * @module
 */
import { silentLogger } from "@nxs-sync/core";
// A light module of the chaos engine, not the package entry (it would load the whole harness into
// every worker).
import { type ChaosWorkerConfig, runChaosGatewayWorker } from "../../../testing/src/chaos/gateway-worker.js";
import { createPocketBaseTransport, type NodeAuth } from "../../src/index.js";
import { chaosSchema } from "./chaos-schema.js";

/** What the fleet passes to each gateway process (JSON, in the environment). */
export interface ChaosGatewayConfig extends ChaosWorkerConfig {
  /** `<node id>.<name>`, the same in every incarnation. */
  readonly replicaId: string;
  /** Own server's link first, then the other's. */
  readonly endpoints: readonly string[];
  readonly auth: NodeAuth;
}

runChaosGatewayWorker<ChaosGatewayConfig>({
  transport: (config) =>
    createPocketBaseTransport({
      endpoints: config.endpoints,
      auth: config.auth,
      docId: config.docId,
      origin: config.replicaId,
      // Errors are expected by the hundred under faults: they go to the engine's tally, not stderr.
      logger: silentLogger,
    }),
  schema: chaosSchema,
});
