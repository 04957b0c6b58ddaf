/**
 * Differences between two config values as an RFC 6902 JSON Patch (the kept library
 * `fast-json-patch`), always over redacted stored forms: a secret shows as changed or unchanged,
 * never as its text or its ciphertext.
 */
import { ErrorCode, type Json, NxsError } from "@nxs-sync/core";
import jsonPatch, { type Operation } from "fast-json-patch";
import { redactValue } from "./secrets.js";

// fast-json-patch is CommonJS: Node's ESM loader gives its functions on the default export only.
const { applyPatch, compare } = jsonPatch;

/** One RFC 6902 operation; `path` and `from` are JSON Pointers (RFC 6901), `""` the whole value. */
export type JsonPatchOperation =
  | { readonly op: "add"; readonly path: string; readonly value: Json }
  | { readonly op: "remove"; readonly path: string }
  | { readonly op: "replace"; readonly path: string; readonly value: Json }
  | { readonly op: "move"; readonly from: string; readonly path: string }
  | { readonly op: "copy"; readonly from: string; readonly path: string }
  | { readonly op: "test"; readonly path: string; readonly value: Json };

type Kind = "array" | "object" | "scalar";
function kindOf(v: Json): Kind {
  if (Array.isArray(v)) return "array";
  return typeof v === "object" && v !== null ? "object" : "scalar";
}

/**
 * The JSON Patch that turns `a` into `b`, computed over their redacted forms ({@link redactValue}):
 * secrets never appear in it, an envelope left as it was gives no operation, and a re-sealed or
 * changed secret gives a `replace` between two `"[secret <kid> <hash>]"` strings. `undefined` stands
 * for "no value" (a key that does not exist on one side): the patch is then one `add` or `remove` of
 * the whole value (path `""`).
 * @param a - The old value, in stored form (or undefined).
 * @param b - The new value, in stored form (or undefined).
 * @returns The operations (empty when the redacted forms are equal), in the library's order (it
 *   walks an object's keys from the last).
 * @example
 * ```ts
 * diffValues({ rps: 5, tags: ["a"] }, { rps: 6, tags: ["a", "b"] });
 * // [{ op: "add", path: "/tags/1", value: "b" }, { op: "replace", path: "/rps", value: 6 }]
 * ```
 */
export function diffValues(a: Json | undefined, b: Json | undefined): JsonPatchOperation[] {
  if (a === undefined && b === undefined) return [];
  if (b === undefined) return [{ op: "remove", path: "" }];
  const rb = redactValue(b);
  if (a === undefined) return [{ op: "add", path: "", value: rb }];
  const ra = redactValue(a);
  const kind = kindOf(ra);
  if (kind === "scalar" || kind !== kindOf(rb)) {
    return ra === rb ? [] : [{ op: "replace", path: "", value: rb }];
  }
  return compare(ra as object, rb as object) as JsonPatchOperation[];
}

/**
 * Applies a JSON Patch to a value (for tests and previews; the input is not changed). Root
 * operations (path `""`) replace or remove the whole value. A `__proto__` path segment is refused.
 * @param a - The value (undefined: none).
 * @param ops - The operations, in order.
 * @returns The patched copy, or undefined when the patch removed the whole value.
 * @throws NxsError `config/invalid` when an operation does not apply (a missing path, a failing `test`).
 * @example
 * ```ts
 * applyDiff({ rps: 5 }, diffValues({ rps: 5 }, { rps: 6 })); // { rps: 6 }
 * ```
 */
export function applyDiff(a: Json | undefined, ops: readonly JsonPatchOperation[]): Json | undefined {
  let doc = a;
  for (const [i, op] of ops.entries()) {
    if (op.path === "" && (op.op === "add" || op.op === "replace")) {
      doc = op.value;
      continue;
    }
    if (op.path === "" && op.op === "remove") {
      doc = undefined;
      continue;
    }
    if (doc === undefined) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `patch operation ${i} (${op.op} ${op.path}): there is no value`,
      );
    }
    try {
      doc = applyPatch(doc, [op as Operation], true, false).newDocument as Json;
    } catch (cause) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `patch operation ${i} (${op.op} ${op.path}) does not apply: ${(cause as Error).message.split("\n")[0]}`,
        { cause },
      );
    }
  }
  return doc;
}
