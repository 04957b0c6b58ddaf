import type { z } from "zod";
import type { Json, Path } from "./change.js";

/*
 * Typed paths: the argument types of `set`, `delete`, `increment`, `add` and `remove` (on a
 * `TypedDoc` and on the writer of its `batch`), computed from the document's zod schema type.
 *
 * Only the path given is checked: a call infers its path as a tuple `P`, and `WalkPath` follows the
 * schema type one segment at a time, the way `walkSchema` (schema.ts) walks the schema at run time.
 * A call costs one step per segment, whatever the width of the schema: no union of all the paths
 * is ever built. The walk ends at an {@link Outcome}, which answers each helper's question.
 */

declare const counterMark: unique symbol;
declare const addWinsSetMark: unique symbol;
declare const pathError: unique symbol;

/**
 * The type-level mark of a counter schema (what `counter()` returns is a `z.ZodNumber` with it). It
 * lives on the schema type only: there is no such property at run time, and the state keeps plain
 * numbers.
 */
export interface CounterMark {
  readonly [counterMark]: true;
}

/**
 * The type-level mark of an add-wins set schema (what `addWinsSet()` returns carries it), on the
 * schema type only, as {@link CounterMark}.
 */
export interface AddWinsSetMark {
  readonly [addWinsSetMark]: true;
}

/**
 * Why a path does not fit the document's schema: a refused path argument is required to also be of
 * this type, so that the compiler's message names the reason.
 */
export interface PathError<Reason extends string> {
  readonly [pathError]: Reason;
}

/**
 * What the path helpers need to know of where a walk ended. Each `…Ok` member is `unknown` (no
 * constraint on the path) or the {@link PathError} that refuses it.
 */
interface Outcome {
  readonly setOk: unknown;
  readonly deleteOk: unknown;
  readonly counterOk: unknown;
  readonly setOfOk: unknown;
  /** The value `set` takes. */
  readonly value: unknown;
  /** The element `add` and `remove` take. */
  readonly element: unknown;
  /** What `get(path)` returns. */
  readonly read: unknown;
}

/**
 * A walk past what it can check (a union, lazy, pipe, `z.any()`, a loose object's extra key), or
 * on a document whose schema type is unknown: every helper goes, with any value.
 */
interface Unchecked extends Outcome {
  readonly setOk: unknown;
  readonly deleteOk: unknown;
  readonly counterOk: unknown;
  readonly setOfOk: unknown;
  readonly value: unknown;
  readonly element: Json;
  readonly read: unknown;
}

/** A path the schema does not have: every helper refuses it, for `Reason`. */
interface Refused<Reason extends string> extends Outcome {
  readonly setOk: PathError<Reason>;
  readonly deleteOk: PathError<Reason>;
  readonly counterOk: PathError<Reason>;
  readonly setOfOk: PathError<Reason>;
  readonly value: unknown;
  readonly element: Json;
  readonly read: unknown;
}

/**
 * A path that leads to schema `S`. Members are computed when first read, once per schema and
 * `ViaRecord`, however many calls reach it.
 */
interface Reached<S, ViaRecord extends boolean> extends Outcome {
  readonly setOk: unknown;
  /** An optional key (or one with a default) or an entry of a record (but one keyed by an enum) may be absent. */
  readonly absent: ViaRecord extends true ? true : undefined extends z.input<S> ? true : false;
  readonly deleteOk: this["absent"] extends true
    ? unknown
    : PathError<"the key is required: it cannot be deleted">;
  readonly counterOk: [Unwrap<S>] extends [CounterMark]
    ? unknown
    : PathError<"not a counter (declare it with counter())">;
  readonly setOfOk: [Unwrap<S>] extends [AddWinsSetMark]
    ? unknown
    : PathError<"not an add-wins set (declare it with addWinsSet())">;
  /** The schema's output type, with `undefined` (which deletes) where the value may be absent. */
  readonly value: z.output<S> | (this["absent"] extends true ? undefined : never);
  readonly element: z.output<Unwrap<S>> extends readonly (infer E)[] ? E : Json;
  /** The schema's output type, or `undefined`: a key on the way may be absent. */
  readonly read: z.output<S> | undefined;
}

/** The `_zod.def` of a schema type (checked as a whole: a union of schemas gives a union of defs). */
type DefOf<S> = [S] extends [{ readonly _zod: { readonly def: infer D } }] ? D : never;

/** Wrappers that do not change which paths exist below them (as `WRAPPERS` in schema.ts). */
type WrapperType = "optional" | "nullable" | "default" | "readonly" | "prefault" | "nonoptional" | "catch";

/** Schemas with nothing below them (as `LEAF_TYPES` in schema.ts). */
type LeafType =
  | "string"
  | "number"
  | "boolean"
  | "null"
  | "array"
  | "literal"
  | "enum"
  | "tuple"
  | "bigint"
  | "date"
  | "int";

/** Looks through wrappers, stopping at a counter or set mark (a mark on any layer counts). */
type Unwrap<S> = [S] extends [CounterMark | AddWinsSetMark]
  ? S
  : DefOf<S> extends { readonly type: WrapperType; readonly innerType: infer I }
    ? Unwrap<I>
    : S;

/** Whether an object schema accepts keys it does not declare (z.looseObject, a catchall): its output has a string index. */
type IsOpen<U> = [U] extends [{ readonly _zod: { readonly config: { readonly out: infer Out } } }]
  ? string extends keyof Out
    ? true
    : false
  : false;

/** An object schema, reduced to what a walk needs. */
interface ObjectNode<Shape, Open extends boolean> {
  readonly shape: Shape;
  readonly open: Open;
}

/**
 * A record schema, reduced to what a walk needs: the keys it accepts, the schema of its values, and
 * whether an entry may be absent (keyed by `z.string()` or partial; a record keyed by an enum
 * requires every key).
 */
interface RecordNode<Key, Value, Absent extends boolean> {
  readonly key: Key;
  readonly value: Value;
  readonly absent: Absent;
}

/**
 * What a walk finds at schema `S` (wrappers looked through): an object, a record, something with
 * nothing below it, or something it cannot look into. It depends on `S` only, so each schema is
 * classified once, however many calls walk through it.
 */
type NodeOf<S> =
  Unwrap<S> extends infer U
    ? [U] extends [CounterMark]
      ? Refused<"the path goes below a counter">
      : [U] extends [AddWinsSetMark]
        ? Refused<"the path goes below a set">
        : DefOf<U> extends infer D
          ? [D] extends [{ readonly type: "object"; readonly shape: infer Shape }]
            ? ObjectNode<Shape, IsOpen<U>>
            : [D] extends [
                  { readonly type: "record"; readonly keyType: infer Key; readonly valueType: infer V },
                ]
              ? RecordNode<z.output<Key>, V, Record<never, never> extends z.output<U> ? true : false>
              : [D] extends [{ readonly type: LeafType }]
                ? Refused<`the path goes below a ${D["type"] & string}`>
                : Unchecked
          : never
    : never;

/** One step down node `N` at key `K`, then the rest `R` of the path. */
type Down<N, K extends string, R extends Path> =
  N extends ObjectNode<unknown, boolean>
    ? [K] extends [keyof N["shape"]]
      ? WalkPath<N["shape"][K], R, false>
      : N["open"] extends true
        ? Unchecked
        : Refused<`unknown key "${K}"`>
    : N extends RecordNode<unknown, unknown, boolean>
      ? [K] extends [N["key"]]
        ? WalkPath<N["value"], R, N["absent"]>
        : Refused<`key "${K}" does not match the record's key schema`>
      : N;

/**
 * Follows `P` down the schema type `S`, one segment at a time.
 * @typeParam S - A document schema type (e.g. `typeof schema`).
 * @typeParam P - The path, a tuple of string literals (a `string` segment is any key of a record).
 * @returns `Reached`, `Unchecked` or `Refused`.
 */
type WalkPath<S, P extends Path, ViaRecord extends boolean = false> = P extends readonly [
  infer H extends string,
  ...infer R extends Path,
]
  ? Down<NodeOf<S>, H, R>
  : P extends readonly []
    ? Reached<S, ViaRecord>
    : Refused<"the path is not a tuple: write it inline or `as const` (or use an untyped Doc<T>)">;

/**
 * The answer `Key` for path `P` of a document of schema type `S`: from the root (which no path
 * helper writes: `change()` replaces it), and unchecked on a document whose schema type is unknown.
 */
type Answer<S, P extends Path, Key extends keyof Outcome> = unknown extends S
  ? Unchecked[Key]
  : P extends readonly []
    ? Refused<"the path is empty: the root cannot be written (use change())">[Key]
    : WalkPath<S, P> extends infer N extends Outcome
      ? N[Key]
      : never;

/**
 * The extra constraint on the `path` argument of `set`: `unknown` (none) when `P` leads somewhere
 * in the schema `S`, else the {@link PathError} saying why.
 */
export type SetPath<S, P extends Path> = Answer<S, P, "setOk">;

/**
 * The `value` of `set` at path `P`: the output type of the schema there, with `undefined` (which
 * deletes) when the key may be absent; `unknown` on an untyped document, past a schema the walk
 * cannot look into, or when the path is refused (the error is on the path).
 */
export type SetValue<S, P extends Path> = Answer<S, P, "value">;

/**
 * The extra constraint on the `path` of `delete`: the path must lead to an optional key (or one
 * with a default), an entry of a record or catchall, or past what the walk can check.
 */
export type DeletePath<S, P extends Path> = Answer<S, P, "deleteOk">;

/** The extra constraint on the `path` of `increment`: it must lead to a counter. */
export type CounterPath<S, P extends Path> = Answer<S, P, "counterOk">;

/** The extra constraint on the `path` of `add` and `remove`: it must lead to an add-wins set. */
export type SetOfPath<S, P extends Path> = Answer<S, P, "setOfOk">;

/** The element of `add` and `remove` at path `P`: the set's element type, or `Json` when unchecked. */
export type SetElement<S, P extends Path> = Answer<S, P, "element">;

/**
 * The extra constraint on the `path` of `get(path)`: as {@link SetPath}, but the root (`[]`) is a
 * path too (reading it reads the whole state).
 */
export type GetPath<S, P extends Path> = P extends readonly [] ? unknown : SetPath<S, P>;

/**
 * What `get(path)` returns at path `P`: the schema's output type there, or `undefined` (any key on
 * the way may be absent); the whole state's type at the root; `unknown` on an untyped document, past
 * a schema the walk cannot look into, or when the path is refused (the error is on the path).
 */
export type GetValue<S, P extends Path> = unknown extends S
  ? unknown
  : P extends readonly []
    ? z.output<S>
    : WalkPath<S, P> extends infer N extends Outcome
      ? N["read"]
      : never;
