import type { DocId, Hlc, ReplicaId } from "../clock/ids.js";
import type { VersionVector } from "../clock/version-vector.js";

/** A JSON value: what a document leaf, an op value and a snapshot may hold. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/** A path into a document: object keys from the root. Arrays are whole values, so no indices. */
export type Path = readonly string[];

/** The kinds of op, as a const object plus a derived union. */
export const OpKind = {
  /** Last-writer-wins set of the value at `path` (objects are split into one set per leaf). */
  Set: "set",
  /** Delete of `path` and everything below it (a tombstone). */
  Del: "del",
  /** Add `value` (a finite number, may be negative) to the PN-counter at `path`. */
  Inc: "inc",
  /** Add the element `value` to the add-wins set at `path`. */
  Add: "add",
  /** Remove the element `value` from the add-wins set at `path` (only the adds this replica has seen). */
  Rem: "rem",
} as const;
/** The union of op kinds. */
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

/**
 * One elementary edit inside a {@link Change}. Its identity is (change.origin, change.seq, index)
 * and its timestamp the change's HLC.
 */
export type Op =
  | { readonly kind: typeof OpKind.Set; readonly path: Path; readonly value: Json }
  | { readonly kind: typeof OpKind.Del; readonly path: Path }
  | { readonly kind: typeof OpKind.Inc; readonly path: Path; readonly value: number }
  | { readonly kind: typeof OpKind.Add; readonly path: Path; readonly value: Json }
  | {
      readonly kind: typeof OpKind.Rem;
      readonly path: Path;
      readonly value: Json;
      /**
       * The add tags (HLCs of the adding changes) the remover had observed: only those adds are
       * cancelled, so a concurrent add wins. Without it, every add up to this op's stamp is removed.
       */
      readonly tags?: readonly string[];
    };

/**
 * The unit of replication: the ops of one `doc.change()` (or one helper call), applied atomically
 * everywhere. `(doc, origin, seq)` identifies it; `seq` counts from 1 without gaps per origin and doc.
 */
export interface Change {
  readonly doc: DocId;
  readonly origin: ReplicaId;
  readonly seq: number;
  readonly hlc: Hlc;
  readonly ops: readonly Op[];
}

/**
 * A compacted document: the CRDT state (with the metadata still needed to merge later changes)
 * and the version vector it covers. JSON-serialisable as is.
 */
export interface Snapshot {
  /** Format version of `state`. */
  readonly format: 1;
  readonly doc: DocId;
  /** The changes folded into this snapshot. */
  readonly version: VersionVector;
  /** Core-defined JSON encoding of the CRDT state; opaque to adapters. */
  readonly state: Json;
}
