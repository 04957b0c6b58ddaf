/**
 * A gateway's checkpointer over PocketBase: on a timer, core's checkpoint (`checkpointWithStore`)
 * over the active server's collections: the replica's ack, a snapshot every few rounds, and the
 * compaction of its own doc once every live replica acknowledged.
 */
import {
  checkpointWithStore,
  defaultLogger,
  type Logger,
  type ReplicatedDoc,
  type StoreCheckpoint,
  type VersionVector,
} from "@nxs-sync/core";
import { type NodeAuth, toTransportError } from "./client.js";
import { DEFAULT_EXPIRY_MS, deliverError } from "./compaction.js";
import { createEndpointPool, type FailoverOptions } from "./failover.js";
import { createPocketBaseStabilityStore } from "./stability-store.js";

/** Options of {@link createCheckpointer}. */
export interface CheckpointerOptions {
  /** Server base URLs, preferred first. */
  readonly endpoints: readonly string[];
  readonly auth: NodeAuth;
  /** The replicated doc whose version to report, snapshots to publish and change log to compact. */
  readonly doc: ReplicatedDoc;
  /** How often the acknowledged version is written. Default 30 000 ms. */
  readonly intervalMs?: number;
  /** Write a snapshot every this many checkpoints (0: never). Default 10. */
  readonly snapshotEvery?: number;
  /**
   * A replica whose last ack is older than this is left out of the frontier the doc is compacted
   * with. Use the compactor's `expiryMs` (default 24 h, as the compactor's).
   */
  readonly expiryMs?: number;
  readonly failover?: FailoverOptions;
  /** Warnings and errors, one line each. Default core's `defaultLogger` (stderr); pass `silentLogger` to silence. */
  readonly logger?: Logger;
  /** A background checkpoint failed (also logged as a warning). */
  readonly onError?: (error: Error) => void;
  /** Time source (ms). Default `Date.now`. */
  readonly now?: () => number;
}

/** What one {@link Checkpointer.checkpoint} did. */
export interface CheckpointResult {
  /** The ack written: this replica's version. */
  readonly version: VersionVector;
  /** The frontier the doc was compacted with, or undefined when none was causally stable yet. */
  readonly frontier: VersionVector | undefined;
  /** Why there was no frontier (see `computeStableFrontier` in core). */
  readonly waitingFor: readonly string[];
  /** Replicas left out of the frontier: silent longer than `expiryMs`. */
  readonly expired: readonly string[];
}

/**
 * Periodically reports a replica's version (its liveness for compaction), publishes snapshots and
 * compacts the doc's in-memory change log with the fleet's causal-stability frontier.
 */
export interface Checkpointer {
  /**
   * Writes the ack now (and a snapshot when asked), then reads every replica's ack and compacts the
   * doc with the frontier when it is causally stable.
   * @returns What was written and compacted.
   * @throws TransportError (see {@link toTransportError}); nothing is compacted then.
   */
  checkpoint(options?: { readonly snapshot?: boolean }): Promise<CheckpointResult>;
  /** Starts the timer, with a first checkpoint at once (it registers the replica in the frontier). */
  start(): void;
  /** Stops the timer and closes its clients. Idempotent. */
  stop(): void;
}

/**
 * Creates the checkpointer of one replica. Each checkpoint:
 * 1. writes the replica's version to `nxs_acks`, which keeps it in the causal-stability frontier (a
 *    replica silent longer than the expiry is dropped from it and must re-bootstrap from a snapshot);
 * 2. every `snapshotEvery` checkpoints, publishes a snapshot new replicas start from;
 * 3. reads the acks of every replica of the doc and, when `computeStableFrontier` (core) finds the
 *    frontier causally stable here, calls `doc.compact(frontier)`: the in-memory change log and the
 *    tombstones below it are dropped, so a long-running gateway's memory stays bounded.
 * Start it before the replica makes changes, and run one in every gateway that writes the doc: an
 * origin with changes but no ack holds every replica's compaction back.
 * @param options - Endpoints, node credentials, the doc, timings, expiry.
 * @returns A stopped checkpointer.
 * @example
 * ```ts
 * const cp = createCheckpointer({ endpoints, auth, doc, intervalMs: 30_000, snapshotEvery: 10 });
 * cp.start();
 * ```
 */
export function createCheckpointer(options: CheckpointerOptions): Checkpointer {
  const logger = options.logger ?? defaultLogger;
  const now = options.now ?? Date.now;
  const every = options.snapshotEvery ?? 10;
  const expiryMs = options.expiryMs ?? DEFAULT_EXPIRY_MS;
  const pool = createEndpointPool({
    endpoints: options.endpoints,
    auth: options.auth,
    failover: options.failover,
    logger,
  });
  let timer: ReturnType<typeof setInterval> | undefined;
  let count = 0;
  let stopped = false;

  async function checkpoint(opts: { readonly snapshot?: boolean } = {}): Promise<CheckpointResult> {
    const ep = pool.active();
    const doc = options.doc;
    let done: StoreCheckpoint;
    try {
      // Core's checkpoint over this server's collections: the ack says what this replica has
      // applied (never more) and is written before compacting, so a replica compacts only while it
      // is itself live in everyone's frontier.
      done = await checkpointWithStore({
        store: createPocketBaseStabilityStore({ client: ep.client }),
        doc,
        now: now(),
        expiryMs,
        snapshot: opts.snapshot === true,
      });
      pool.reportSuccess(ep);
    } catch (e) {
      const err = toTransportError(e, `checkpoint at ${ep.url}`);
      if (err.code === "transport/unavailable") pool.reportFailure(ep, err.message);
      throw err;
    }
    const { version, frontier, waitingFor, expired } = done;
    if (frontier === undefined)
      logger.debug(`[nxs-pocketbase] ${doc.docId}: compaction waits for ${waitingFor.join(", ")}`);
    return { version, frontier, waitingFor, expired };
  }

  const runInBackground = (snapshot: boolean): void => {
    checkpoint({ snapshot }).catch((e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      logger.warn(`[nxs-pocketbase] checkpoint failed: ${err.message}`);
      deliverError(options.onError, logger, "[nxs-pocketbase]", err);
    });
  };

  return {
    checkpoint,
    start() {
      if (timer !== undefined || stopped) return;
      pool.start();
      runInBackground(false);
      timer = setInterval(() => {
        count++;
        runInBackground(every > 0 && count % every === 0);
      }, options.intervalMs ?? 30_000);
      timer.unref?.();
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      pool.stop();
    },
  };
}
