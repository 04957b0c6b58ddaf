import type { Change, Snapshot } from "./change.js";
import type { NxsError } from "./errors.js";
import type { DocId, ReplicaId } from "./ids.js";
import type { VersionVector } from "./version-vector.js";

/** A remote change that was refused, with the typed reason. The document is unchanged by it. */
export interface RejectedChange {
  /** The input as received (it may not even be a well-formed change). */
  readonly input: unknown;
  readonly error: NxsError;
}

/** What {@link ReplicatedDoc.applyRemote} did with a batch. */
export interface ApplyResult {
  /** Changes applied now (including held ones whose gap this batch filled), in apply order. */
  readonly applied: readonly Change[];
  /** Changes already applied before (ignored: applying is idempotent). */
  readonly duplicates: number;
  /** Changes held because an earlier seq of their origin is missing. */
  readonly held: number;
  /** Changes refused (quarantined): malformed, too far in the future, invalid under the schema. */
  readonly rejected: readonly RejectedChange[];
}

/**
 * The part of a document the sync engine (`createReplica`) and adapters rely on, independent of
 * the document's type. `createDoc` returns a `Doc<T>` that extends it.
 */
export interface ReplicatedDoc {
  readonly docId: DocId;
  readonly replicaId: ReplicaId;
  /** What this document has applied: per origin, the highest contiguous seq. */
  version(): VersionVector;
  /**
   * Validates and applies remote changes (any order, duplicates allowed). Never throws for bad
   * input: bad changes are returned in `rejected` and leave the state untouched.
   */
  applyRemote(changes: readonly unknown[]): ApplyResult;
  /** The retained changes that `since` lacks, in an order that applies without gaps. */
  changesSince(since: VersionVector): readonly Change[];
  /** Per origin, the seqs this document waits for (held changes sit past a gap). Empty if none. */
  gaps(): VersionVector;
  /** Encodes the full state with the metadata needed to merge later changes. */
  snapshot(): Snapshot;
  /**
   * Drops retained changes and tombstones covered by `frontier` (the causal-stability frontier:
   * what every live replica has acknowledged). Changes above it stay available to `changesSince`.
   */
  compact(frontier: VersionVector): void;
  /** Called with each local change as it is made (the engine puts it in the outbox). */
  onLocalChange(listener: (change: Change) => void): () => void;
}
