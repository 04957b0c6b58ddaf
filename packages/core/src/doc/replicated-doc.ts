import type { DocId, ReplicaId } from "../clock/ids.js";
import type { VersionVector } from "../clock/version-vector.js";
import type { NxsError } from "../errors/errors.js";
import type { Change, Path, Snapshot } from "../model/change.js";

/** A remote change that was refused, with the typed reason. The document is unchanged by it. */
export interface RejectedChange {
  /** The input as received (it may not even be a well-formed change). */
  readonly input: unknown;
  readonly error: NxsError;
}

/**
 * A remote change that was applied (it is stored, forwarded and snapshotted, and its origin's later
 * changes follow it) although the local schema refuses some of what it wrote: those paths are
 * hidden from the typed state until a schema that accepts them (docs/core.md, "Schema upgrades").
 */
export interface HiddenChange {
  readonly change: Change;
  /** The paths it newly hid (absent from the typed state, or shown as their `initial` value). */
  readonly paths: readonly Path[];
  /** Why: the schema's refusal (`schema/invalid`, with `issues`). */
  readonly error: NxsError;
}

/**
 * What an applied snapshot (a pull page of a server that compacted) newly hid: its state holds
 * values the local schema refuses, a newer schema's or a forgery's (a snapshot is untrusted input,
 * its state is checked against the schema). Hidden as a change's would be (docs/core.md, "Schema
 * upgrades").
 */
export interface HiddenSnapshot {
  /** The snapshot's version (what it claims to cover). */
  readonly version: VersionVector;
  /** The paths it newly hid (absent from the typed state, or shown as their `initial` value). */
  readonly paths: readonly Path[];
  /** Why: the schema's refusal (`schema/invalid`, with `issues`). */
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
  /**
   * Changes refused (quarantined): malformed, too far in the future, of another doc, or invalid
   * under the schema in a way hiding cannot fix (a required value with no fallback).
   */
  readonly rejected: readonly RejectedChange[];
  /**
   * Changes applied (they are in `applied` too) whose values the local schema refuses, each
   * reported once, when it newly hid something. Absent from documents that do not hide.
   */
  readonly hidden?: readonly HiddenChange[];
  /** From `applySnapshot`: what the snapshot's state newly hid. Absent when it hid nothing. */
  readonly snapshotHidden?: HiddenSnapshot;
  /**
   * Changes past a gap not kept because their origin (or the doc) already holds the most it may
   * (`maxHeld` of `createDoc`): not lost, the pull that fills the gap brings them again.
   */
  readonly dropped?: number;
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
  /**
   * How many remote changes this document holds past gaps, waiting for the changes before them.
   * Bounded by `maxHeld` of `createDoc` (1,000 per origin, 20,000 in all by default).
   */
  heldCount(): number;
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
