import { z } from "zod";
import type { Json, Path } from "./change.js";
import type { AddWinsSetMark, CounterMark } from "./typed-path.js";

/** What a path of a document is, according to its schema. */
export const NodeKind = {
  /** An ordinary value: an object merged per key, or a last-writer-wins leaf. */
  Plain: "plain",
  /** A PN-counter (declared with {@link counter}). */
  Counter: "counter",
  /** An add-wins set (declared with {@link addWinsSet}). */
  Set: "set",
} as const;
/** The union of node kinds. */
export type NodeKind = (typeof NodeKind)[keyof typeof NodeKind];

const kinds = new WeakMap<object, NodeKind>();

/**
 * Declares a PN-counter field: a number whose concurrent increments add up instead of overwriting
 * each other. In `change()`, `d.hits += 1` becomes an `inc` op of the difference.
 * @param base - The number schema to use (default `z.number()`), e.g. `z.number().int().min(0)`.
 * @returns A zod number schema marked as a counter (its type carries {@link CounterMark}, which
 * lets `doc.increment` accept it; the state holds plain numbers). Wrap it (`.optional()`) but do not
 * re-chain refinements on it: that makes a new schema without the mark.
 */
export function counter(base: z.ZodNumber = z.number()): z.ZodNumber & CounterMark {
  const s = base.clone();
  kinds.set(s, NodeKind.Counter);
  return s as z.ZodNumber & CounterMark;
}

/**
 * Declares an add-wins (observed-remove) set field. Its value in the state is a frozen array of
 * distinct elements in a canonical sorted order; adding and removing elements (in `change()` by
 * editing the array, or with `doc.add`/`doc.remove`) becomes `add`/`rem` ops. A remove only cancels
 * the adds it has seen, so a concurrent add wins.
 * @param element - The schema of one element (a JSON value, usually `z.string()`).
 * @returns A zod array schema marked as an add-wins set (its type carries {@link AddWinsSetMark},
 * which lets `doc.add` and `doc.remove` accept it).
 */
export function addWinsSet<E extends z.ZodType<Json>>(
  element: E,
): z.ZodReadonly<z.ZodArray<E>> & AddWinsSetMark {
  const s = z.array(element).readonly();
  kinds.set(s, NodeKind.Set);
  return s as z.ZodReadonly<z.ZodArray<E>> & AddWinsSetMark;
}

type Def = {
  type: string;
  checks?: unknown[];
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  innerType?: z.ZodType;
  element?: z.ZodType;
};

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** Wrappers that do not change which paths exist below them. */
const WRAPPERS = new Set(["optional", "nullable", "default", "readonly", "prefault", "nonoptional", "catch"]);

/**
 * The node kind declared by a schema (looking through optional/nullable/default/readonly).
 * @param schema - A zod schema.
 * @returns Counter, set, or plain.
 */
export function schemaKind(schema: z.ZodType): NodeKind {
  let s: z.ZodType | undefined = schema;
  while (s !== undefined) {
    const k = kinds.get(s);
    if (k !== undefined) return k;
    const d = defOf(s);
    if (!WRAPPERS.has(d.type)) return NodeKind.Plain;
    s = d.innerType;
  }
  return NodeKind.Plain;
}

/** Where a path leads inside a schema. See {@link walkSchema}. */
export interface SchemaWalk {
  /**
   * How many leading segments of the path must be validated together: the value at
   * `path.slice(0, anchor)` is checked with `anchorSchema`. Equal to the path length when every
   * level down to the path is a plain z.object/z.record without refinements.
   */
  readonly anchor: number;
  readonly anchorSchema: z.ZodType;
  /** The schema at the full path, when the walk reached it. */
  readonly target: z.ZodType | undefined;
  /** The kind at the full path: from the schema, or undefined when the walk could not reach it. */
  readonly kind: NodeKind | undefined;
  /** Set when the path cannot exist under the schema (it goes through a leaf or an unknown key of a strict object). */
  readonly invalid?: string;
  /** Whether the last step went through a z.record (or a catchall): the key may be absent. */
  readonly viaRecord?: boolean;
}

/**
 * Walks a document schema along a path through z.object (shape, catchall) and z.record (value
 * type), looking through optional/nullable/default/readonly wrappers. A level with refinements
 * (checks), a record with a constrained key type, or a schema it cannot look into (union, lazy,
 * pipe, ...) becomes the validation anchor.
 * @param root - The document schema.
 * @param path - A path of the document.
 * @returns The anchor to validate and what the path is.
 */
export function walkSchema(root: z.ZodType, path: Path): SchemaWalk {
  let anchor = -1;
  let anchorSchema = root;
  let s: z.ZodType = root;
  let viaRecord = false;
  let invalid: string | undefined;
  let i = 0;
  for (; ; i++) {
    // Unwrap, noting refinements on any layer and the first counter/set mark.
    let cur: z.ZodType = s;
    let kind: NodeKind | undefined;
    let def = defOf(cur);
    for (;;) {
      if (kind === undefined) kind = kinds.get(cur);
      if (anchor < 0 && i < path.length && def.checks !== undefined && def.checks.length > 0) {
        anchor = i;
        anchorSchema = s;
      }
      if (!WRAPPERS.has(def.type) || def.innerType === undefined) break;
      cur = def.innerType;
      def = defOf(cur);
    }
    if (i === path.length) {
      if (anchor < 0) return reachedWalk(s, i, kind ?? NodeKind.Plain, viaRecord);
      return { anchor, anchorSchema, target: s, kind: kind ?? NodeKind.Plain, viaRecord };
    }
    const seg = path[i] as string;
    if (kind !== undefined && kind !== NodeKind.Plain) {
      invalid = `path goes below a ${kind}`;
      break;
    }
    if (def.type === "object") {
      const child = def.shape !== undefined && Object.hasOwn(def.shape, seg) ? def.shape[seg] : undefined;
      if (child !== undefined) {
        s = child;
        viaRecord = false;
        continue;
      }
      const ca = def.catchall;
      const caType = ca === undefined ? undefined : defOf(ca).type;
      if (caType === "never" || ca === undefined) {
        // z.object strips unknown keys when parsing; a document keeps what it is sent, so an
        // unknown key is refused (use z.looseObject or .catchall() to allow extra keys).
        invalid = `unknown key ${JSON.stringify(seg)}`;
        break;
      }
      if (ca !== undefined && caType !== "unknown" && caType !== "any") {
        s = ca;
        viaRecord = true;
        continue;
      }
      // Unknown key of a loose object: nothing below it is checked.
      break;
    }
    if (def.type === "record" && def.valueType !== undefined && def.keyType !== undefined) {
      const kd = defOf(def.keyType);
      if (anchor < 0 && (kd.type !== "string" || (kd.checks !== undefined && kd.checks.length > 0))) {
        anchor = i;
        anchorSchema = s;
      }
      s = def.valueType;
      viaRecord = true;
      continue;
    }
    if (LEAF_TYPES.has(def.type)) invalid = `path goes below a ${def.type}`;
    // Otherwise a union, intersection, lazy, pipe...: validate from here.
    break;
  }
  if (anchor < 0) {
    anchor = i;
    anchorSchema = s;
  }
  return invalid === undefined
    ? { anchor, anchorSchema, target: undefined, kind: undefined }
    : { anchor, anchorSchema, target: undefined, kind: undefined, invalid };
}

/** Shared results of walks that reach their target with no higher anchor (they depend on nothing else). */
const reached = new WeakMap<z.ZodType, Map<number, SchemaWalk>>();

function reachedWalk(s: z.ZodType, depth: number, kind: NodeKind, viaRecord: boolean): SchemaWalk {
  let m = reached.get(s);
  if (m === undefined) {
    m = new Map();
    reached.set(s, m);
  }
  const key = viaRecord ? -depth - 1 : depth;
  let w = m.get(key);
  if (w === undefined) {
    w = Object.freeze({ anchor: depth, anchorSchema: s, target: s, kind, viaRecord });
    m.set(key, w);
  }
  return w;
}

const LEAF_TYPES = new Set([
  "string",
  "number",
  "boolean",
  "null",
  "array",
  "literal",
  "enum",
  "tuple",
  "bigint",
  "date",
  "int",
]);

const fastChecks = new WeakMap<z.ZodType, ((value: unknown) => boolean) | null>();

/**
 * A plain predicate equivalent to `schema.safeParse(v).success` for the simplest schemas (string,
 * finite number, boolean, null, and optional/nullable of those, without refinements), so that the
 * hot path validates leaves without zod. Undefined when the schema is not that simple.
 * @param schema - A zod schema.
 * @returns The predicate, or undefined.
 */
export function fastCheck(schema: z.ZodType): ((value: unknown) => boolean) | undefined {
  return memoized(fastChecks, schema, buildFastCheck);
}

/** `build(schema)`, computed once per schema (an undefined result is remembered too). */
function memoized<F>(
  cache: WeakMap<z.ZodType, F | null>,
  schema: z.ZodType,
  build: (schema: z.ZodType) => F | undefined,
): F | undefined {
  let f = cache.get(schema);
  if (f === undefined) {
    f = build(schema) ?? null;
    cache.set(schema, f);
  }
  return f ?? undefined;
}

function buildFastCheck(schema: z.ZodType): ((value: unknown) => boolean) | undefined {
  const d = defOf(schema);
  if (d.checks !== undefined && d.checks.length > 0) return undefined;
  switch (d.type) {
    case "string":
      return (v) => typeof v === "string";
    case "number":
      return (v) => typeof v === "number" && Number.isFinite(v);
    case "boolean":
      return (v) => typeof v === "boolean";
    case "null":
      return (v) => v === null;
    case "optional": {
      const inner = d.innerType === undefined ? undefined : buildFastCheck(d.innerType);
      return inner === undefined ? undefined : (v) => v === undefined || inner(v);
    }
    case "nullable": {
      const inner = d.innerType === undefined ? undefined : buildFastCheck(d.innerType);
      return inner === undefined ? undefined : (v) => v === null || inner(v);
    }
    case "record": {
      // A map of string keys (no key checks) to simple values: the shape of a wide collection,
      // checked in one loop instead of one zod parse per entry.
      if (d.keyType === undefined || d.valueType === undefined) return undefined;
      const kd = defOf(d.keyType);
      if (kd.type !== "string" || (kd.checks !== undefined && kd.checks.length > 0)) return undefined;
      const inner = buildFastCheck(d.valueType);
      if (inner === undefined) return undefined;
      return (v) => {
        if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) return false;
        for (const k in v) if (Object.hasOwn(v, k) && !inner((v as Record<string, unknown>)[k])) return false;
        return true;
      };
    }
    default:
      return undefined;
  }
}

const setElementChecks = new WeakMap<z.ZodType, ((value: unknown) => boolean) | null>();

/**
 * For the schema of an add-wins set ({@link addWinsSet}, possibly optional or nullable) that checks
 * nothing but its elements (no length limit or other refinement): a predicate equivalent to the
 * element schema's `safeParse(v).success`. A set whose every element passes it is valid as a whole,
 * so a change that adds elements to a valid set is checked by its new elements alone.
 * @param schema - A zod schema.
 * @returns The element predicate, or undefined when the schema is not such a set.
 */
export function setElementCheck(schema: z.ZodType): ((value: unknown) => boolean) | undefined {
  return memoized(setElementChecks, schema, buildSetElementCheck);
}

function buildSetElementCheck(schema: z.ZodType): ((value: unknown) => boolean) | undefined {
  const plain = (d: Def) => d.checks === undefined || d.checks.length === 0;
  let d = defOf(schema);
  while ((d.type === "optional" || d.type === "nullable") && plain(d) && d.innerType !== undefined)
    d = defOf(d.innerType);
  if (d.type !== "readonly" || !plain(d) || d.innerType === undefined) return undefined;
  const a = defOf(d.innerType);
  const element = a.element;
  if (a.type !== "array" || !plain(a) || element === undefined) return undefined;
  return fastCheck(element) ?? ((v) => element.safeParse(v).success);
}

/** How a walk goes one segment further from a path: by declared key, for any key, or not cached. */
interface WalkStep {
  /** The declared keys of the object there (each has its own walk). */
  readonly shape: Record<string, z.ZodType> | undefined;
  /** Whether every other key walks the same way (a record, or an object's catchall). */
  readonly any: boolean;
}

interface WalkTrie {
  readonly walk: SchemaWalk;
  /** Undefined until first needed; null when walks below this path are not cached. */
  step: WalkStep | null | undefined;
  named: Map<string, WalkTrie> | undefined;
  any: WalkTrie | undefined;
}

const walkNode = (walk: SchemaWalk): WalkTrie => ({
  walk,
  step: undefined,
  named: undefined,
  any: undefined,
});

/** How walks continue below a path whose walk is `w`, or null when they are not cached. */
function stepBelow(w: SchemaWalk): WalkStep | null {
  if (w.invalid !== undefined || w.target === undefined) return null;
  if (w.kind !== undefined && w.kind !== NodeKind.Plain) return null;
  let d = defOf(w.target);
  while (WRAPPERS.has(d.type) && d.innerType !== undefined) d = defOf(d.innerType);
  if (d.type === "object") {
    const ca = d.catchall;
    const caType = ca === undefined ? undefined : defOf(ca).type;
    return {
      shape: d.shape,
      any: caType !== undefined && caType !== "never" && caType !== "unknown" && caType !== "any",
    };
  }
  if (d.type === "record" && d.keyType !== undefined && d.valueType !== undefined)
    return { shape: undefined, any: true };
  return null;
}

/**
 * {@link walkSchema} over one schema, remembered along the schema rather than per path: a declared
 * key of an object has its own entry, and all the keys of a record (or of an object's catchall)
 * share one, since they walk alike. So the cache grows with the schema, not with the document's
 * keys, and a lookup builds no key text. Paths the cache does not cover (an unknown key of a strict
 * object, below a leaf, a union or a lazy schema) are walked each time.
 */
export class SchemaWalkCache {
  readonly #root: z.ZodType;
  #top: WalkTrie | undefined;

  constructor(root: z.ZodType) {
    this.#root = root;
  }

  /**
   * The walk of `path`.
   * @param path - A path of the document.
   * @returns What {@link walkSchema} returns for it.
   */
  walk(path: Path): SchemaWalk {
    this.#top ??= walkNode(walkSchema(this.#root, []));
    let n = this.#top;
    for (let i = 0; i < path.length; i++) {
      n.step ??= stepBelow(n.walk);
      const step = n.step;
      if (step === null) return walkSchema(this.#root, path);
      const seg = path[i] as string;
      let next: WalkTrie | undefined;
      if (step.shape !== undefined && Object.hasOwn(step.shape, seg)) {
        n.named ??= new Map();
        next = n.named.get(seg);
        if (next === undefined) {
          next = walkNode(walkSchema(this.#root, path.slice(0, i + 1)));
          n.named.set(seg, next);
        }
      } else if (step.any) {
        next = n.any ??= walkNode(walkSchema(this.#root, path.slice(0, i + 1)));
      } else return walkSchema(this.#root, path);
      n = next;
    }
    return n.walk;
  }
}

/** Whether a walk stopped at a key its object does not declare (see {@link walkSchema}). */
const isUnknownKey = (w: SchemaWalk): boolean => w.invalid?.startsWith("unknown key") === true;

/**
 * The prefix of `path` that ends at the first key the schema does not know (a field of a newer
 * schema), or undefined when the path is known or fails for another reason (it goes below a leaf).
 * @param root - The document schema.
 * @param path - A path whose walk is invalid.
 * @returns The prefix, or undefined.
 */
export function unknownKeyPrefix(root: z.ZodType, path: Path): Path | undefined {
  for (let k = 1; k <= path.length; k++) {
    const prefix = path.slice(0, k);
    const w = walkSchema(root, prefix);
    if (w.invalid !== undefined) return isUnknownKey(w) ? Object.freeze(prefix) : undefined;
  }
  return undefined;
}

/**
 * Whether the typed state may lack the value at `path`: a key the schema does not know, an entry
 * of a record (or catchall), or a key whose schema accepts `undefined` (optional).
 * @param root - The document schema.
 * @param path - A non-empty path.
 * @returns True when the key may be absent.
 */
export function mayBeAbsent(root: z.ZodType, path: Path): boolean {
  if (path.length === 0) return false;
  const w = walkSchema(root, path);
  if (w.invalid !== undefined) return isUnknownKey(w);
  if (w.viaRecord === true) return true;
  return w.target?.safeParse(undefined).success === true;
}

/**
 * The paths of a JSON value the schema does not know: keys of a `z.object` that are neither in its
 * shape nor allowed by a catchall. `z.object` would strip them when parsing; a document hides them.
 * @param root - The schema of `value`.
 * @param value - A JSON value (the document state).
 * @returns The paths, each ending at an unknown key.
 */
export function findUnknownKeys(root: z.ZodType, value: Json): Path[] {
  const out: Path[] = [];
  const visit = (s: z.ZodType, v: Json, at: string[]): void => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return;
    let def = defOf(s);
    while (WRAPPERS.has(def.type) && def.innerType !== undefined) {
      s = def.innerType;
      def = defOf(s);
    }
    if (kinds.has(s)) return;
    const obj = v as { readonly [key: string]: Json };
    if (def.type === "object") {
      const ca = def.catchall;
      const caType = ca === undefined ? undefined : defOf(ca).type;
      for (const k of Object.keys(obj)) {
        const child = def.shape !== undefined && Object.hasOwn(def.shape, k) ? def.shape[k] : undefined;
        if (child !== undefined) visit(child, obj[k] as Json, [...at, k]);
        else if (ca === undefined || caType === "never") out.push(Object.freeze([...at, k]));
        else if (caType !== "unknown" && caType !== "any") visit(ca, obj[k] as Json, [...at, k]);
      }
    } else if (def.type === "record" && def.valueType !== undefined) {
      const vs = def.valueType;
      let vd = defOf(vs);
      let inner = vs;
      while (WRAPPERS.has(vd.type) && vd.innerType !== undefined) {
        inner = vd.innerType;
        vd = defOf(inner);
      }
      // A record of leaves has no keys to check below it.
      if (vd.type !== "object" && vd.type !== "record") return;
      for (const k of Object.keys(obj)) visit(vs, obj[k] as Json, [...at, k]);
    }
  };
  visit(root, value, []);
  return out;
}
