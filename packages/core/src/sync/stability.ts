/**
 * The transport-neutral port of acknowledgements (the causal-stability frontier) and compaction,
 * and the two procedures core runs over it: a replica's checkpoint (write its ack, maybe a
 * snapshot, compact its own doc when a frontier is stable) and a compaction of the servers' log
 * (under a lease, purge only what every live replica acknowledged and a snapshot covers). An
 * adapter stores acks, snapshots and leases (PocketBase collections, a NATS KV bucket and
 * streams); the rules live here. Zero I/O: time comes in as a number.
 */
import { computeStableFrontier } from "../clock/frontier.js";
import { intersectVersionVectors, type VersionVector } from "../clock/version-vector.js";
import type { ReplicatedDoc } from "../doc/replicated-doc.js";
import type { Snapshot } from "../model/change.js";

/** One replica's acknowledgement of one doc, as a {@link StabilityStore} keeps it. */
export interface StoredAck {
  /** The replica id. */
  readonly replica: string;
  /** What the replica had applied when it said so. */
  readonly version: VersionVector;
  /** When it said so (ms since the epoch). */
  readonly at: number;
}

/** A held compaction lease: only its holder compacts the doc until `expiresAt`. */
export interface CompactionLease {
  readonly doc: string;
  readonly holder: string;
  /** When the lease runs out unless released first (ms since the epoch). */
  readonly expiresAt: number;
  /** The store's fencing token (a revision): a purge under a lost lease is refused. */
  readonly token: string;
}

/**
 * The port: where acks, snapshots and compaction leases live, and how the log is purged. Seven
 * methods; every one may throw a `TransportError` (`transport/unavailable` is retryable).
 */
export interface StabilityStore {
  /** Writes (replaces) a replica's ack of `doc`. */
  writeAck(doc: string, ack: StoredAck): Promise<void>;
  /** Every replica's latest ack of `doc`. */
  readAcks(doc: string): Promise<readonly StoredAck[]>;
  /** Stores a snapshot of its doc (the newest few are kept). */
  publishSnapshot(snapshot: Snapshot): Promise<void>;
  /** The newest snapshot of `doc`, if any. */
  latestSnapshot(doc: string): Promise<Snapshot | undefined>;
  /** Takes the compaction lease of `doc` for `ttlMs`, or undefined while another holder has it. */
  acquireLease(doc: string, holder: string, ttlMs: number): Promise<CompactionLease | undefined>;
  /** Gives a lease back (a no-op when it was lost). */
  releaseLease(lease: CompactionLease): Promise<void>;
  /**
   * Deletes the changes of `doc` that `bound` covers (per origin, a pack whose last seq is at most
   * `bound[origin]`), and nothing else, under `lease`.
   * @returns How many change messages or records were deleted.
   * @throws NxsError with a `*-lease-*` code of the adapter when the lease was lost.
   */
  purgeBelow(
    doc: string,
    bound: VersionVector,
    lease: CompactionLease,
  ): Promise<{ readonly deleted: number }>;
}

/** What {@link checkpointWithStore} did. */
export interface StoreCheckpoint {
  /** The ack written (the doc's version). */
  readonly version: VersionVector;
  /** Whether a snapshot was published. */
  readonly snapshot: boolean;
  /** The frontier the doc was compacted with, or undefined when none was stable yet. */
  readonly frontier: VersionVector | undefined;
  /** Why there was no frontier (see `computeStableFrontier`). */
  readonly waitingFor: readonly string[];
  /** Replicas left out of the frontier: silent longer than the expiry. */
  readonly expired: readonly string[];
}

/**
 * A replica's checkpoint over a store: writes its ack (and a snapshot when asked), reads every
 * live replica's ack and compacts its own doc with the causally stable frontier, when there is one.
 * @param input - The store, the doc, the time, the expiry of silent replicas, whether to snapshot.
 * @returns What was written and compacted.
 * @throws TransportError from the store; nothing is compacted then.
 * @example
 * ```ts
 * async function checkpoint(store: StabilityStore) {
 *   const done = await checkpointWithStore({ store, doc, now: Date.now(), snapshot: true });
 *   console.log(done.frontier ?? done.waitingFor);
 * }
 * ```
 */
export async function checkpointWithStore(input: {
  readonly store: StabilityStore;
  readonly doc: ReplicatedDoc;
  readonly now: number;
  /** Replicas silent longer than this are left out of the frontier. Default 24 h. */
  readonly expiryMs?: number;
  readonly snapshot?: boolean;
}): Promise<StoreCheckpoint> {
  const { store, doc, now } = input;
  const version = doc.version();
  await store.writeAck(doc.docId, { replica: doc.replicaId, version, at: now });
  if (input.snapshot === true) await store.publishSnapshot(doc.snapshot());
  const { live, expired } = splitAcks(await store.readAcks(doc.docId), now, input.expiryMs);
  const stable = computeStableFrontier({ self: doc.replicaId, version: doc.version(), live, expired });
  if (stable.frontier !== undefined) doc.compact(stable.frontier);
  return {
    version,
    snapshot: input.snapshot === true,
    frontier: stable.frontier,
    waitingFor: stable.waitingFor,
    expired,
  };
}

/** What {@link compactWithStore} did. */
export interface StoreCompaction {
  /** Undefined: compacted. `lease-held`: another compactor runs; `no-acks`, `no-snapshot`: nothing to bound by. */
  readonly skipped?: "lease-held" | "no-acks" | "no-snapshot";
  /** The lowest version every live replica acknowledged. */
  readonly frontier: VersionVector;
  /** What was purged below: per origin, min(frontier, newest snapshot's version). */
  readonly bound: VersionVector;
  readonly deleted: number;
  /** Replicas left out: silent longer than the expiry. */
  readonly expired: readonly string[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

function splitAcks(acks: readonly StoredAck[], now: number, expiryMs = DAY_MS) {
  const live = acks.filter((a) => now - a.at <= expiryMs);
  const expired = acks.filter((a) => now - a.at > expiryMs).map((a) => a.replica);
  return { live, expired };
}

/**
 * Compacts the store's log of one doc: under the doc's compaction lease (one compactor at a time),
 * writes the given snapshot (when one is given), then purges only the changes below both the
 * frontier every live replica acknowledged and the newest snapshot (so a replica that pulls later
 * gets the snapshot for what is gone). Version vectors
 * decide; an adapter's stream positions never do.
 * @param input - Store, doc id, holder name, time, lease TTL, expiry of silent replicas.
 * @returns What was purged, or why nothing was.
 * @throws TransportError from the store (the lease is released when possible).
 * @example
 * ```ts
 * async function compact(store: StabilityStore) {
 *   const r = await compactWithStore({ store, doc: "routes", holder: "compactor-1", now: Date.now() });
 *   console.log(r.skipped ?? `${r.deleted} deleted below ${JSON.stringify(r.bound)}`);
 * }
 * ```
 */
export async function compactWithStore(input: {
  readonly store: StabilityStore;
  readonly doc: string;
  readonly holder: string;
  readonly now: number;
  /** Default 60 000 ms. */
  readonly leaseTtlMs?: number;
  /** Default 24 h. */
  readonly expiryMs?: number;
  /**
   * A snapshot of the doc to write first, under the lease (a compactor that holds the doc, e.g. a
   * gateway): it becomes the newest snapshot the purge is bounded by. Without it, the newest one
   * already stored bounds the purge.
   */
  readonly snapshot?: Snapshot;
}): Promise<StoreCompaction> {
  const { store, doc } = input;
  const none = { frontier: {}, bound: {}, deleted: 0, expired: [] as string[] };
  const lease = await store.acquireLease(doc, input.holder, input.leaseTtlMs ?? 60_000);
  if (lease === undefined) return { ...none, skipped: "lease-held" };
  try {
    const { live, expired } = splitAcks(await store.readAcks(doc), input.now, input.expiryMs);
    if (live.length === 0) return { ...none, expired, skipped: "no-acks" };
    const frontier = intersectVersionVectors(live.map((a) => a.version));
    if (input.snapshot !== undefined) await store.publishSnapshot(input.snapshot);
    const snapshot = input.snapshot ?? (await store.latestSnapshot(doc));
    if (snapshot === undefined) return { ...none, frontier, expired, skipped: "no-snapshot" };
    const bound = intersectVersionVectors([frontier, snapshot.version]);
    const { deleted } = await store.purgeBelow(doc, bound, lease);
    return { frontier, bound, deleted, expired };
  } finally {
    await store.releaseLease(lease).catch(() => undefined);
  }
}
