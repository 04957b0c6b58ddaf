import type { ReplicaId } from "./ids.js";
import { getVersion, intersectVersionVectors, type VersionVector } from "./version-vector.js";

/** What one replica said it had applied (its acknowledged version), e.g. an `nxs_acks` record. */
export interface AckedVersion {
  /** The replica id (the `origin` of its changes). */
  readonly replica: ReplicaId | string;
  /** What it had applied when it said so. */
  readonly version: VersionVector;
}

/** What {@link computeStableFrontier} found. */
export interface StableFrontier {
  /**
   * The frontier to pass to `doc.compact()`, or undefined while none is causally stable here yet
   * (see `waitingFor`).
   */
  readonly frontier: VersionVector | undefined;
  /**
   * Why there is no frontier: live replicas whose changes made before their ack are not all applied
   * here yet, and origins this replica applied changes of that never acknowledged anything (writers
   * outside the frontier). Empty when `frontier` is set.
   */
  readonly waitingFor: readonly string[];
}

/** Options of {@link computeStableFrontier}. */
export interface StableFrontierInput {
  /** This replica's id. */
  readonly self: ReplicaId | string;
  /** What this replica has applied now (`doc.version()`). */
  readonly version: VersionVector;
  /** The acks of every live replica (its own may be among them: it is replaced by `version`). */
  readonly live: readonly AckedVersion[];
  /**
   * Replicas that acknowledged once but were silent longer than the expiry: left out of the frontier
   * (they must re-bootstrap from a snapshot), and not counted as unknown writers.
   */
  readonly expired?: readonly (ReplicaId | string)[];
}

/**
 * The causal-stability frontier one replica may compact its own document with (`doc.compact`):
 * the intersection of its current version and the versions every other live replica acknowledged,
 * provided that every change not covered that can still reach this replica carries a newer stamp
 * than every covered one (the precondition of `compact`, see docs/protocol.md). That holds when,
 * for every live replica `r`, this replica has applied every change `r` made before its ack
 * (`version[r] >= ack[r]`): what `r` makes after its ack was stamped after `r` applied the whole
 * frontier (HLC receive), so it is newer. Otherwise, or when this replica applied changes of an
 * origin that has no ack at all (a writer that does not report, or whose first ack has not reached
 * this server yet), there is no frontier yet. Pure: the caller reads the acks and drops expired ones.
 * @param input - This replica's id and version, the live acks, the expired replicas.
 * @returns The frontier, or why there is none yet.
 * @example
 * ```ts
 * const { frontier } = computeStableFrontier({ self: doc.replicaId, version: doc.version(), live: acks });
 * if (frontier !== undefined) doc.compact(frontier);
 * ```
 */
export function computeStableFrontier(input: StableFrontierInput): StableFrontier {
  const { self, version } = input;
  const others = input.live.filter((a) => a.replica !== self);
  const waiting = new Set<string>();
  for (const a of others) {
    if (getVersion(version, a.replica) < getVersion(a.version, a.replica)) waiting.add(a.replica);
  }
  const known = new Set<string>([self, ...others.map((a) => a.replica), ...(input.expired ?? [])]);
  for (const [origin, seq] of Object.entries(version)) {
    if (seq > 0 && !known.has(origin)) waiting.add(origin);
  }
  if (waiting.size > 0)
    return Object.freeze({ frontier: undefined, waitingFor: Object.freeze([...waiting].sort()) });
  const frontier = intersectVersionVectors([version, ...others.map((a) => a.version)]);
  return Object.freeze({ frontier, waitingFor: Object.freeze([]) });
}
