/**
 * The gateway worker of the chaos suite: one process = one incarnation of a gateway. It builds a
 * replica over a PocketBase transport (endpoints: own server first, then the other) and a file
 * storage, restores what the storage holds, then applies the ops the engine sends and reports
 * every write (before any push of it) and every ack. Killed with SIGKILL, it never stops its
 * replica. Started by `startChaosGateway` (`@nxs-sync/testing`) as `node --import tsx`.
 * @module
 */
import { type Change, createDoc, openReplica, silentLogger } from "@nxs-sync/core";
import { createFileStorage, createTimerScheduler } from "@nxs-sync/core/node";
// Two light modules of the chaos engine, not the package entry (it would load the whole harness
// into every worker).
import {
  CHAOS_GATEWAY_CONFIG_ENV,
  type ChaosCommand,
  type ChaosGatewayMessage,
} from "../../../testing/src/chaos/protocol.js";
import { chaosInitialState } from "../../../testing/src/chaos/workload.js";
import { createPocketBaseTransport, type NodeAuth } from "../../src/index.js";
import { chaosSchema } from "./chaos-schema.js";

/** What the fleet passes to each gateway process (JSON, in the environment). */
export interface ChaosGatewayConfig {
  readonly name: string;
  /** All gateways of the run (their counters are in the schema). */
  readonly gateways: readonly string[];
  readonly docId: string;
  /** `<node id>.<name>`, the same in every incarnation. */
  readonly replicaId: string;
  /** Own server's link first, then the other's. */
  readonly endpoints: readonly string[];
  readonly auth: NodeAuth;
  readonly storageDir: string;
  /** The replica's safety-net poll. */
  readonly pollMs: number;
}

const send = (message: ChaosGatewayMessage): void => {
  if (process.connected) process.send?.(message);
};

async function main(config: ChaosGatewayConfig): Promise<void> {
  // The documented restore path; listeners go in `on`, so the acks of the restored outbox count.
  let restored = 0;
  const replica = await openReplica({
    storage: createFileStorage({ dir: config.storageDir }),
    transport: createPocketBaseTransport({
      endpoints: config.endpoints,
      auth: config.auth,
      docId: config.docId,
      origin: config.replicaId,
      // Errors are expected by the hundred under faults: they go to the engine's tally, not stderr.
      logger: silentLogger,
    }),
    scheduler: createTimerScheduler(),
    pollMs: config.pollMs,
    logger: silentLogger,
    onError: (error, operation) =>
      send({ t: "event", kind: "error", code: `${operation} ${error.code}`, detail: error.message }),
    on: {
      pushed: (e) => send({ t: "acked", seqs: e.changes.map((c) => c.seq) }),
      rejected: (e) => {
        for (const r of e.rejected) {
          send({
            t: "event",
            kind: "rejected",
            code: r.error.code,
            detail: `${e.source}: ${r.error.message}`,
          });
        }
      },
    },
    createDoc: ({ snapshot, last, outbox }) => {
      restored = outbox.length;
      return createDoc({
        schema: chaosSchema(config.gateways),
        docId: config.docId,
        replicaId: config.replicaId,
        clock: Date.now,
        initial: chaosInitialState(config.gateways),
        ...(snapshot === undefined ? {} : { snapshot }),
        ...(last === undefined ? {} : { last }),
      });
    },
  });
  const { doc } = replica;
  send({ t: "ready", restored });

  process.on("message", (raw) => {
    const command = raw as ChaosCommand;
    if (command.t === "op") {
      const { op } = command;
      let change: Change | undefined;
      try {
        if (op.kind === "set") change = doc.set(["kv", op.key], op.id);
        else if (op.kind === "inc") change = doc.increment(["counters", op.counter], 1);
        else change = doc.add(["tags"], op.id);
      } catch (error) {
        send({ t: "event", kind: "error", code: "write", detail: String(error) });
      }
      // Sent in the same tick as the write: before the outbox append, so before any push of it.
      if (change) send({ t: "wrote", op: op.id, seq: change.seq, hlc: change.hlc });
    } else if (command.t === "state") {
      const s = replica.status();
      send({
        t: "state",
        id: command.id,
        state: doc.get(),
        pending: s.pendingChanges,
        version: s.version,
        gaps: s.gaps,
        replica: s.state,
      });
    } else if (command.t === "stop") {
      void replica.stop().finally(() => process.exit(0));
    }
  });
}

// The engine went away (it crashed or killed its worker's parent): do not outlive it.
process.on("disconnect", () => process.exit(0));
const raw = process.env[CHAOS_GATEWAY_CONFIG_ENV];
if (raw !== undefined) {
  main(JSON.parse(raw) as ChaosGatewayConfig).catch((error: unknown) => {
    send({ t: "fatal", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exitCode = 1;
  });
}
