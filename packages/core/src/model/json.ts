import type { Json } from "./change.js";

/**
 * Checks that `value` is JSON (null, booleans, finite numbers, strings, arrays, plain objects) and
 * returns a deeply frozen copy of it. Object properties whose value is `undefined` are dropped (as
 * `JSON.stringify` does). Frozen input is returned as is when it is already valid JSON.
 * @param value - Anything.
 * @returns The frozen JSON value, or `undefined` when `value` is not JSON (`why` says where).
 */
export function toFrozenJson(
  value: unknown,
  why?: { path: PropertyKey[]; message: string },
): Json | undefined {
  return copy(value, why, []);
}

function fail(why: { path: PropertyKey[]; message: string } | undefined, path: PropertyKey[], msg: string) {
  if (why !== undefined) {
    why.path = path;
    why.message = msg;
  }
  return undefined;
}

function copy(
  value: unknown,
  why: { path: PropertyKey[]; message: string } | undefined,
  at: PropertyKey[],
): Json | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      // JSON has no -0: normalized here, a value reads the same before and after any encoding.
      if (value === 0) return 0;
      return Number.isFinite(value) ? value : fail(why, at, `not a finite number: ${value}`);
    case "object": {
      if (value === null) return null;
      if (Array.isArray(value)) {
        const out: Json[] = new Array(value.length);
        for (let i = 0; i < value.length; i++) {
          const v = copy(value[i], why, why === undefined ? at : [...at, i]);
          if (v === undefined) return undefined;
          out[i] = v;
        }
        return Object.freeze(out);
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return fail(why, at, "not a plain object");
      const out: Record<string, Json> = {};
      for (const k of Object.keys(value)) {
        const raw = (value as Record<string, unknown>)[k];
        if (raw === undefined) continue;
        if (k === "__proto__") return fail(why, [...at, k], 'the key "__proto__" is not allowed');
        const v = copy(raw, why, why === undefined ? at : [...at, k]);
        if (v === undefined) return undefined;
        out[k] = v;
      }
      return Object.freeze(out);
    }
    default:
      return fail(why, at, `not JSON: ${typeof value}`);
  }
}

/**
 * Whether `value` is a plain object (not an array, not null).
 * @param value - Anything.
 * @returns True for `{}`-like values.
 */
export function isPlainObject(value: unknown): value is { readonly [key: string]: Json } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A canonical JSON text of a value (object keys sorted), used as the identity of set elements.
 * @param value - A JSON value.
 * @returns The same text for deeply equal values.
 */
export function canonicalJson(value: Json): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as { readonly [key: string]: Json };
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k] as Json)}`).join(",")}}`;
}

const RANK = { boolean: 1, number: 2, string: 3, object: 4 } as const;

/**
 * A total order over JSON values: null, booleans, numbers, strings, then arrays and objects (by
 * canonical text). Sorts the elements of add-wins sets.
 * @param a - A JSON value.
 * @param b - Another JSON value.
 * @returns Negative, 0 or positive.
 */
export function compareJson(a: Json, b: Json): number {
  const ra = a === null ? 0 : RANK[typeof a as keyof typeof RANK];
  const rb = b === null ? 0 : RANK[typeof b as keyof typeof RANK];
  if (ra !== rb) return ra - rb;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  if (a === null) return 0;
  const ca = canonicalJson(a);
  const cb = canonicalJson(b);
  return ca < cb ? -1 : ca > cb ? 1 : 0;
}

/**
 * Deep equality of JSON values.
 * @param a - A JSON value (or undefined).
 * @param b - Another.
 * @returns True when both encode to the same canonical JSON.
 */
export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as readonly Json[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], bb[i])) return false;
    return true;
  }
  const ao = a as { readonly [key: string]: Json };
  const bo = b as { readonly [key: string]: Json };
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) if (!Object.hasOwn(bo, k) || !jsonEqual(ao[k], bo[k])) return false;
  return true;
}

/**
 * `next` with every part equal to the same place in `prev` replaced by `prev`'s object, so that
 * what did not change keeps its identity (deeply frozen values in, deeply frozen values out).
 * @param prev - An earlier version of the value.
 * @param next - The new version.
 * @returns `prev` itself when the two are equal, else a value sharing `prev`'s equal parts.
 */
export function shareUnchanged(prev: Json | undefined, next: Json): Json {
  if (prev === next || prev === undefined || typeof next !== "object" || next === null) return next;
  if (Array.isArray(next)) {
    if (!Array.isArray(prev)) return next;
    let same = prev.length === next.length;
    const out: Json[] = new Array(next.length);
    for (let i = 0; i < next.length; i++) {
      const v = shareUnchanged(prev[i], next[i] as Json);
      out[i] = v;
      if (v !== prev[i]) same = false;
    }
    return same ? prev : Object.freeze(out);
  }
  if (!isPlainObject(prev)) return next;
  const keys = Object.keys(next);
  let same = keys.length === Object.keys(prev).length;
  const out: Record<string, Json> = {};
  for (const k of keys) {
    const v = shareUnchanged(prev[k], (next as Record<string, Json>)[k] as Json);
    out[k] = v;
    if (v !== prev[k]) same = false;
  }
  return same ? prev : Object.freeze(out);
}
