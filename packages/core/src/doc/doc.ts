import { enablePatches, Immer } from "immer";
import type { z } from "zod";
import type { WallClock } from "../clock/clock.js";
import { createHlcClock, type HlcClock, type HlcParts, hlcNode } from "../clock/hlc.js";
import { type DocId, type Hlc, type ReplicaId, toDocId, toReplicaId } from "../clock/ids.js";
import { dominatesVersionVector, getVersion, type VersionVector } from "../clock/version-vector.js";
import { decodeChange, decodeSnapshot, hlcPartsOf } from "../codec/change-codec.js";
import {
  type BinarySnapshotOptions,
  decodeStateBinary,
  encodeStateBinary,
  isUint8Array,
} from "../codec/snapshot-binary.js";
import { decodeState, encodeState } from "../codec/state-codec.js";
import { AddWinsSetState, elementKey } from "../crdt/add-wins-set.js";
import { CounterState } from "../crdt/counter.js";
import { type DocNode, DocState, hasVisibleMarker } from "../crdt/doc-state.js";
import { MAX_OPS_PER_CHANGE } from "../crdt/stamp.js";
import { rollback, type Undo } from "../crdt/undo.js";
import { ErrorCode, isNxsError, NxsError, ValidationError } from "../errors/errors.js";
import { type Logger, silentLogger } from "../errors/logger.js";
import type { Change, Json, Op, Path, Snapshot } from "../model/change.js";
import { type HiddenPath, HiddenPaths, HiddenReason } from "../model/hidden-paths.js";
import { canonicalJson, isPlainObject, jsonEqual, shareUnchanged, toFrozenJson } from "../model/json.js";
import { checkPath, getAtPath, isPathPrefix, MAX_PATH_DEPTH, topmostPaths } from "../model/path.js";
import {
  fastCheck,
  findUnknownKeys,
  mayBeAbsent,
  NodeKind,
  type SchemaWalk,
  SchemaWalkCache,
  setElementCheck,
  unknownKeyPrefix,
} from "../model/schema.js";
import type {
  CounterPath,
  DeletePath,
  GetPath,
  GetValue,
  SetElement,
  SetOfPath,
  SetPath,
  SetValue,
} from "../model/typed-path.js";
import { ChangeLog } from "./change-log.js";
import { PendingPaths } from "./pending-paths.js";
import type {
  ApplyResult,
  HiddenChange,
  HiddenSnapshot,
  RejectedChange,
  ReplicatedDoc,
} from "./replicated-doc.js";
import { type DraftBase, runRecipe } from "./root-draft.js";
import { findKindConflicts } from "./snapshot-kinds.js";

/**
 * A deeply read-only view of `T` (what {@link Doc.get} returns; the value is also frozen at run
 * time). A homomorphic mapped type, so `Doc<T>` is covariant in `T`.
 */
export type Frozen<T> = { readonly [K in keyof T]: Frozen<T[K]> };

/** A deeply mutable view of `T`: the draft {@link Doc.change} hands to its recipe. */
export type DocDraft<T> = { -readonly [K in keyof T]: DocDraft<T[K]> };

/** Options of {@link createDoc}. */
export interface CreateDocOptions<S extends z.ZodType> {
  /** The zod schema of the whole document (an object schema at the root). */
  readonly schema: S;
  /** The document's id (1 to 64 of `[A-Za-z0-9_.:-]`). */
  readonly docId: DocId | string;
  /** This replica's id, unique across the fleet (same form). */
  readonly replicaId: ReplicaId | string;
  /**
   * The wall clock (ms since the epoch): pass `Date.now` in production. Without it the HLC is purely
   * logical (physical part starting at 0) and the drift limit is measured from the doc's own latest
   * stamp instead: a remote stamp may move the clock `maxDriftMs` ahead at most.
   */
  readonly clock?: WallClock;
  /**
   * How far ahead of `clock` (without one: of the doc's latest stamp) a remote HLC may be (default
   * 60 000 ms).
   */
  readonly maxDriftMs?: number;
  /**
   * Most changes held past a gap per origin (default 1,000) and in all (default 20,000). Past
   * them, the changes furthest from the gap are dropped (counted in `dropped` of the apply result):
   * they are not lost, the pull that fills the gap brings them again. A bound on what a writer that
   * never fills its gap (a hostile or broken one) can make a replica hold.
   */
  readonly maxHeld?: { readonly perOrigin?: number; readonly total?: number };
  /**
   * The initial state, identical on every replica (it is not replicated: it is the state before any
   * change, stamped before every HLC). With `snapshot`, it is not the starting state but still the
   * fallback shown for a required value the schema refuses (docs/core.md, "Schema upgrades"): pass it.
   */
  readonly initial?: z.input<S>;
  /**
   * Starts from a snapshot: the JSON one ({@link ReplicatedDoc.snapshot}) or the bytes of
   * {@link Doc.snapshotBinary} (or `encodeSnapshotBinary`), loaded straight into the CRDT state.
   */
  readonly snapshot?: Snapshot | Uint8Array;
  /** The highest local seq and HLC ever used (from storage), so that a restart never reuses them. */
  readonly last?: { readonly seq: number; readonly hlc: Hlc | string };
  /** Where listener errors are reported (default: silent). */
  readonly logger?: Logger;
}

/**
 * A replicated document of type `T`: read with `get()`, write with `change()` or the path helpers,
 * watch with `subscribe()`, and replicate through the {@link ReplicatedDoc} methods.
 *
 * Its path helpers take any {@link Path}, checked against the schema at run time. `createDoc`
 * returns a {@link TypedDoc}, whose path helpers are also checked at compile time; a `TypedDoc` is
 * a `Doc`, so code that takes a `Doc<T>` (or a `Doc<unknown>`) takes any document.
 */
export interface Doc<out T> extends ReplicatedDoc {
  /**
   * The current state, deeply frozen. Unchanged parts keep their identity between versions, so
   * `===` tells whether a slice changed. A plain object: it can be passed to `structuredClone` or
   * `postMessage`. After writes it is rebuilt, once, on this call (along the paths written; the
   * root object is copied, O(keys of the root)): to read a few values of a wide document, read
   * them by path.
   * @returns The state.
   */
  get(): Frozen<T>;
  /**
   * The value at `path`, deeply frozen (what `get()` shows there), read without rebuilding the
   * whole state: from the state `get()` last built when nothing at, above or below `path` was
   * written since (then it is the same object), else from the replicated state, in O(depth of the
   * path + size of the value).
   * @param path - Object keys from the root (`[]`: the whole state, as `get()`).
   * @returns The value, or undefined when there is none (a key on the way is absent, or a value on
   * the way is not an object).
   * @throws {@link ValidationError} `op/invalid` when `path` is not an array of at most 64 strings
   * (or has a `"__proto__"` segment).
   * @example
   * ```ts
   * doc.set(["routes", "api"], "10.0.0.2");
   * doc.get(["routes", "api"]); // "10.0.0.2", without rebuilding the rest of the state
   * ```
   */
  get(path: Path): unknown;
  /**
   * Edits the state through an immer draft, atomically. The edit becomes one {@link Change}: objects
   * merge per key, counters (declared with `counter()`) turn into increments of the difference, and
   * add-wins sets (`addWinsSet()`) into adds and removes. Only the top-level keys the recipe
   * touches are drafted (an edit of one key of a wide root costs what that key's value costs);
   * enumerating the root draft (`Object.keys`, a spread, `JSON.stringify`) reads the whole state.
   * @param recipe - Mutates the draft, or returns a replacement root object (checked by the schema).
   * @returns The change made, or undefined when nothing changed.
   * @throws {@link ValidationError} `schema/invalid` when the new state does not match the schema
   * (nothing is applied; `issues` and `cause` hold the zod issues), `op/invalid` when the edit
   * cannot be expressed (e.g. a key under a counter). {@link ClockError} `hlc/overflow` only once the
   * clock reaches year 10889 (a received stamp never makes local writes fail).
   */
  change(recipe: (draft: DocDraft<T>) => unknown): Change | undefined;
  /**
   * Sets the value at `path` (the fast path: no draft, only the changed subtree is validated).
   * `undefined` deletes it. Objects merge per key as in `change()`.
   * @param path - Object keys from the root.
   * @param value - The new value (JSON).
   * @returns The change made, or undefined when nothing changed.
   * @throws {@link ValidationError} `schema/invalid` or `op/invalid`, as {@link Doc.change}.
   */
  set(path: Path, value: unknown): Change | undefined;
  /**
   * Deletes the value at `path` (a tombstone: concurrent older writes below it stay hidden).
   * @returns The change made, or undefined when there was nothing.
   * @throws {@link ValidationError} `schema/invalid` when the key is required.
   */
  delete(path: Path): Change | undefined;
  /**
   * Makes one change of several path writes, without a draft (the fast path for bulk writes):
   * writes apply in order, the result is validated once at the end, and an error rolls back all.
   * @param fn - Calls the writer's methods.
   * @returns The change made, or undefined when nothing changed.
   * @throws {@link ValidationError} as {@link Doc.change}; whatever `fn` throws (nothing applied).
   */
  batch(fn: (writer: DocWriter) => void): Change | undefined;
  /**
   * Adds `by` to the counter at `path`.
   * @returns The change made, or undefined when `by` is 0 and the counter exists.
   * @throws {@link ValidationError} `op/invalid` when `path` is not a counter, `schema/invalid`.
   */
  increment(path: Path, by?: number): Change | undefined;
  /**
   * Adds an element to the add-wins set at `path`.
   * @returns The change made, or undefined when the element is already present.
   * @throws {@link ValidationError} `op/invalid` when `path` is not a set, `schema/invalid`.
   */
  add(path: Path, element: Json): Change | undefined;
  /**
   * Removes an element from the add-wins set at `path` (the adds seen so far; a concurrent add wins).
   * @returns The change made, or undefined when the element is absent.
   * @throws {@link ValidationError} `op/invalid` when `path` is not a set, `schema/invalid`.
   */
  remove(path: Path, element: Json): Change | undefined;
  /**
   * Merges a snapshot (e.g. a server's, after it compacted the changes this replica lacks): the
   * state becomes the snapshot's plus every change applied here that it lacks. Never throws.
   * @param snapshot - A snapshot of this document.
   * @returns Held changes that became applicable; a refused snapshot is in `rejected` (`op/invalid`
   * for another doc or when this replica compacted changes the snapshot lacks, `schema/invalid` for
   * a malformed one), and `duplicates` is 1 when the snapshot brought nothing new.
   */
  applySnapshot(snapshot: Snapshot): ApplyResult;
  /**
   * The snapshot in the binary form (docs/protocol.md, "Binary snapshots"), written from the CRDT
   * state directly: the same content as {@link ReplicatedDoc.snapshot}, a fraction of the bytes.
   * Load it with `createDoc({ snapshot: bytes })`; `decodeSnapshotBinary` turns it into the JSON
   * snapshot.
   * @param options - `compress` (default true): deflate the columns.
   * @returns The bytes.
   * @example
   * ```ts
   * const bytes = doc.snapshotBinary();
   * const copy = createDoc({ schema, docId: doc.docId, replicaId: "node-b", snapshot: bytes });
   * ```
   */
  snapshotBinary(options?: BinarySnapshotOptions): Uint8Array;
  /**
   * Calls `listener` after each local change or applied remote batch whose selected slice changed
   * (by `Object.is`).
   * @param selector - Picks a slice of the state (return existing references, not new objects).
   * @param listener - Receives the new and the previous slice.
   * @returns The function that unsubscribes.
   */
  subscribe<S>(selector: (state: Frozen<T>) => S, listener: (next: S, prev: S) => void): () => void;
  /**
   * The paths of the replicated state that `get()` does not show as they are, because this
   * document's schema refuses them (values or keys of a newer schema, see docs/core.md, "Schema
   * upgrades"). They are kept, forwarded and snapshotted; a doc on a schema that accepts them shows them.
   * @returns The hidden paths, each absent from `get()` or shown as its `fallback`.
   */
  hidden(): readonly HiddenPath[];
}

interface Subscriber {
  readonly selector: (state: never) => unknown;
  readonly listener: (next: unknown, prev: unknown) => void;
  last: unknown;
}

const EMPTY_PATH: Path = Object.freeze([]);
const EMPTY_OBJECT: Json = Object.freeze({});
const EMPTY_ARRAY: Json = Object.freeze([]);
/**
 * Paths written since the last read are kept to re-materialize just them; past this many the next
 * read re-materializes the whole state instead (a writer that never reads retains no paths).
 */
const MAX_PENDING_PATHS = 1024;
/**
 * A counter whose magnitude plus every increment of a run stays below this cannot reach a
 * non-finite value (the largest float is ~1.8e308; rounding moves a sum by far less).
 */
const SAFE_COUNTER_BOUND = 1e300;

/** At most this many rounds of hiding refused values after one change (each round hides at least one path). */
const MAX_HIDE_ROUNDS = 64;

/** Whether every path is one key of the root (none is the root itself). */
function allOneSegment(paths: readonly Path[]): boolean {
  for (let k = 0; k < paths.length; k++) if ((paths[k] as Path).length !== 1) return false;
  return true;
}

/** The path of a zod issue as a document path: object keys, cut at the first array index. */
function refusedPath(issuePath: readonly PropertyKey[]): Path {
  const out: string[] = [];
  for (const seg of issuePath) {
    if (typeof seg !== "string") break;
    out.push(seg);
  }
  return Object.freeze(out);
}

/** What {@link DocImpl.#setEdit} returns for an add or remove that changes nothing. */
const SET_NO_OP = Symbol("set-no-op");

const sameHidden = (a: HiddenPath | undefined, b: HiddenPath): boolean =>
  a !== undefined && a.reason === b.reason && jsonEqual(a.fallback, b.fallback);

/** A local change being built: its stamp, ops so far, and how to undo them. */
interface Tx {
  readonly origin: string;
  readonly hlc: Hlc;
  readonly ops: Op[];
  readonly undo: Undo;
  readonly touched: Path[];
}

/**
 * A document whose path helpers are typed from its zod schema type `S` (what {@link createDoc}
 * returns): `set` takes only paths of the schema and values of the type there, `delete` only
 * optional keys and record entries, `increment` only counters, `add`/`remove` only add-wins sets
 * and their elements (docs/core.md, "Typed paths"). Each call checks only the path it is given.
 * @typeParam T - The state type (`z.output<S>`).
 * @typeParam S - The schema type (`typeof schema`).
 * @example
 * ```ts
 * import { z } from "zod";
 * import { addWinsSet, counter, createDoc } from "@nxs-sync/core";
 *
 * const schema = z.object({ hits: counter(), tags: addWinsSet(z.string()) });
 * const doc = createDoc({ schema, docId: "d", replicaId: "a", initial: { hits: 0, tags: [] } });
 * doc.increment(["hits"]);
 * doc.add(["tags"], "blue");
 * // @ts-expect-error: "tags" is not a counter
 * doc.increment(["tags"]);
 * ```
 */
export interface TypedDoc<out T, S> extends Doc<T> {
  /**
   * As {@link Doc.get}.
   * @returns The state.
   */
  get(): Frozen<T>;
  /**
   * As {@link Doc.get} with a path, typed: the path must lead somewhere in the schema, and the
   * value is of the schema's type there (or undefined).
   * @param path - Keys of the schema from the root (a record's entry: any string; `[]`: the root).
   * @returns The frozen value at `path`, or undefined.
   * @throws {@link ValidationError} as {@link Doc.get}.
   */
  get<const P extends Path>(
    path: P & GetPath<S, P>,
  ): unknown extends GetValue<S, P> ? unknown : Frozen<GetValue<S, P>>;
  /**
   * As {@link Doc.set}, typed.
   * @param path - Keys of the schema from the root (a record's entry: any string).
   * @param value - A value of the schema's type at `path` (`undefined`, which deletes, where the key
   * may be absent).
   * @returns The change made, or undefined when nothing changed.
   * @throws {@link ValidationError} as {@link Doc.set} (refinements are checked at run time only).
   */
  set<const P extends Path>(path: P & SetPath<S, P>, value: NoInfer<SetValue<S, P>>): Change | undefined;
  /**
   * As {@link Doc.delete}, typed.
   * @param path - An optional key (or one with a default), or an entry of a record or catchall.
   * @returns The change made, or undefined when there was nothing.
   * @throws {@link ValidationError} as {@link Doc.delete}.
   */
  delete<const P extends Path>(path: P & DeletePath<S, P>): Change | undefined;
  /**
   * As {@link Doc.batch}, with a typed writer.
   * @param fn - Calls the writer's methods.
   * @returns The change made, or undefined when nothing changed.
   * @throws {@link ValidationError} as {@link Doc.batch}; whatever `fn` throws (nothing applied).
   */
  batch(fn: (writer: TypedDocWriter<S>) => void): Change | undefined;
  /**
   * As {@link Doc.increment}, typed.
   * @param path - A field declared with `counter()`.
   * @param by - The amount (default 1).
   * @returns The change made, or undefined when `by` is 0 and the counter exists.
   * @throws {@link ValidationError} as {@link Doc.increment}.
   */
  increment<const P extends Path>(path: P & CounterPath<S, P>, by?: number): Change | undefined;
  /**
   * As {@link Doc.add}, typed.
   * @param path - A field declared with `addWinsSet()`.
   * @param element - An element of the set's element type.
   * @returns The change made, or undefined when the element is already present.
   * @throws {@link ValidationError} as {@link Doc.add}.
   */
  add<const P extends Path>(
    path: P & SetOfPath<S, P>,
    element: NoInfer<SetElement<S, P>>,
  ): Change | undefined;
  /**
   * As {@link Doc.remove}, typed.
   * @param path - A field declared with `addWinsSet()`.
   * @param element - An element of the set's element type.
   * @returns The change made, or undefined when the element is absent.
   * @throws {@link ValidationError} as {@link Doc.remove}.
   */
  remove<const P extends Path>(
    path: P & SetOfPath<S, P>,
    element: NoInfer<SetElement<S, P>>,
  ): Change | undefined;
}

/** Writes inside {@link Doc.batch}; each call appends ops to the one change the batch makes. */
export interface DocWriter {
  /** As {@link Doc.set}. */
  set(path: Path, value: unknown): void;
  /** Deletes the value at `path`. */
  delete(path: Path): void;
  /** As {@link Doc.increment}. */
  increment(path: Path, by?: number): void;
  /** As {@link Doc.add}. */
  add(path: Path, element: Json): void;
  /** As {@link Doc.remove}. */
  remove(path: Path, element: Json): void;
}

/** The writer of {@link TypedDoc.batch}: the methods of {@link DocWriter}, typed as those of {@link TypedDoc}. */
export interface TypedDocWriter<S> extends DocWriter {
  /** As {@link TypedDoc.set}. */
  set<const P extends Path>(path: P & SetPath<S, P>, value: NoInfer<SetValue<S, P>>): void;
  /** As {@link TypedDoc.delete}. */
  delete<const P extends Path>(path: P & DeletePath<S, P>): void;
  /** As {@link TypedDoc.increment}. */
  increment<const P extends Path>(path: P & CounterPath<S, P>, by?: number): void;
  /** As {@link TypedDoc.add}. */
  add<const P extends Path>(path: P & SetOfPath<S, P>, element: NoInfer<SetElement<S, P>>): void;
  /** As {@link TypedDoc.remove}. */
  remove<const P extends Path>(path: P & SetOfPath<S, P>, element: NoInfer<SetElement<S, P>>): void;
}

/**
 * Immer without auto-freeze: a recipe's results become ops and are not kept (the state shown is
 * rebuilt from the replicated state), so there is nothing to freeze.
 */
const immer = new Immer({ autoFreeze: false });

/**
 * A shallow copy of a plain object. A loop over its keys: on a wide object (V8 keeps one of more
 * than ~1,000 keys in dictionary mode) it takes about 0.6 of the time of a spread.
 */
function copyObject(o: { readonly [key: string]: Json }): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const k of Object.keys(o)) {
    // An own "__proto__" key stays a key (an assignment would set the prototype).
    if (k === "__proto__")
      Object.defineProperty(out, k, { value: o[k], enumerable: true, writable: true, configurable: true });
    else out[k] = o[k] as Json;
  }
  return out;
}

function prefixIssues(prefix: Path, error: z.ZodError): { path: PropertyKey[]; message: string }[] {
  return error.issues.map((i) => ({ path: [...prefix, ...i.path], message: i.message }));
}

class DocImpl<T> implements Doc<T> {
  readonly docId: DocId;
  readonly replicaId: ReplicaId;
  readonly #schema: z.ZodType;
  readonly #clock: HlcClock;
  readonly #logger: Logger;
  /** The `initial` option as JSON: what a refused required value falls back to. */
  readonly #initial: Json | undefined;
  /** Paths of the CRDT state that the typed state hides (see docs/core.md, "Schema upgrades"). */
  readonly #hidden = new HiddenPaths();
  /** What the last remote commit newly hid, and why. */
  #newlyHidden: { paths: Path[]; error: ValidationError | undefined } = { paths: [], error: undefined };
  #crdt: DocState;
  #log: ChangeLog;
  #state: { readonly [key: string]: Json };
  /** Paths written since `#state` was built. */
  readonly #pending = new PendingPaths(MAX_PENDING_PATHS);
  /** What a `change()` recipe's draft reads. */
  readonly #draftBase: DraftBase = {
    at: (key) => this.#read([key]),
    all: () => this.get() as { readonly [key: string]: Json },
  };
  #localSeq: number;
  #tx: Tx | undefined;
  /** Schema walks by path, for the life of the document (the schema never changes). */
  readonly #walkCache: SchemaWalkCache;
  readonly #held = new Map<string, Map<number, Change>>();
  readonly #maxHeldPerOrigin: number;
  readonly #maxHeldTotal: number;
  #heldTotal = 0;
  readonly #subs = new Set<Subscriber>();
  readonly #localListeners = new Set<(change: Change) => void>();

  constructor(options: CreateDocOptions<z.ZodType>) {
    enablePatches();
    this.docId = toDocId(options.docId);
    this.replicaId = toReplicaId(options.replicaId);
    this.#schema = options.schema;
    this.#walkCache = new SchemaWalkCache(options.schema);
    this.#maxHeldPerOrigin = Math.max(1, options.maxHeld?.perOrigin ?? 1_000);
    this.#maxHeldTotal = Math.max(1, options.maxHeld?.total ?? 20_000);
    this.#logger = options.logger ?? silentLogger;
    this.#initial =
      options.initial === undefined ? undefined : toFrozenJson(options.initial, { path: [], message: "" });
    if (isUint8Array(options.snapshot)) {
      const { doc, version, state, extra } = decodeStateBinary(options.snapshot);
      if (doc !== this.docId) {
        throw new ValidationError(`snapshot is of doc ${doc}, not ${this.docId}`, {
          code: ErrorCode.OpInvalid,
        });
      }
      this.#crdt = state;
      this.#log = ChangeLog.fromVersion(version, extra, (o) => state.lastHlc.get(o));
    } else if (options.snapshot !== undefined) {
      const snap = decodeSnapshot(options.snapshot);
      if (snap.doc !== this.docId) {
        throw new ValidationError(`snapshot is of doc ${snap.doc}, not ${this.docId}`, {
          code: ErrorCode.OpInvalid,
        });
      }
      const { state, extra } = decodeState(snap.state);
      this.#crdt = state;
      this.#log = ChangeLog.fromVersion(snap.version, extra, (o) => state.lastHlc.get(o));
    } else {
      this.#crdt = new DocState();
      this.#log = new ChangeLog();
      if (options.initial !== undefined) this.#writeInitial(options.initial);
    }
    if (options.snapshot !== undefined) {
      // A snapshot may hold values of a newer schema: they are hidden, not refused.
      const { error } = this.#hideAll();
      if (error !== undefined) throw error;
    }
    this.#state = this.#typedAt(EMPTY_PATH) as { readonly [key: string]: Json };
    const fast = fastCheck(this.#schema);
    const r =
      options.snapshot !== undefined || fast?.(this.#state)
        ? { success: true as const }
        : this.#schema.safeParse(this.#state);
    if (!r.success) {
      throw new ValidationError(`initial state does not match the schema: ${r.error.issues[0]?.message}`, {
        cause: r.error,
        issues: prefixIssues(EMPTY_PATH, r.error),
      });
    }
    // The clock starts after every stamp known.
    let last: string | undefined = options.last?.hlc;
    for (const h of this.#crdt.lastHlc.values())
      if (last === undefined || h.slice(0, 18) > last.slice(0, 18)) last = h;
    this.#clock = createHlcClock({
      replicaId: this.replicaId,
      ...(options.clock === undefined ? {} : { now: options.clock }),
      maxDriftMs: options.maxDriftMs ?? 60_000,
      ...(last === undefined ? {} : { last }),
    });
    let seq = Math.max(options.last?.seq ?? 0, this.#log.vv.get(this.replicaId) ?? 0);
    for (const s of this.#log.extra.get(this.replicaId) ?? []) seq = Math.max(seq, s);
    this.#localSeq = seq;
  }

  #writeInitial(initial: unknown): void {
    const why = { path: [] as PropertyKey[], message: "" };
    const value = toFrozenJson(initial, why);
    if (value === undefined || !isPlainObject(value)) {
      throw new ValidationError(`initial state is not a JSON object: ${why.message}`, {
        issues: [{ path: why.path, message: why.message || "not an object" }],
      });
    }
    // The initial state is written at the stamp ("", index) by no origin: before every change.
    const tx: Tx = { origin: "", hlc: "" as Hlc, ops: [], undo: [], touched: [] };
    this.#diffObject(tx, EMPTY_PATH, undefined, value);
  }

  // ---------------------------------------------------------------- reading

  get(): Frozen<T>;
  get(path: Path): unknown;
  get(path?: Path): unknown {
    if (path === undefined || (Array.isArray(path) && path.length === 0)) {
      if (!this.#pending.isEmpty) {
        this.#state = this.#stage(this.#pending.paths());
        this.#pending.clear();
      }
      return this.#state as Frozen<T>;
    }
    this.#checkLocalPath(path);
    return this.#read(path);
  }

  /**
   * The value at `path` as `get()` shows it, without rebuilding the state: from `#state` when no
   * write since it was built reaches `path`, else from the replicated state.
   */
  #read(path: Path): Json | undefined {
    if (this.#pending.isEmpty || (this.#hidden.size === 0 && !this.#pending.overlaps(path)))
      return getAtPath(this.#state, path);
    return this.#typedAt(path);
  }

  /** Folds the values at `paths` into a copy of the materialized state (copying each container once). */
  #stage(paths: Path[]): { readonly [key: string]: Json } {
    const tops = topmostPaths(
      this.#hidden.size === 0 ? paths : paths.map((p) => this.#hidden.covering(p)?.path ?? p),
    );
    if (tops.length === 1 && (tops[0] as Path).length === 0) {
      // The whole state again: slices equal to the current ones stay the same objects.
      return shareUnchanged(this.#state, this.#typedAt(EMPTY_PATH) as Json) as { [key: string]: Json };
    }
    const fresh = new Set<object>();
    const root = copyObject(this.#state);
    fresh.add(root);
    each: for (const p of tops) {
      if (p.length === 0) continue;
      const v = this.#typedAt(p);
      let obj: Record<string, Json> = root;
      for (let j = 0; j < p.length - 1; j++) {
        const k = p[j] as string;
        let c = obj[k];
        if (!isPlainObject(c)) {
          // Nothing to remove below a container that is not there.
          if (v === undefined) continue each;
          c = {};
          fresh.add(c);
        } else if (!fresh.has(c)) {
          c = { ...c };
          fresh.add(c);
        }
        obj[k] = c;
        obj = c as Record<string, Json>;
      }
      const last = p[p.length - 1] as string;
      if (v === undefined) delete obj[last];
      else obj[last] = v;
    }
    for (const o of fresh) Object.freeze(o);
    return root;
  }

  /** The value at `path` as the typed state shows it: the CRDT value without what is hidden. */
  #typedAt(path: Path): Json | undefined {
    const v = this.#crdt.valueAt(path);
    return this.#hidden.size === 0 ? v : this.#hidden.project(path, v);
  }

  hidden(): readonly HiddenPath[] {
    return Object.freeze(this.#hidden.all());
  }

  subscribe<S>(selector: (state: Frozen<T>) => S, listener: (next: S, prev: S) => void): () => void {
    const sub: Subscriber = {
      selector: selector as (state: never) => unknown,
      listener: listener as (next: unknown, prev: unknown) => void,
      last: selector(this.get()),
    };
    this.#subs.add(sub);
    return () => {
      this.#subs.delete(sub);
    };
  }

  #notify(): void {
    if (this.#subs.size === 0) return;
    const state = this.get() as never;
    for (const sub of [...this.#subs]) {
      if (!this.#subs.has(sub)) continue;
      let next: unknown;
      try {
        next = sub.selector(state);
      } catch (e) {
        this.#logger.error("nxs-sync: a subscribe selector threw", e);
        continue;
      }
      if (Object.is(next, sub.last)) continue;
      const prev = sub.last;
      sub.last = next;
      try {
        sub.listener(next, prev);
      } catch (e) {
        this.#logger.error("nxs-sync: a subscribe listener threw", e);
      }
    }
  }

  // ---------------------------------------------------------------- local writes

  change(recipe: (draft: DocDraft<T>) => unknown): Change | undefined {
    const out = runRecipe(immer, this.#draftBase, recipe as (draft: never) => unknown);
    if (out.kind === "replace") {
      const { root } = out;
      const base = this.get() as unknown as Json;
      return this.#transact((tx) => {
        if (!isPlainObject(root)) throw new ValidationError("the document root must be an object");
        this.#diffObject(tx, EMPTY_PATH, base, root);
      });
    }
    const { paths, before, after } = out;
    if (paths.length === 0) return undefined;
    const dirty = topmostPaths(paths);
    return this.#transact((tx) => {
      for (const p of dirty) this.#diff(tx, p, getAtPath(before, p), getAtPath(after, p));
    });
  }

  batch(fn: (writer: DocWriter) => void): Change | undefined {
    return this.#transact((tx) => {
      const writer: DocWriter = {
        set: (path, value) => this.#set(tx, path, value),
        delete: (path) => this.#set(tx, path, undefined),
        increment: (path, by) => this.#increment(tx, path, by),
        add: (path, element) => this.#add(tx, path, element),
        remove: (path, element) => this.#remove(tx, path, element),
      };
      fn(writer);
    });
  }

  set(path: Path, value: unknown): Change | undefined {
    return this.#transact((tx) => this.#set(tx, path, value));
  }

  delete(path: Path): Change | undefined {
    return this.#transact((tx) => this.#set(tx, path, undefined));
  }

  increment(path: Path, by = 1): Change | undefined {
    return this.#transact((tx) => this.#increment(tx, path, by));
  }

  add(path: Path, element: Json): Change | undefined {
    if (this.#tx !== undefined) return this.#transact((tx) => this.#add(tx, path, element));
    // An element already present: no change, no transaction, no stamp.
    const edit = this.#setEdit(path, element, true);
    if (edit === SET_NO_OP) return undefined;
    return this.#transact((tx) => this.#add(tx, path, element, edit));
  }

  remove(path: Path, element: Json): Change | undefined {
    if (this.#tx !== undefined) return this.#transact((tx) => this.#remove(tx, path, element));
    // An element not present: no change, no transaction, no stamp.
    const edit = this.#setEdit(path, element, false);
    if (edit === SET_NO_OP) return undefined;
    return this.#transact((tx) => this.#remove(tx, path, element, edit));
  }

  #set(tx: Tx, path: Path, value: unknown): void {
    this.#checkLocalPath(path);
    const p = Object.isFrozen(path) ? path : Object.freeze([...path]);
    // The typed value: a write never deletes what this schema does not show.
    this.#diff(tx, p, this.#typedAt(p), value);
  }

  #increment(tx: Tx, path: Path, by = 1): void {
    this.#checkLocalPath(path);
    const p = Object.freeze([...path]);
    const w = this.#walk(p);
    if (this.#kindOf(p, w) !== NodeKind.Counter) {
      throw new ValidationError(`${JSON.stringify(path)} is not a counter`, { code: ErrorCode.OpInvalid });
    }
    if (typeof by !== "number" || !Number.isFinite(by))
      throw new ValidationError(`increment by ${by}: not a finite number`);
    if (by === 0 && this.#crdt.valueAt(p) !== undefined) return;
    this.#push(tx, { kind: "inc", path: p, value: by === 0 ? 0 : by }, NodeKind.Counter);
  }

  /**
   * Checks a local add (`adding`) or remove of `element` at `path` as {@link #add} and
   * {@link #remove} do (a bad path, a path that is not an add-wins set, an element that is not JSON
   * throw), and reads the set's element index when the set shows as an array: {@link SET_NO_OP}
   * when the op would change nothing (an add of a present element, a remove of an absent one), the
   * op to push, or undefined when the set does not show as an array (the typed array is diffed).
   */
  #setEdit(path: Path, element: Json, adding: boolean): Op | typeof SET_NO_OP | undefined {
    this.#checkLocalPath(path);
    const p = Object.freeze([...path]);
    if (this.#kindOf(p, this.#walk(p)) !== NodeKind.Set) {
      throw new ValidationError(`${JSON.stringify(path)} is not an add-wins set`, {
        code: ErrorCode.OpInvalid,
      });
    }
    const set = this.#visibleSet(p);
    if (set === undefined) return undefined;
    if (!adding) {
      // Remove the tags this replica has seen of the element, if it is present.
      const el = set.elements.get(elementKey(element));
      if (el === undefined || el.tags.size === 0) return SET_NO_OP;
      return { kind: "rem", path: p, value: el.value, tags: Object.freeze([...el.tags.keys()]) };
    }
    // The set shows as an array: add the element unless it is present (no array is built).
    const value = toFrozenJson(element);
    if (value === undefined) {
      const why = { path: [] as PropertyKey[], message: "" };
      toFrozenJson(element, why);
      throw new ValidationError(`set element at ${JSON.stringify(p)} is not JSON: ${why.message}`, {
        issues: [{ path: [...p], message: why.message }],
      });
    }
    return set.has(elementKey(value)) ? SET_NO_OP : { kind: "add", path: p, value };
  }

  /** @param edit - What {@link #setEdit} found just before the transaction began (else it is run here). */
  #add(tx: Tx, path: Path, element: Json, edit = this.#setEdit(path, element, true)): void {
    if (edit === SET_NO_OP) return;
    if (edit !== undefined) {
      this.#push(tx, edit, NodeKind.Set);
      return;
    }
    const p = Object.freeze([...path]);
    const cur = this.#typedAt(p);
    this.#diffSet(tx, p, cur, Array.isArray(cur) ? [...cur, element] : [element]);
  }

  /**
   * The state of the add-wins set at `path` when the typed state shows it as an array (nothing is
   * hidden, and it has elements or a visible marker); else undefined.
   */
  #visibleSet(path: Path): AddWinsSetState | undefined {
    if (this.#hidden.size > 0) return undefined;
    const n = this.#crdt.nodeAt(path);
    const x = n?.x;
    if (!(x instanceof AddWinsSetState)) return undefined;
    return x.size() > 0 || hasVisibleMarker(n as DocNode) ? x : undefined;
  }

  /** @param edit - What {@link #setEdit} found just before the transaction began (else it is run here). */
  #remove(tx: Tx, path: Path, element: Json, edit = this.#setEdit(path, element, false)): void {
    if (edit === SET_NO_OP) return;
    if (edit !== undefined) {
      this.#push(tx, edit, NodeKind.Set);
      return;
    }
    const p = Object.freeze([...path]);
    const cur = this.#typedAt(p);
    if (!Array.isArray(cur)) return;
    const key = canonicalJson(element);
    this.#diffSet(
      tx,
      p,
      cur,
      cur.filter((e) => canonicalJson(e) !== key),
    );
  }

  #checkLocalPath(path: Path): void {
    const bad = checkPath(path);
    if (bad !== undefined)
      throw new ValidationError(`bad path ${JSON.stringify(path)}: ${bad}`, { code: ErrorCode.OpInvalid });
  }

  /** Walks the schema to `path`; throws when the path cannot exist. */
  #walk(path: Path): SchemaWalk {
    const w = this.#walkCache.walk(path);
    if (w.invalid !== undefined) {
      throw new ValidationError(`path ${JSON.stringify(path)} does not fit the schema: ${w.invalid}`, {
        issues: [{ path: [...path], message: w.invalid }],
      });
    }
    return w;
  }

  #kindOf(path: Path, w: SchemaWalk): NodeKind {
    if (w.kind !== undefined) return w.kind;
    const n = this.#crdt.nodeAt(path);
    if (n?.x instanceof CounterState) return NodeKind.Counter;
    if (n?.x instanceof AddWinsSetState) return NodeKind.Set;
    return NodeKind.Plain;
  }

  /** Appends (and applies) the ops that turn `old` into `next` at `path`. */
  #diff(tx: Tx, path: Path, old: Json | undefined, next: unknown): void {
    if (Object.is(old, next)) return;
    const kind = this.#kindOf(path, this.#walk(path));
    if (next === undefined) {
      if (old !== undefined) this.#push(tx, { kind: "del", path }, kind);
      return;
    }
    if (kind === NodeKind.Counter) {
      if (typeof next !== "number" || !Number.isFinite(next)) {
        throw new ValidationError(`counter ${JSON.stringify(path)} must be a finite number`, {
          issues: [{ path: [...path], message: "expected a finite number" }],
        });
      }
      const d = typeof old === "number" ? next - old : next;
      if (d !== 0 || typeof old !== "number")
        this.#push(tx, { kind: "inc", path, value: d === 0 ? 0 : d }, kind);
      return;
    }
    if (kind === NodeKind.Set) {
      this.#diffSet(tx, path, old, next);
      return;
    }
    if (isPlainObject(next)) {
      this.#diffObject(tx, path, old, next);
      return;
    }
    if (
      typeof next === "string" ||
      typeof next === "boolean" ||
      (typeof next === "number" && Number.isFinite(next))
    ) {
      // -0 is stored as 0 (toFrozenJson does the same): JSON, and so every encoding, has no -0.
      if (old !== next) this.#push(tx, { kind: "set", path, value: next === 0 ? 0 : next }, kind);
      return;
    }
    const why = { path: [] as PropertyKey[], message: "" };
    const value = toFrozenJson(next, why);
    if (value === undefined) {
      throw new ValidationError(
        `value at ${JSON.stringify([...path, ...why.path])} is not JSON: ${why.message}`,
        {
          issues: [{ path: [...path, ...why.path], message: why.message }],
        },
      );
    }
    if (!jsonEqual(old, value)) this.#push(tx, { kind: "set", path, value }, kind);
  }

  #diffObject(tx: Tx, path: Path, old: Json | undefined, next: unknown): void {
    const nextObj = next as Record<string, unknown>;
    const oldObj = isPlainObject(old) ? old : undefined;
    if (path.length > 0) {
      const n = this.#crdt.nodeAt(path);
      if (oldObj === undefined || n === undefined || !hasVisibleMarker(n)) {
        this.#push(tx, { kind: "set", path, value: EMPTY_OBJECT }, NodeKind.Plain);
      }
    }
    if (oldObj !== undefined) {
      for (const k of Object.keys(oldObj)) {
        if (nextObj[k] === undefined)
          this.#push(tx, { kind: "del", path: Object.freeze([...path, k]) }, undefined);
      }
    }
    for (const k of Object.keys(nextObj)) {
      const v = nextObj[k];
      if (v === undefined) continue;
      if (k === "__proto__")
        throw new ValidationError('the key "__proto__" is not allowed', { code: ErrorCode.OpInvalid });
      // The path rule of every op (checkPath, which peers apply too): a nested value must not
      // make paths deeper than a top-level path may be.
      if (path.length >= MAX_PATH_DEPTH)
        throw new ValidationError(
          `a value nested below ${JSON.stringify(path.slice(0, 4))}… is deeper than ${MAX_PATH_DEPTH}`,
          {
            code: ErrorCode.OpInvalid,
          },
        );
      const ov = oldObj?.[k];
      if (Object.is(ov, v)) continue;
      this.#diff(tx, Object.freeze([...path, k]), ov, v);
    }
  }

  #diffSet(tx: Tx, path: Path, old: Json | undefined, next: unknown): void {
    if (!Array.isArray(next)) {
      throw new ValidationError(`add-wins set ${JSON.stringify(path)} must be an array`, {
        issues: [{ path: [...path], message: "expected an array" }],
      });
    }
    const oldKeys = new Set<string>();
    if (Array.isArray(old)) for (const e of old) oldKeys.add(canonicalJson(e));
    else this.#push(tx, { kind: "set", path, value: EMPTY_ARRAY }, NodeKind.Set);
    const nextKeys = new Set<string>();
    for (const e of next) {
      const why = { path: [] as PropertyKey[], message: "" };
      const value = toFrozenJson(e, why);
      if (value === undefined) {
        throw new ValidationError(`set element at ${JSON.stringify(path)} is not JSON: ${why.message}`, {
          issues: [{ path: [...path], message: why.message }],
        });
      }
      const key = canonicalJson(value);
      if (nextKeys.has(key)) continue;
      nextKeys.add(key);
      if (!oldKeys.has(key)) this.#push(tx, { kind: "add", path, value }, NodeKind.Set);
    }
    if (Array.isArray(old)) {
      const node = this.#crdt.nodeAt(path);
      const set = node?.x instanceof AddWinsSetState ? node.x : undefined;
      for (const e of old) {
        const key = canonicalJson(e);
        if (nextKeys.has(key)) continue;
        this.#push(
          tx,
          { kind: "rem", path, value: e, tags: Object.freeze(set?.tagsOf(key) ?? []) },
          NodeKind.Set,
        );
      }
    }
  }

  /** Applies a local op at once (later ops of the same change see it) and records it in `tx`. */
  #push(tx: Tx, op: Op, kind: NodeKind | undefined): void {
    if (tx.ops.length >= MAX_OPS_PER_CHANGE) {
      throw new ValidationError(`a change may hold at most ${MAX_OPS_PER_CHANGE} ops`, {
        code: ErrorCode.OpInvalid,
      });
    }
    Object.freeze(op);
    const r = this.#crdt.apply(op, tx.origin, tx.hlc, tx.ops.length, kind, tx.undo, tx.touched);
    if (typeof r === "string") {
      throw new ValidationError(`op at ${JSON.stringify(op.path)}: ${r}`, {
        code: ErrorCode.OpInvalid,
        issues: [{ path: [...op.path], message: r }],
      });
    }
    tx.ops.push(op);
  }

  /** Runs local writes as one atomic change: applied as they come, validated at the end, rolled back on error. */
  #transact(fn: (tx: Tx) => void): Change | undefined {
    if (this.#tx !== undefined)
      throw new ValidationError("a change is already in progress (no nested changes)", {
        code: ErrorCode.OpInvalid,
      });
    const tx: Tx = { origin: this.replicaId, hlc: this.#clock.now(), ops: [], undo: [], touched: [] };
    this.#tx = tx;
    let change: Change;
    try {
      fn(tx);
      if (tx.ops.length === 0) {
        rollback(tx.undo);
        return undefined;
      }
      change = Object.freeze({
        doc: this.docId,
        origin: this.replicaId,
        seq: this.#localSeq + 1,
        hlc: tx.hlc,
        ops: Object.freeze(tx.ops),
      });
      const err = this.#commit(change, tx.touched, false);
      if (err !== undefined) throw err;
    } catch (e) {
      rollback(tx.undo);
      throw e;
    } finally {
      this.#tx = undefined;
    }
    this.#localSeq = change.seq;
    if (this.#localListeners.size > 0) this.#emitLocal(change);
    this.#notify();
    return change;
  }

  #emitLocal(change: Change): void {
    for (const l of [...this.#localListeners]) {
      try {
        l(change);
      } catch (e) {
        this.#logger.error("nxs-sync: an onLocalChange listener threw", e);
      }
    }
  }

  // ---------------------------------------------------------------- applying

  /** Applies one remote change atomically, validating the result; returns the error when refused. */
  #applyChange(change: Change): NxsError | undefined {
    const undo: Undo = [];
    const touched: Path[] = [];
    const { origin, hlc, ops } = change;
    const unknown: Path[] = [];
    try {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as Op;
        const w = this.#walkCache.walk(op.path);
        if (w.invalid !== undefined) {
          // A path this schema has no place for: a key of a newer schema is kept and hidden; a path
          // below a leaf is kept and the leaf's value is checked (and hidden) as any other.
          const u = unknownKeyPrefix(this.#schema, op.path);
          if (u !== undefined && this.#hidden.get(u) === undefined) unknown.push(u);
        }
        const problem = this.#crdt.apply(op, origin, hlc, i, w.kind, undo, touched);
        if (typeof problem === "string") {
          rollback(undo);
          return new ValidationError(`op ${i} at ${JSON.stringify(op.path)}: ${problem}`, {
            code: ErrorCode.OpInvalid,
            issues: [{ path: [...op.path], message: problem }],
          });
        }
      }
      const err = this.#commit(change, touched, true, unknown);
      if (err !== undefined) rollback(undo);
      return err;
    } catch (e) {
      // A schema refinement that throws, or a bug: never leave a change half-applied.
      rollback(undo);
      return isNxsError(e)
        ? e
        : new ValidationError(`change could not be applied: ${String(e)}`, {
            code: ErrorCode.OpInvalid,
            cause: e,
          });
    }
  }

  /**
   * Validates what a change touched and, when valid, records it. Leaves the rollback to the caller.
   * @param remote - A remote change: values this schema refuses are hidden rather than refused
   * (a local change must not make a value hidden).
   * @param unknown - Paths of keys this schema does not know that the change wrote (remote only).
   */
  #commit(
    change: Change,
    touched: Path[],
    remote: boolean,
    unknown: readonly Path[] = [],
  ): ValidationError | undefined {
    const { origin } = change;
    const roots: Path[] = [];
    for (const p of touched) roots.push(this.#crdt.recomputeRoot(p));
    const simple = this.#hidden.size === 0 && unknown.length === 0;
    // Root-level writes with nothing hidden: a key written twice is checked twice, which costs less
    // than the set that would drop the repeat from every change.
    const tops = simple && allOneSegment(roots) ? roots : topmostPaths(roots);
    this.#newlyHidden = { paths: [], error: undefined };
    let moved: Path[] = [];
    let res = simple ? this.#validate(tops, change.ops) : undefined;
    if (!simple || (remote && res instanceof ValidationError && res.code === ErrorCode.SchemaInvalid)) {
      const r = this.#validateHiding(tops, remote ? undefined : touched, unknown);
      res = r.res;
      moved = r.moved;
    }
    if (res instanceof ValidationError) return res;
    for (const p of moved) tops.push(p);
    if (res !== undefined) {
      this.#state = res;
      this.#pending.clear();
    } else {
      // Past a bound, one full re-materialization on the next read beats retaining every path (it
      // keeps unchanged slices' identity: see #stage).
      for (const p of tops) this.#pending.add(p);
    }
    this.#log.record(change);
    const head = this.#log.headHlc(origin);
    if (head !== undefined) this.#crdt.lastHlc.set(origin, head);
    if (origin === this.replicaId && change.seq > this.#localSeq) this.#localSeq = change.seq;
    return undefined;
  }

  /**
   * {@link #validate} with hiding: the hidden paths at, above or below `tops` are shown again and
   * checked anew (but for unknown keys, hidden for good), and each value the schema refuses is
   * hidden ({@link #hideFor}) until the typed state is valid. On an error, hidden paths are as before.
   * @param local - For a local change, the paths it wrote: it may leave a value hidden as it was,
   * but a refused value at or below one of them is its own, and an error.
   * @returns The result of the last validation, and the paths whose hiding changed (to re-stage).
   */
  #validateHiding(
    tops: Path[],
    local: readonly Path[] | undefined,
    unknown: readonly Path[],
  ): { res: ValidationError | { readonly [key: string]: Json } | undefined; moved: Path[] } {
    const remote = local === undefined;
    const hidden = this.#hidden;
    const shown = new Map<string, HiddenPath>();
    const added: HiddenPath[] = [];
    for (const top of tops) {
      const above = hidden.covering(top);
      for (const h of above === undefined ? hidden.below(top) : [above, ...hidden.below(above.path)]) {
        if (h.reason === HiddenReason.Unknown) continue;
        shown.set(JSON.stringify(h.path), h);
        hidden.remove(h.path);
      }
    }
    const paths = [...tops];
    for (const h of shown.values()) paths.push(h.path);
    for (const u of unknown) {
      const h = { path: u, reason: HiddenReason.Unknown, fallback: undefined };
      hidden.add(h);
      added.push(h);
    }
    let res = this.#validate(paths);
    let error: ValidationError | undefined;
    for (let round = 0; res instanceof ValidationError && round < MAX_HIDE_ROUNDS; round++) {
      if (res.code !== ErrorCode.SchemaInvalid) break;
      error ??= res;
      let progress = false;
      for (const issue of res.issues) {
        const refused = refusedPath(issue.path);
        const h = this.#hideFor(refused);
        if (h === undefined) {
          progress = false;
          break;
        }
        if (hidden.covering(h.path) !== undefined) continue;
        // A local write may keep a value hidden as it was, never hide one, nor write a refused one.
        if (
          local !== undefined &&
          (!sameHidden(shown.get(JSON.stringify(h.path)), h) || local.some((t) => isPathPrefix(t, refused)))
        ) {
          progress = false;
          break;
        }
        hidden.add(h);
        added.push(h);
        progress = true;
      }
      if (!progress) break;
      res = this.#validate(paths);
    }
    if (res instanceof ValidationError) {
      for (const h of added) hidden.remove(h.path);
      for (const h of shown.values()) hidden.add(h);
      return { res, moved: [] };
    }
    const fresh = added.filter((h) => !sameHidden(shown.get(JSON.stringify(h.path)), h));
    if (remote) this.#newlyHidden = { paths: fresh.map((h) => h.path), error };
    return { res, moved: [...[...shown.values()].map((h) => h.path), ...added.map((h) => h.path)] };
  }

  /**
   * How to hide the refused value at `path`: at the nearest level (the path, then its ancestors)
   * that the schema lets be absent (hidden), or that `initial` has a value for (shown as it).
   * @returns The hidden path, or undefined when no level fits (the root: the change is refused).
   */
  #hideFor(path: Path): HiddenPath | undefined {
    for (let len = path.length; len >= 1; len--) {
      const at = len === path.length ? path : Object.freeze(path.slice(0, len));
      if (mayBeAbsent(this.#schema, at))
        return { path: at, reason: HiddenReason.Refused, fallback: undefined };
      const f = this.#initial === undefined ? undefined : getAtPath(this.#initial, at);
      if (f !== undefined) return { path: at, reason: HiddenReason.Refused, fallback: f };
    }
    return undefined;
  }

  /**
   * Checks the whole state against the schema after loading a snapshot (a snapshot is untrusted
   * input): a counter or add-wins set where the schema declares another kind is an error (hiding
   * would not do: every later write there would be refused, see `findKindConflicts`); then what the
   * schema refuses is hidden, unknown keys and refused values, as {@link #validateHiding} does.
   * @returns `error` when the state cannot be made valid by hiding; else `why`, the schema's first
   * refusal of what is hidden (undefined when nothing or only unknown keys are).
   */
  #hideAll(): { readonly error?: ValidationError; readonly why?: ValidationError } {
    this.#hidden.clear();
    const conflicts = findKindConflicts(this.#crdt, this.#schema);
    if (conflicts.length > 0) {
      const issues = conflicts.map((c) => ({
        path: [...c.path],
        message: `a ${c.found} where the schema declares a ${c.declared === NodeKind.Plain ? "plain value" : c.declared}`,
      }));
      return {
        error: new ValidationError(
          `snapshot state contradicts the schema: ${issues.map((i) => `${JSON.stringify(i.path)}: ${i.message}`).join("; ")}`,
          { issues },
        ),
      };
    }
    const unknown = findUnknownKeys(this.#schema, this.#crdt.valueAt(EMPTY_PATH) as Json);
    const { res } = this.#validateHiding([EMPTY_PATH], undefined, unknown);
    const why = this.#newlyHidden.error;
    this.#newlyHidden = { paths: [], error: undefined };
    if (res instanceof ValidationError) return { error: res };
    return why === undefined ? {} : { why };
  }

  /**
   * Validates the values at `paths` (after an apply) with the narrowest schemas that cover them,
   * as the typed state shows them (a path below a hidden one is checked there).
   * @returns An error, a fully staged state (when the whole document had to be validated), or undefined.
   */
  #validate(
    paths: Path[],
    ops?: readonly Op[],
  ): ValidationError | { readonly [key: string]: Json } | undefined {
    const anchors = new Map<Path, z.ZodType>();
    const anchorPaths: Path[] = [];
    for (const p0 of paths) {
      let p = p0;
      if (this.#hidden.size > 0) {
        const c = this.#hidden.covering(p0);
        if (c !== undefined) {
          if (c.fallback === undefined) continue;
          p = c.path;
        }
      }
      const w = this.#walkCache.walk(p);
      if (w.anchor === p.length) {
        // An add-wins set that was valid and only had elements added or removed: check the added ones.
        if (ops !== undefined && this.#setEditValid(p, w.anchorSchema, ops)) continue;
        // The common case: validate the value at the path itself.
        const v = this.#typedAt(p);
        if (v === undefined && w.viaRecord) continue;
        const fast = fastCheck(w.anchorSchema);
        if (fast?.(v)) continue;
        const r = w.anchorSchema.safeParse(v);
        if (!r.success) return this.#schemaError(p, r.error);
        continue;
      }
      const a = w.anchor === 0 ? EMPTY_PATH : p.slice(0, w.anchor);
      anchorPaths.push(a);
      if (!anchors.has(a)) anchors.set(a, w.anchorSchema);
    }
    if (anchorPaths.length === 0) return undefined;
    let staged: { readonly [key: string]: Json } | undefined;
    for (const a of topmostPaths(anchorPaths)) {
      let schema = anchors.get(a);
      if (schema === undefined) {
        for (const [k, s] of anchors) if (k.length === a.length && k.every((x, j) => x === a[j])) schema = s;
      }
      if (schema === undefined) continue;
      let v: Json | undefined;
      if (a.length === 0) {
        staged = this.#stage([...this.#pending.paths(), ...paths]);
        v = staged;
      } else {
        v = this.#typedAt(a);
      }
      const r = schema.safeParse(v);
      if (!r.success) return this.#schemaError(a, r.error);
    }
    return staged;
  }

  /**
   * Whether the add-wins set at `path` is valid after `ops`, judged by the elements they added: true
   * when the set's schema checks only its elements ({@link setElementCheck}), the set shows as an
   * array, every op of the change at `path` is an add or a remove, and each element added and
   * present passes the element check. The set was valid before the change (each commit leaves the
   * state valid), and removing elements keeps it so. False means: validate the whole value.
   */
  #setEditValid(path: Path, schema: z.ZodType, ops: readonly Op[]): boolean {
    const check = setElementCheck(schema);
    if (check === undefined) return false;
    const set = this.#visibleSet(path);
    if (set === undefined) return false;
    let edited = false;
    for (const op of ops) {
      if (op.path !== path && (op.path.length !== path.length || !op.path.every((s, j) => s === path[j])))
        continue;
      if (op.kind === "rem") edited = true;
      else if (op.kind !== "add") return false;
      else {
        edited = true;
        if (!check(op.value) && set.has(elementKey(op.value))) return false;
      }
    }
    return edited;
  }

  #schemaError(at: Path, error: z.ZodError): ValidationError {
    const issues = prefixIssues(at, error);
    const first = issues[0];
    return new ValidationError(
      `state does not match the schema at ${JSON.stringify(first?.path ?? at)}: ${first?.message ?? "invalid"}`,
      { code: ErrorCode.SchemaInvalid, cause: error, issues },
    );
  }

  applyRemote(changes: readonly unknown[]): ApplyResult {
    const applied: Change[] = [];
    const rejected: RejectedChange[] = [];
    const hidden: HiddenChange[] = [];
    let duplicates = 0;
    let dropped = 0;
    const heldNow = new Set<Change>();
    const reject = (input: unknown, error: unknown) => {
      rejected.push({
        input,
        error: isNxsError(error) ? error : new NxsError(ErrorCode.OpInvalid, String(error), { cause: error }),
      });
    };
    for (let at = 0; at < changes.length; at++) {
      const input = changes[at];
      try {
        this.#applyRemoteInput(
          input,
          applied,
          heldNow,
          reject,
          hidden,
          () => {
            duplicates++;
          },
          () => {
            dropped++;
          },
        );
      } catch (e) {
        reject(input, e);
        continue;
      }
      // The changes after it that repeat its ops (a format 2 group: one counter increment each).
      if (applied.length > 0 && applied[applied.length - 1] === input && at + 1 < changes.length)
        at += this.#applyIncrementRepeats(input as Change, changes, at + 1, applied);
    }
    if (applied.length > 0) this.#notify();
    return dropped > 0
      ? { applied, duplicates, held: heldNow.size, rejected, hidden, dropped }
      : { applied, duplicates, held: heldNow.size, rejected, hidden };
  }

  #applyRemoteInput(
    input: unknown,
    applied: Change[],
    heldNow: Set<Change>,
    reject: (input: unknown, error: unknown) => void,
    hidden: HiddenChange[],
    duplicate: () => void,
    dropped: () => void,
  ): void {
    let change: Change;
    try {
      change = decodeChange(input);
      if (change.doc !== this.docId) {
        throw new ValidationError(`change of doc ${change.doc} sent to doc ${this.docId}`, {
          code: ErrorCode.OpInvalid,
        });
      }
    } catch (e) {
      reject(input, e);
      return;
    }
    const { origin, seq } = change;
    if (this.#log.has(origin, seq)) {
      duplicate();
      return;
    }
    let parts: HlcParts;
    try {
      parts = this.#clock.check(hlcPartsOf(change));
    } catch (e) {
      reject(input, e);
      return;
    }
    if (seq !== this.#log.next(origin)) {
      let m = this.#held.get(origin);
      if (m === undefined) {
        m = new Map();
        this.#held.set(origin, m);
      }
      if (m.has(seq)) duplicate();
      else if (m.size >= this.#maxHeldPerOrigin || this.#heldTotal >= this.#maxHeldTotal) {
        // Full: keep the changes nearest to the gap. The one furthest from it goes (this one, or
        // the highest held of this origin); the pull that fills the gap brings it again.
        let highest = seq;
        for (const s of m.keys()) if (s > highest) highest = s;
        if (highest !== seq) {
          const out = m.get(highest) as Change;
          m.delete(highest);
          heldNow.delete(out);
          m.set(seq, change);
          heldNow.add(change);
        }
        dropped();
      } else {
        m.set(seq, change);
        this.#heldTotal++;
        heldNow.add(change);
      }
      return;
    }
    const err = this.#applyRemoteOne(change, parts);
    if (err !== undefined) {
      reject(input, err);
      return;
    }
    applied.push(change);
    this.#reportHidden(change, hidden);
    // Apply what this change unblocked.
    const m = this.#held.get(origin);
    if (m === undefined) return;
    for (;;) {
      const nextSeq = this.#log.next(origin);
      const h = m.get(nextSeq);
      if (h === undefined) break;
      m.delete(nextSeq);
      this.#heldTotal--;
      heldNow.delete(h);
      const e2 = this.#applyRemoteOne(h);
      if (e2 !== undefined) {
        reject(h, e2);
        break;
      }
      applied.push(h);
      this.#reportHidden(h, hidden);
    }
    // Drop held changes the version vector now covers.
    for (const s of m.keys()) {
      if (this.#log.has(origin, s)) {
        m.delete(s);
        this.#heldTotal--;
      }
    }
    if (m.size === 0) this.#held.delete(origin);
  }

  /**
   * Applies, in one pass, the changes from `changes[from]` on that share `first`'s ops (the same
   * array: `decodeChanges` gives a format 2 group's changes one) when those ops are increments of
   * existing, visible counters whose schema is a plain predicate (a finite number, or
   * optional/nullable of it, with nothing checked above): kept far from overflow, every value the
   * run goes through is finite, so valid, and each change does what {@link DocState.apply} would
   * (`inc` on the counter). The changes are logged one by one, the counters re-staged once. Stops at
   * the first change that would not apply as the next of its origin (the per-change path then
   * handles it, and reports it); nothing is applied when the run does not qualify.
   * @returns How many changes it applied (0 when the run does not qualify).
   */
  #applyIncrementRepeats(
    first: Change,
    changes: readonly unknown[],
    from: number,
    applied: Change[],
  ): number {
    const { ops, origin } = first;
    if (ops.length === 0 || origin === this.replicaId || this.#hidden.size > 0 || this.#held.has(origin))
      return 0;
    const next = changes[from];
    if (typeof next !== "object" || next === null || (next as Change).ops !== ops) return 0;
    // `first` must be the head of its origin (not followed by held changes it unblocked).
    if (this.#log.next(origin) !== first.seq + 1 || this.#crdt.lastHlc.get(origin) !== first.hlc) return 0;
    for (const op of ops) {
      if (op.kind !== "inc") return 0;
      const w = this.#walkCache.walk(op.path);
      if (w.anchor !== op.path.length || w.invalid !== undefined || fastCheck(w.anchorSchema) === undefined)
        return 0;
      if (typeof this.#crdt.valueAt(op.path) !== "number") return 0;
      if (w.kind !== undefined && w.kind !== NodeKind.Counter) return 0;
    }
    // The changes that qualify, each checked as the next of its origin with a later HLC.
    const run: Change[] = [];
    const parts: HlcParts[] = [];
    let prevHlc = first.hlc;
    let seq = first.seq;
    for (let k = from; k < changes.length; k++) {
      const c = changes[k] as Change | null;
      if (
        typeof c !== "object" ||
        c === null ||
        c.ops !== ops ||
        c.origin !== origin ||
        c.doc !== this.docId ||
        c.seq !== seq + 1 ||
        !(c.hlc > prevHlc)
      )
        break;
      try {
        parts.push(this.#clock.check(hlcPartsOf(c)));
      } catch {
        break;
      }
      run.push(c);
      prevHlc = c.hlc;
      seq = c.seq;
    }
    if (run.length === 0) return 0;
    // Far from overflow, every value the run goes through stays finite, so valid.
    let step = 0;
    for (const op of ops) step += Math.abs((op as { readonly value: number }).value);
    for (const op of ops)
      if (!(Math.abs(this.#crdt.valueAt(op.path) as number) + step * run.length < SAFE_COUNTER_BOUND))
        return 0;
    // Each op reaches an existing, visible counter for the first change's stamp, so for the later
    // (newer) ones too: DocState.apply would do exactly counter.inc for each.
    const first0 = run[0] as Change;
    const counters: CounterState[] = [];
    for (let i = 0; i < ops.length; i++) {
      const c = this.#crdt.counterAt((ops[i] as Op).path, first0.hlc, i);
      if (c === undefined) return 0;
      counters.push(c);
    }
    for (let k = 0; k < run.length; k++) {
      const p = parts[k] as HlcParts;
      for (let i = 0; i < ops.length; i++)
        (counters[i] as CounterState).incParts(
          origin,
          p.ms,
          p.counter,
          origin,
          i,
          (ops[i] as { readonly value: number }).value,
          undefined,
        );
    }
    if (!this.#pending.all) {
      // As #commit: the topmost paths to re-materialize (one per op, not per change).
      for (const p of topmostPaths(ops.map((op) => this.#crdt.recomputeRoot(op.path)))) this.#pending.add(p);
    }
    for (let k = 0; k < run.length; k++) {
      const c = run[k] as Change;
      this.#log.record(c);
      try {
        this.#clock.receive(parts[k] as HlcParts);
      } catch (e) {
        this.#logger.warn("nxs-sync: clock did not take a remote stamp", e);
      }
      applied.push(c);
    }
    const head = this.#log.headHlc(origin);
    if (head !== undefined) this.#crdt.lastHlc.set(origin, head);
    return run.length;
  }

  /** Adds what applying `change` newly hid to `out` (once: a path hidden already is not reported again). */
  #reportHidden(change: Change, out: HiddenChange[]): void {
    const { paths, error } = this.#newlyHidden;
    if (paths.length === 0) return;
    this.#newlyHidden = { paths: [], error: undefined };
    out.push({
      change,
      paths,
      error:
        error ??
        new ValidationError(`change ${change.origin}/${change.seq} writes keys the schema does not know`, {
          issues: paths.map((p) => ({ path: [...p], message: "unknown key" })),
        }),
    });
  }

  /**
   * Applies a remote change that is next in its origin's sequence.
   * @param checked - Its HLC's parts when the clock checked them just now (else it is checked here:
   * a held change was checked when it arrived, and the wall clock may have moved since).
   */
  #applyRemoteOne(change: Change, checked?: HlcParts): NxsError | undefined {
    const prev = this.#crdt.lastHlc.get(change.origin);
    if (prev !== undefined && !(change.hlc > prev)) {
      return new ValidationError(
        `change ${change.origin}/${change.seq} has hlc ${change.hlc} not after ${prev}`,
        {
          code: ErrorCode.OpInvalid,
        },
      );
    }
    let parts = checked;
    if (parts === undefined) {
      try {
        parts = this.#clock.check(hlcPartsOf(change));
      } catch (e) {
        return e as NxsError;
      }
    }
    const err = this.#applyChange(change);
    if (err !== undefined) return err;
    try {
      this.#clock.receive(parts);
    } catch (e) {
      this.#logger.warn("nxs-sync: clock did not take a remote stamp", e);
    }
    return undefined;
  }

  // ---------------------------------------------------------------- replication

  applySnapshot(input: Snapshot): ApplyResult {
    const none = { applied: [] as Change[], duplicates: 0, held: 0, rejected: [] as RejectedChange[] };
    let crdt: DocState;
    let log: ChangeLog;
    let claims: VersionVector;
    try {
      const snap = decodeSnapshot(input);
      claims = snap.version;
      if (snap.doc !== this.docId) {
        throw new ValidationError(`snapshot is of doc ${snap.doc}, not ${this.docId}`, {
          code: ErrorCode.OpInvalid,
        });
      }
      if (dominatesVersionVector(this.#log.version(), snap.version)) return { ...none, duplicates: 1 };
      const decoded = decodeState(snap.state);
      crdt = decoded.state;
      log = ChangeLog.fromVersion(snap.version, decoded.extra, (o) => decoded.state.lastHlc.get(o));
      // Rebase: replay on the snapshot every change applied here that it lacks.
      const mine = this.#log.changesSince(snap.version).filter((c) => !log.has(c.origin, c.seq));
      for (const [o, v] of this.#log.vv) {
        const at = getVersion(snap.version, o);
        if (at < v && !this.#log.canServe(o, at)) {
          throw new ValidationError(
            `snapshot lacks changes of ${o} this replica compacted away (${at} < ${v})`,
            {
              code: ErrorCode.OpInvalid,
            },
          );
        }
      }
      for (const c of mine) {
        const touched: Path[] = [];
        for (let i = 0; i < c.ops.length; i++) {
          const op = c.ops[i] as Op;
          crdt.apply(op, c.origin, c.hlc, i, this.#walkCache.walk(op.path).kind, undefined, touched);
        }
        log.record(c);
        const head = log.headHlc(c.origin);
        if (head !== undefined) crdt.lastHlc.set(c.origin, head);
      }
    } catch (e) {
      return {
        ...none,
        rejected: [{ input, error: isNxsError(e) ? e : new NxsError(ErrorCode.OpInvalid, String(e)) }],
      };
    }
    const prev = { crdt: this.#crdt, log: this.#log, hidden: this.#hidden.all() };
    this.#crdt = crdt;
    this.#log = log;
    const { error: refused, why } = this.#hideAll();
    if (refused !== undefined) {
      this.#crdt = prev.crdt;
      this.#log = prev.log;
      this.#hidden.clear();
      for (const h of prev.hidden) this.#hidden.add(h);
      return { ...none, rejected: [{ input, error: refused }] };
    }
    const hidden = this.#snapshotHidden(prev.hidden, claims, why);
    this.#pending.markAll();
    // A snapshot may cover changes of this replica id made by an earlier incarnation (a restart on
    // empty storage): never reuse their seqs.
    const own = Math.max(log.vv.get(this.replicaId) ?? 0, ...(log.extra.get(this.replicaId) ?? []));
    if (own > this.#localSeq) this.#localSeq = own;
    for (const h of crdt.lastHlc.values()) {
      try {
        this.#clock.receive(h);
      } catch {
        // A stamp too far ahead was accepted by whoever made the snapshot; the clock catches up later.
      }
    }
    // Held changes may now be next, or covered.
    const held: unknown[] = [];
    for (const m of this.#held.values()) held.push(...m.values());
    this.#held.clear();
    this.#heldTotal = 0;
    const res = held.length > 0 ? this.applyRemote(held) : none;
    if (res.applied.length === 0) this.#notify();
    return hidden === undefined ? res : { ...res, snapshotHidden: hidden };
  }

  /**
   * What an applied snapshot newly hid: the paths hidden now that were not (or not the same way)
   * before it, with the schema's refusal.
   * @param before - The hidden paths before the snapshot.
   * @param version - The snapshot's version.
   * @param why - The schema's first refusal (undefined when only unknown keys are hidden).
   */
  #snapshotHidden(
    before: readonly HiddenPath[],
    version: VersionVector,
    why: ValidationError | undefined,
  ): HiddenSnapshot | undefined {
    const was = new Map(before.map((h) => [JSON.stringify(h.path), h]));
    const fresh = this.#hidden.all().filter((h) => !sameHidden(was.get(JSON.stringify(h.path)), h));
    if (fresh.length === 0) return undefined;
    const unknown = fresh.filter((h) => h.reason === HiddenReason.Unknown);
    const error =
      why ??
      new ValidationError("snapshot holds keys the schema does not know", {
        issues: unknown.map((h) => ({ path: [...h.path], message: "unknown key" })),
      });
    return { version, paths: fresh.map((h) => h.path), error };
  }

  version(): VersionVector {
    return this.#log.version();
  }

  changesSince(since: VersionVector): readonly Change[] {
    return this.#log.changesSince(since);
  }

  gaps(): VersionVector {
    const out: Record<string, number> = {};
    for (const [o, m] of this.#held) if (m.size > 0) out[o] = this.#log.next(o);
    return Object.freeze(out);
  }

  heldCount(): number {
    return this.#heldTotal;
  }

  snapshot(): Snapshot {
    return Object.freeze({
      format: 1,
      doc: this.docId,
      version: this.#log.version(),
      state: encodeState(this.#crdt, this.#log.extra) as unknown as Json,
    });
  }

  snapshotBinary(options?: BinarySnapshotOptions): Uint8Array {
    return encodeStateBinary(this.docId, this.#log.version(), this.#crdt, this.#log.extra, options);
  }

  compact(frontier: VersionVector): void {
    if (this.#tx !== undefined)
      throw new ValidationError("compact() inside a change (call it after the change)", {
        code: ErrorCode.OpInvalid,
      });
    const bounds = this.#log.compact(frontier);
    this.#crdt.gc((h) => {
      if (h === "") return true;
      const b = bounds.get(hlcNode(h));
      return b !== undefined && h <= b;
    });
  }

  onLocalChange(listener: (change: Change) => void): () => void {
    this.#localListeners.add(listener);
    return () => {
      this.#localListeners.delete(listener);
    };
  }
}

/**
 * Creates a replicated document: a JSON state under a zod schema, edited through immer drafts or
 * path helpers, merged with other replicas as a CRDT (see docs/protocol.md).
 * @param options - Schema, ids, clock, and a starting point (`initial` or `snapshot` + `last`;
 * `snapshot` is a JSON snapshot or the bytes of a binary one).
 * @returns The document, a {@link TypedDoc}: its path helpers are typed from the schema.
 * @throws {@link ValidationError} `schema/invalid` when the starting state does not match the
 * schema or an id is malformed; `op/invalid` when the snapshot is of another document.
 * {@link ClockError} `hlc/invalid` when `last.hlc` is malformed.
 * @example
 * ```ts
 * import { z } from "zod";
 * import { counter, createDoc } from "@nxs-sync/core";
 *
 * const doc = createDoc({
 *   schema: z.object({ routes: z.record(z.string(), z.string()), hits: counter() }),
 *   docId: "gateway",
 *   replicaId: "node-a",
 *   clock: Date.now,
 *   initial: { routes: {}, hits: 0 },
 * });
 * doc.change((d) => {
 *   d.routes["/api"] = "10.0.0.2";
 *   d.hits += 1;
 * });
 * doc.get().routes["/api"]; // "10.0.0.2"
 * ```
 */
export function createDoc<S extends z.ZodType>(options: CreateDocOptions<S>): TypedDoc<z.output<S>, S> {
  // The typed signatures only narrow the untyped ones DocImpl implements (a typed `get(path)`
  // returns the untyped `unknown` read, typed from the schema).
  return new DocImpl<z.output<S>>(options as CreateDocOptions<z.ZodType>) as TypedDoc<z.output<S>, S>;
}
