import { current, type Immer, isDraft, isModified, nothing, type Patch } from "immer";
import { ErrorCode, ValidationError } from "../errors/errors.js";
import type { Json, Path } from "../model/change.js";
import { MAX_PATH_DEPTH } from "../model/path.js";

/*
 * The draft `change()` hands to its recipe, made lazily. The root is a Proxy of this module; the
 * state behind it is read key by key, and only the keys the recipe touches are drafted:
 * - primitives written or deleted at the root, while nothing else is drafted, are recorded here
 *   (`direct`), with no immer draft at all;
 * - once the recipe reads an object or an array at the root, or writes one there, the touched keys
 *   move into a *holder* object that immer drafts (one draft, so one scope: drafts may be moved
 *   between keys and nested in new objects as in any immer recipe). Its keys are added on first
 *   touch; before the holder's draft is first copied that is a no-op for immer, after it an
 *   assignment of the same value, whose patch (at the key alone) is not kept (see `#written`).
 * A change to one key of a wide root so costs what that key's value costs, not O(keys): the root is
 * never copied and untouched keys are never read.
 */

/** Where the root draft reads the state it drafts: the document's frozen state, by key or whole. */
export interface DraftBase {
  /** The frozen value at the top-level `key`, or undefined when the state has no such key. */
  readonly at: (key: string) => Json | undefined;
  /** The whole frozen state (read only when the recipe enumerates the root). */
  readonly all: () => { readonly [key: string]: Json };
}

/**
 * What a recipe did:
 * - `edit`: it mutated the draft (or did nothing: no paths). `paths` are the paths it changed (as
 *   immer's patch paths, cut at the first array index); `before` and `after` hold the values there
 *   before and after, keyed from the root (only the top-level keys the recipe touched are in them).
 * - `replace`: it returned a new root (drafts in it resolved to their current values).
 */
export type RecipeOutcome =
  | {
      readonly kind: "edit";
      readonly paths: readonly Path[];
      readonly before: { readonly [key: string]: Json };
      readonly after: unknown;
    }
  | { readonly kind: "replace"; readonly root: unknown };

/** The message of immer's own error for a recipe that both edits and returns. */
const EDITED_AND_RETURNED =
  "[Immer] An immer producer returned a new value *and* modified its draft. Either return a new value *or* modify the draft.";

/** A key deleted at the root (in `direct`). */
const DELETED: unique symbol = Symbol("deleted");

const OBJECT_PROTO = Object.prototype;

function nestedRoot(): ValidationError {
  return new ValidationError("the draft's root cannot be placed inside the document", {
    code: ErrorCode.OpInvalid,
  });
}

/** A patch path as a document path: the object keys before the first array index. */
function patchPath(path: readonly (string | number)[]): Path {
  for (let k = 0; k < path.length; k++) if (typeof path[k] !== "string") return path.slice(0, k) as string[];
  return path as string[];
}

const isPrimitive = (v: unknown): boolean => typeof v !== "object" || v === null;

/** The drafting state behind one root draft (the Proxy's target: its handler is shared). */
class RootDraft {
  readonly #base: DraftBase;
  readonly #immer: Immer;
  /** The root draft given to the recipe (private fields: the Proxy's target has no own keys). */
  readonly #proxy: Record<string, unknown>;
  readonly #revoke: () => void;
  /**
   * Keys written or deleted at the root while nothing is drafted by immer: the value written
   * (`DELETED`), in the order immer records assignments. Empty once `#drafted` exists.
   */
  readonly #direct = new Map<string, unknown>();
  /** The base values of the keys in `#direct` that the state has. */
  readonly #directBase = new Map<string, Json>();
  /** The base values of the keys moved into the holder (its draft's base). */
  #holder: Record<string, Json> | undefined;
  /** The immer draft of `#holder`. */
  #drafted: Record<string, unknown> | undefined;
  /** Keys whose current value lives in `#drafted`. */
  readonly #touched = new Set<string>();
  /** Keys the recipe assigned or deleted at the root: the only keys whose root-level patches count. */
  readonly #written = new Set<string>();
  /** Drafts of top-level values handed to the recipe. */
  readonly #children = new Set<object>();
  /** Whether a write at the root changed something (immer's "modified" of the root). */
  #editedRoot = false;

  constructor(immer: Immer, base: DraftBase) {
    this.#immer = immer;
    this.#base = base;
    const { proxy, revoke } = Proxy.revocable(this, HANDLER);
    this.#proxy = proxy as unknown as Record<string, unknown>;
    this.#revoke = revoke;
  }

  /** The root draft given to the recipe. */
  get draft(): Record<string, unknown> {
    return this.#proxy;
  }

  // ------------------------------------------------------------ the Proxy's traps

  static get(t: RootDraft, key: string | symbol, receiver: unknown): unknown {
    if (typeof key !== "string") return Reflect.get(OBJECT_PROTO, key, receiver);
    const drafted = t.#drafted;
    if (drafted !== undefined && t.#touched.has(key)) return t.#child(drafted[key]);
    let v: unknown;
    if (t.#direct.has(key)) v = t.#direct.get(key);
    else {
      v = t.#base.at(key);
      if (v === undefined) return Reflect.get(OBJECT_PROTO, key, receiver);
      if (!isPrimitive(v)) {
        const d = t.#draft();
        t.#touchWith(key, v as Json);
        return t.#child(d[key]);
      }
    }
    // Not an own key: what a plain object inherits (`hasOwnProperty`, `toString`...).
    return v === DELETED ? Reflect.get(OBJECT_PROTO, key, receiver) : v;
  }

  static set(t: RootDraft, key: string | symbol, value: unknown): boolean {
    if (typeof key !== "string") return true;
    if (value === t.#proxy) throw nestedRoot();
    if (t.#drafted === undefined && isPrimitive(value)) {
      // Immer records an assignment only when it changes the value (the order of first records is
      // the order of the patches).
      const direct = t.#direct;
      const known = direct.has(key);
      const cur = known ? direct.get(key) : t.#base.at(key);
      const present = known ? cur !== DELETED : cur !== undefined;
      if (present && cur === value) return true;
      if (!known && present) t.#directBase.set(key, cur as Json);
      direct.set(key, value);
      t.#editedRoot = true;
      return true;
    }
    const drafted = t.#draft();
    t.#touch(key);
    const had = Reflect.getOwnPropertyDescriptor(drafted, key);
    if (had === undefined || !Object.is(had.value, value)) t.#editedRoot = true;
    t.#written.add(key);
    drafted[key] = value;
    return true;
  }

  static deleteProperty(t: RootDraft, key: string | symbol): boolean {
    if (typeof key !== "string") return true;
    const drafted = t.#drafted;
    if (drafted === undefined) {
      const direct = t.#direct;
      if (direct.has(key)) {
        if (t.#directBase.has(key)) {
          if (direct.get(key) !== DELETED) t.#editedRoot = true;
          direct.set(key, DELETED);
        } else {
          // Written by the recipe, absent from the state: absent again (as immer forgets it).
          direct.delete(key);
        }
        return true;
      }
      const b = t.#base.at(key);
      if (b === undefined) return true;
      t.#directBase.set(key, b);
      direct.set(key, DELETED);
      t.#editedRoot = true;
      return true;
    }
    t.#touch(key);
    if (Object.hasOwn(drafted, key)) t.#editedRoot = true;
    t.#written.add(key);
    delete drafted[key];
    return true;
  }

  static has(t: RootDraft, key: string | symbol): boolean {
    if (typeof key === "string") {
      const drafted = t.#drafted;
      if (drafted !== undefined && t.#touched.has(key)) return key in drafted;
      if (t.#direct.has(key)) {
        if (t.#direct.get(key) !== DELETED) return true;
      } else if (t.#base.at(key) !== undefined) return true;
    }
    return key in OBJECT_PROTO;
  }

  static ownKeys(t: RootDraft): string[] {
    // Enumerating the root reads every key of the state (the recipe asked for all of them).
    const all = t.#base.all();
    const keys: string[] = [];
    for (const k of Object.keys(all)) if (t.#present(k) !== false) keys.push(k);
    for (const k of t.#direct.keys()) if (!Object.hasOwn(all, k) && t.#present(k) === true) keys.push(k);
    for (const k of t.#touched) if (!Object.hasOwn(all, k) && t.#present(k) === true) keys.push(k);
    return keys;
  }

  static getOwnPropertyDescriptor(t: RootDraft, key: string | symbol): PropertyDescriptor | undefined {
    if (typeof key !== "string") return undefined;
    const drafted = t.#drafted;
    if (drafted !== undefined && t.#touched.has(key)) return Reflect.getOwnPropertyDescriptor(drafted, key);
    let v: unknown;
    if (t.#direct.has(key)) {
      v = t.#direct.get(key);
      if (v === DELETED) return undefined;
    } else {
      v = t.#base.at(key);
      if (v === undefined) return undefined;
    }
    return { value: v, writable: true, enumerable: true, configurable: true };
  }

  // ------------------------------------------------------------ drafting

  /** Whether a touched key is present now (undefined: untouched, as the state has it). */
  #present(key: string): boolean | undefined {
    const drafted = this.#drafted;
    if (drafted !== undefined && this.#touched.has(key)) return Object.hasOwn(drafted, key);
    if (this.#direct.has(key)) return this.#direct.get(key) !== DELETED;
    return undefined;
  }

  /** Notes a draft handed out (to tell later whether the recipe modified it). */
  #child(v: unknown): unknown {
    if (isDraft(v)) this.#children.add(v as object);
    return v;
  }

  /** The holder's draft, made on first need, with the keys written so far replayed into it in order. */
  #draft(): Record<string, unknown> {
    if (this.#drafted !== undefined) return this.#drafted;
    const holder: Record<string, Json> = {};
    const drafted = this.#immer.createDraft(holder) as Record<string, unknown>;
    this.#holder = holder;
    this.#drafted = drafted;
    for (const [k, v] of this.#direct) {
      this.#touchWith(k, this.#directBase.get(k));
      this.#written.add(k);
      if (v === DELETED) delete drafted[k];
      else drafted[k] = v;
    }
    this.#direct.clear();
    this.#directBase.clear();
    return drafted;
  }

  /** Moves `key` into the holder, with its value in the state. */
  #touch(key: string): void {
    if (!this.#touched.has(key)) this.#touchWith(key, this.#base.at(key));
  }

  #touchWith(key: string, base: Json | undefined): void {
    this.#touched.add(key);
    if (base === undefined) return;
    (this.#holder as Record<string, Json>)[key] = base;
    (this.#drafted as Record<string, unknown>)[key] = base;
  }

  // ------------------------------------------------------------ the end of the recipe

  /** Revokes every draft (the root and immer's), as immer does when its recipe ends. */
  abandon(): void {
    this.#revoke();
    const drafted = this.#drafted;
    if (drafted === undefined) return;
    try {
      this.#immer.finishDraft(drafted);
    } catch {
      // A recipe that left a broken draft behind: it is revoked all the same.
    }
  }

  /** What the recipe did, given what it returned. */
  finish(result: unknown): RecipeOutcome {
    if (result !== undefined && result !== this.#proxy) {
      if (this.#editedRoot || [...this.#children].some((c) => isModified(c))) {
        this.abandon();
        throw new Error(EDITED_AND_RETURNED);
      }
      let root: unknown;
      try {
        root = result === nothing ? undefined : resolveDrafts(result, this.#proxy, 0);
      } finally {
        this.abandon();
      }
      return { kind: "replace", root };
    }
    this.#revoke();
    const paths: Path[] = [];
    const drafted = this.#drafted;
    if (drafted === undefined) {
      // Only primitives written at the root: their patches, as immer makes them.
      // Null-prototype objects: the keys of a wide root are many distinct names, and adding one to
      // a `{}` makes V8 build a new hidden class for it (about 1 µs a key in the benchmark).
      const before = Object.create(null) as Record<string, Json>;
      const after = Object.create(null) as Record<string, unknown>;
      for (const [k, v] of this.#direct) {
        const b = this.#directBase.get(k);
        if (b !== undefined) before[k] = b;
        if (v !== DELETED) after[k] = v;
        if (b !== undefined && v === b) continue;
        paths.push([k]);
      }
      return { kind: "edit", paths, before, after };
    }
    const written = this.#written;
    const after = this.#immer.finishDraft(drafted, (patches: Patch[]) => {
      for (const p of patches) {
        if (p.path.length === 1 && !written.has(p.path[0] as string)) continue;
        paths.push(patchPath(p.path));
      }
    });
    return { kind: "edit", paths, before: this.#holder as Record<string, Json>, after };
  }
}

/** The root draft's Proxy handler (its target is the {@link RootDraft}). */
const HANDLER: ProxyHandler<RootDraft> = {
  get: RootDraft.get,
  set: RootDraft.set,
  deleteProperty: RootDraft.deleteProperty,
  has: RootDraft.has,
  ownKeys: RootDraft.ownKeys,
  getOwnPropertyDescriptor: RootDraft.getOwnPropertyDescriptor,
  getPrototypeOf: () => OBJECT_PROTO,
  defineProperty() {
    throw new TypeError("Object.defineProperty() cannot be used on a document draft");
  },
  setPrototypeOf() {
    throw new TypeError("Object.setPrototypeOf() cannot be used on a document draft");
  },
  preventExtensions: () => false,
};

/**
 * Runs `recipe` on a lazily made draft of the state `base`.
 * @param immer - The immer instance (patches enabled, auto-freeze off).
 * @param base - Reads the state drafted.
 * @param recipe - The user's recipe.
 * @returns What the recipe did; a recipe that neither edits nor returns gives an `edit` without paths.
 * @throws Whatever the recipe throws (its drafts are revoked); immer's error for a recipe that edits
 * the draft and returns a new root; {@link ValidationError} `op/invalid` when the root draft is put
 * inside the state.
 */
export function runRecipe(immer: Immer, base: DraftBase, recipe: (draft: never) => unknown): RecipeOutcome {
  const root = new RootDraft(immer, base);
  let result: unknown;
  try {
    result = recipe(root.draft as never);
  } catch (e) {
    root.abandon();
    throw e;
  }
  return root.finish(result);
}

/**
 * `value` with every draft in it replaced by its current value (a copy of each object or array
 * that holds one; frozen parts are the state's and hold none).
 * @param root - The root draft (refused inside the value).
 */
function resolveDrafts(value: unknown, root: object, depth: number): unknown {
  if (value === root) throw nestedRoot();
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  if (isDraft(value)) return current(value);
  // Deeper than any path may be: left as it is, for the write to refuse.
  if (depth > MAX_PATH_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = resolveDrafts(value[i], root, depth + 1);
      if (v !== value[i]) {
        out ??= value.slice();
        out[i] = v;
      }
    }
    return out ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(value)) {
    const old = (value as Record<string, unknown>)[k];
    const v = resolveDrafts(old, root, depth + 1);
    if (v !== old) {
      out ??= { ...value };
      out[k] = v;
    }
  }
  return out ?? value;
}
