/**
 * The messages between the chaos engine and a gateway worker process (Node IPC, JSON). The worker
 * is a thin executor: the engine decides every write and the worker reports what its replica did.
 * @module
 */
import type { ChaosOp } from "./workload.js";

/** What the engine sends to a gateway worker. */
export type ChaosCommand =
  /** Apply this op to the doc now (one change). */
  | { readonly t: "op"; readonly op: ChaosOp }
  /** Answer with a {@link ChaosGatewayMessage} `state` carrying the same `id`. */
  | { readonly t: "state"; readonly id: number }
  /** Stop the replica (final snapshot, close) and exit 0. */
  | { readonly t: "stop" };

/** What a worker observed of its replica, in answer to a `state` command. */
export interface ChaosGatewayState {
  /** `doc.get()`. */
  readonly state: unknown;
  /** Local changes not yet acknowledged. */
  readonly pending: number;
  /** The doc's version vector. */
  readonly version: Readonly<Record<string, number>>;
  /** Per origin, the seq the doc waits for (held changes). */
  readonly gaps: Readonly<Record<string, number>>;
  /** The replica's state (`connected`, …). */
  readonly replica: string;
}

/** What a gateway worker sends to the engine. */
export type ChaosGatewayMessage =
  /** The replica started (storage loaded, connecting in the background): ops may come. */
  | { readonly t: "ready"; readonly restored: number }
  /** The op was applied as the local change `seq` stamped `hlc` (sent before any push of it). */
  | { readonly t: "wrote"; readonly op: string; readonly seq: number; readonly hlc: string }
  /** The replica's `pushed` event: these local seqs are acknowledged. */
  | { readonly t: "acked"; readonly seqs: readonly number[] }
  /** A `rejected` event or an error of the replica, for the report. */
  | {
      readonly t: "event";
      readonly kind: "rejected" | "error";
      readonly code: string;
      readonly detail: string;
    }
  | ({ readonly t: "state"; readonly id: number } & ChaosGatewayState)
  /** The worker cannot go on (its start failed). */
  | { readonly t: "fatal"; readonly message: string };

/** The environment variable holding a worker's JSON config. */
export const CHAOS_GATEWAY_CONFIG_ENV = "NXS_CHAOS_GATEWAY";
