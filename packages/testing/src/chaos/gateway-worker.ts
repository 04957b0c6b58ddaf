/**
 * The body of a chaos gateway worker process, for any transport: one process = one incarnation of
 * a gateway. It builds a replica over the transport the adapter's worker script makes and a file
 * storage, restores what the storage holds, then applies the ops the engine sends and reports every
 * write (before any push of it) and every ack. Killed with SIGKILL, it never stops its replica. An
 * adapter's worker script is a few lines: read the config, call {@link runChaosGatewayWorker}.
 * Imports only core and the chaos protocol (not the harness entry), so workers start fast.
 * @module
 */
import { type Change, createDoc, openReplica, silentLogger, type Transport } from "@nxs-sync/core";
import { createFileStorage, createTimerScheduler } from "@nxs-sync/core/node";
import { CHAOS_GATEWAY_CONFIG_ENV, type ChaosCommand, type ChaosGatewayMessage } from "./protocol.js";
import { chaosInitialState } from "./workload.js";

/** What every chaos gateway worker is told (JSON, in the environment); adapters add their fields. */
export interface ChaosWorkerConfig {
  readonly name: string;
  /** All gateways of the run (their counters are in the schema). */
  readonly gateways: readonly string[];
  readonly docId: string;
  /** The replica id, the same in every incarnation. */
  readonly replicaId: string;
  readonly storageDir: string;
  /** The replica's safety-net poll. */
  readonly pollMs: number;
}

/** Options of {@link runChaosGatewayWorker}. */
export interface ChaosGatewayWorkerOptions<C extends ChaosWorkerConfig> {
  /** Builds the transport of this incarnation (errors go to the engine's tally, so stay silent). */
  transport(config: C): Transport;
  /** The chaos document's schema for the run's gateways. */
  schema(gateways: readonly string[]): Parameters<typeof createDoc>[0]["schema"];
}

const send = (message: ChaosGatewayMessage): void => {
  if (process.connected) process.send?.(message);
};

async function main<C extends ChaosWorkerConfig>(
  config: C,
  options: ChaosGatewayWorkerOptions<C>,
): Promise<void> {
  let restored = 0;
  const replica = await openReplica({
    storage: createFileStorage({ dir: config.storageDir }),
    transport: options.transport(config),
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
        schema: options.schema(config.gateways),
        docId: config.docId,
        replicaId: config.replicaId,
        clock: Date.now,
        initial: chaosInitialState(config.gateways),
        ...(snapshot === undefined ? {} : { snapshot }),
        ...(last === undefined ? {} : { last }),
      });
    },
  });
  const doc = replica.doc as unknown as {
    set(path: readonly string[], value: string): Change;
    increment(path: readonly string[], by: number): Change;
    add(path: readonly string[], value: string): Change;
    get(): unknown;
  };
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

/**
 * Runs the worker when the process was started by `startChaosGateway` (its config is in the
 * environment); does nothing otherwise. A failed start is reported to the engine as `fatal`.
 * @param options - The transport factory and the doc's schema.
 * @example
 * ```ts
 * // The worker script of an adapter: the transport of one incarnation, the chaos doc's schema.
 * runChaosGatewayWorker({ transport: () => transport, schema: () => schema });
 * ```
 */
export function runChaosGatewayWorker<C extends ChaosWorkerConfig>(
  options: ChaosGatewayWorkerOptions<C>,
): void {
  // The engine went away (it crashed or killed its worker's parent): do not outlive it.
  process.on("disconnect", () => process.exit(0));
  const raw = process.env[CHAOS_GATEWAY_CONFIG_ENV];
  if (raw === undefined) return;
  main(JSON.parse(raw) as C, options).catch((error: unknown) => {
    send({ t: "fatal", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exitCode = 1;
  });
}
