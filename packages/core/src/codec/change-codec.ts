import { z } from "zod";
import { decodeHlc, type HlcParts } from "../clock/hlc.js";
import type { DocId, Hlc, ReplicaId } from "../clock/ids.js";
import { ID_PATTERN } from "../clock/ids.js";
import { MAX_OPS_PER_CHANGE } from "../crdt/stamp.js";
import { ErrorCode, type NxsError, ValidationError } from "../errors/errors.js";
import type { Change, Json, Op, Snapshot } from "../model/change.js";
import { toFrozenJson } from "../model/json.js";
import { checkPath } from "../model/path.js";

const id = z.string().regex(ID_PATTERN);
const pathSchema = z.array(z.string()).min(1);
const tagsSchema = z.array(z.string()).optional();

/** The zod schema of one {@link Op} as it travels (values are checked to be JSON separately). */
export const opSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("set"), path: pathSchema, value: z.unknown() }),
  z.object({ kind: z.literal("del"), path: pathSchema }),
  z.object({ kind: z.literal("inc"), path: pathSchema, value: z.number().refine(Number.isFinite) }),
  z.object({ kind: z.literal("add"), path: pathSchema, value: z.unknown() }),
  z.object({ kind: z.literal("rem"), path: pathSchema, value: z.unknown(), tags: tagsSchema }),
]);

/** The zod schema of a {@link Change} as it travels. Adapters may use it at their edge. */
export const changeSchema = z.object({
  doc: id,
  origin: id,
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  hlc: z.string().min(19),
  ops: z.array(opSchema).max(MAX_OPS_PER_CHANGE),
});

/** The zod schema of a {@link Snapshot} envelope (the `state` is decoded by the document). */
export const snapshotSchema = z.object({
  format: z.literal(1),
  doc: id,
  version: z.record(z.string(), z.number().int().min(0)),
  state: z.unknown(),
});

/** The zod schema of a version vector. */
export const versionVectorSchema = z.record(z.string(), z.number().int().min(0));

/**
 * Changes this module made (deeply frozen, already checked), with their decoded HLC: decoding one
 * again returns it as is, so a change decoded by `decodeChanges` (or passed between documents in
 * one process) is not validated twice, and a document reads its HLC parts without parsing the
 * string again ({@link hlcPartsOf}).
 */
/**
 * A change this module made: its own fields as a plain change's (enumerable, so JSON, spreads,
 * structured clones and equality see a plain change), and its HLC's parts in a private field that
 * none of those carry (a copy is a plain object, checked again when decoded). A WeakMap did the same
 * at a GC cost per change that showed in merges of 100,000 changes.
 */
class DecodedChange {
  readonly #parts: HlcParts;
  constructor(
    readonly doc: DocId,
    readonly origin: ReplicaId,
    readonly seq: number,
    readonly hlc: Hlc,
    readonly ops: readonly Op[],
    parts: HlcParts,
  ) {
    this.#parts = parts;
  }

  static partsOf(x: object): HlcParts | undefined {
    return #parts in x ? (x as DecodedChange).#parts : undefined;
  }
}

function isDecoded(input: object): boolean {
  return DecodedChange.partsOf(input) !== undefined;
}

/**
 * The parts of a change's HLC when {@link decodeChange} (or `decodeChanges`) made the change, else
 * undefined (nothing is parsed).
 * @internal
 */
export function knownHlcParts(change: Change): HlcParts | undefined {
  return DecodedChange.partsOf(change);
}

/**
 * The parts of a change's HLC: those {@link decodeChange} found when it made the change, else
 * parsed now.
 * @param change - A decoded change (or a local one).
 * @returns Its HLC's parts.
 * @throws {@link ClockError} `hlc/invalid` when a change not made by {@link decodeChange} has a
 * malformed HLC.
 */
export function hlcPartsOf(change: Change): HlcParts {
  return DecodedChange.partsOf(change) ?? decodeHlc(change.hlc);
}

/**
 * Decodes an untrusted change: shape (zod), op paths, JSON values, and an HLC whose node is the
 * change's origin. The result is a fresh, deeply frozen {@link Change}.
 * @param input - Anything received.
 * @returns The change.
 * @throws {@link ValidationError} `op/invalid` for a malformed change, {@link ClockError}
 * `hlc/invalid` for a malformed HLC.
 */
export function decodeChange(input: unknown): Change {
  return decodeChangeWith(input, undefined);
}

/**
 * {@link decodeChange}, given the parts of the change's HLC when the caller made its `hlc` string
 * from them (`decodeChanges` does), so the string is not parsed again.
 * @internal
 */
export function decodeChangeWith(input: unknown, hlcParts: HlcParts | undefined): Change {
  if (typeof input === "object" && input !== null && isDecoded(input)) return input as Change;
  let c: z.infer<typeof changeSchema>;
  if (wellFormed(input)) c = input;
  else {
    const r = changeSchema.safeParse(input);
    if (!r.success) {
      throw new ValidationError(`malformed change: ${r.error.issues[0]?.message ?? "invalid"}`, {
        code: ErrorCode.OpInvalid,
        cause: r.error,
        issues: r.error.issues.map((i) => ({ path: i.path, message: i.message })),
      });
    }
    c = r.data;
  }
  const parts = hlcParts ?? decodeHlc(c.hlc);
  if (parts.node !== c.origin) {
    throw new ValidationError(`change hlc ${c.hlc} was not made by its origin ${c.origin}`, {
      code: ErrorCode.OpInvalid,
    });
  }
  const ops: Op[] = new Array(c.ops.length);
  for (let k = 0; k < c.ops.length; k++) {
    const op = c.ops[k] as z.infer<typeof opSchema>;
    const bad = checkPath(op.path);
    if (bad !== undefined) throw opError(k, bad);
    const path = Object.freeze(op.path.slice());
    switch (op.kind) {
      case "del":
        ops[k] = Object.freeze({ kind: "del", path });
        break;
      case "inc":
        // -0 as 0, as for every value (toFrozenJson): JSON has no -0.
        ops[k] = Object.freeze({ kind: "inc", path, value: op.value === 0 ? 0 : op.value });
        break;
      default: {
        const v = op.value;
        // A JSON primitive (the common value) is its own frozen copy: no checker state to allocate.
        if (op.kind !== "rem" && isPrimitiveJson(v)) {
          ops[k] = Object.freeze({ kind: op.kind, path, value: v === 0 ? 0 : v }) as Op;
          break;
        }
        const why = { path: [] as PropertyKey[], message: "" };
        const value = toFrozenJson(v, why);
        if (value === undefined)
          throw opError(k, `value is not JSON at ${JSON.stringify(why.path)}: ${why.message}`);
        if (op.kind === "rem" && op.tags !== undefined) {
          // Tags are the HLCs of adds: the state stores them, and its snapshots only hold HLCs.
          for (const tag of op.tags)
            if (!isHlc(tag)) throw opError(k, `tag ${JSON.stringify(tag)} is not an hlc`);
          ops[k] = Object.freeze({ kind: "rem", path, value, tags: Object.freeze(op.tags.slice()) });
        } else {
          ops[k] = Object.freeze({ kind: op.kind, path, value }) as Op;
        }
      }
    }
  }
  return Object.freeze(
    new DecodedChange(c.doc as DocId, c.origin as ReplicaId, c.seq, c.hlc as Hlc, Object.freeze(ops), parts),
  );
}

/**
 * A change with the ops of `like` (a change this module made, so its ops are checked and frozen)
 * and its own seq and HLC: the later changes of a format 2 group share their ops.
 * @internal
 */
export function changeLike(like: Change, seq: number, hlc: string, parts: HlcParts): Change {
  if (parts.node !== like.origin || !Number.isSafeInteger(seq) || seq < 1)
    throw new ValidationError(`change ${like.origin}/${seq} is malformed`, { code: ErrorCode.OpInvalid });
  return Object.freeze(new DecodedChange(like.doc, like.origin, seq, hlc as Hlc, like.ops, parts));
}

/**
 * Whether `v` is a string, a boolean, null or a finite number: a value {@link toFrozenJson} returns
 * as it is (but -0, which it makes 0).
 */
function isPrimitiveJson(v: unknown): v is string | boolean | number | null {
  const t = typeof v;
  return t === "string" || t === "boolean" || v === null || (t === "number" && Number.isFinite(v));
}

function isHlc(tag: string): boolean {
  try {
    decodeHlc(tag);
    return true;
  } catch {
    return false;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isStringArray(v: unknown): v is string[] {
  if (!Array.isArray(v)) return false;
  for (const x of v) if (typeof x !== "string") return false;
  return true;
}

/**
 * A plain-code check that `input` passes {@link changeSchema} (only true when zod would accept it;
 * anything else goes through zod, for its error messages). The hot path of `applyRemote`.
 */
function wellFormed(input: unknown): input is z.infer<typeof changeSchema> {
  if (!isRecord(input)) return false;
  const { doc, origin, seq, hlc, ops } = input;
  if (
    typeof doc !== "string" ||
    typeof origin !== "string" ||
    !ID_PATTERN.test(doc) ||
    !ID_PATTERN.test(origin)
  )
    return false;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) return false;
  if (typeof hlc !== "string" || hlc.length < 19) return false;
  if (!Array.isArray(ops) || ops.length > MAX_OPS_PER_CHANGE) return false;
  for (const op of ops) {
    if (!isRecord(op)) return false;
    const path = op.path;
    if (!isStringArray(path) || path.length === 0) return false;
    switch (op.kind) {
      case "set":
      case "del":
      case "add":
        break;
      case "inc":
        if (typeof op.value !== "number" || !Number.isFinite(op.value)) return false;
        break;
      case "rem":
        if (op.tags !== undefined && !isStringArray(op.tags)) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

function opError(index: number, message: string): NxsError {
  return new ValidationError(`op ${index}: ${message}`, {
    code: ErrorCode.OpInvalid,
    issues: [{ path: ["ops", index], message }],
  });
}

/**
 * Decodes an untrusted snapshot envelope.
 * @param input - Anything.
 * @returns The snapshot (its `state` still undecoded).
 * @throws {@link ValidationError} `schema/invalid` when the envelope is malformed.
 */
export function decodeSnapshot(input: unknown): Snapshot {
  const r = snapshotSchema.safeParse(input);
  if (!r.success) {
    throw new ValidationError("malformed snapshot", {
      cause: r.error,
      issues: r.error.issues.map((i) => ({ path: i.path, message: i.message })),
    });
  }
  return {
    ...r.data,
    doc: r.data.doc as DocId,
    state: r.data.state as Json,
    version: Object.freeze(r.data.version),
  };
}
