/**
 * The gateway worker of the NATS fault test: a replica over a NATS transport (every node's client
 * URL) and a file storage. Started by `startChaosGateway` (`@nxs-sync/testing`) as
 * `node --import tsx`; the worker body is the harness's, shared with every transport.
 * @module
 */
import { silentLogger } from "@nxs-sync/core";
import { chaosSchema } from "../../../pocketbase/test/integration/chaos-schema.js";
// Light modules of the harness, not its entry (it would load the whole harness into every worker).
import { type ChaosWorkerConfig, runChaosGatewayWorker } from "../../../testing/src/chaos/gateway-worker.js";
import { createNatsTransport } from "../../src/index.js";

/** What the fault test passes to each gateway process. */
export interface NatsChaosGatewayConfig extends ChaosWorkerConfig {
  /** Client URLs of every node (through the cluster's client proxies). */
  readonly servers: readonly string[];
}

runChaosGatewayWorker<NatsChaosGatewayConfig>({
  transport: (config) =>
    createNatsTransport({
      servers: config.servers,
      docId: config.docId,
      origin: config.replicaId,
      replicas: 3,
      // Errors are expected under faults: they go to the engine's tally, not stderr.
      logger: silentLogger,
      requestTimeoutMs: 2000,
    }),
  schema: chaosSchema,
});
