import {
  type Change,
  type DocId,
  decodeChanges,
  decodeHlc,
  ErrorCode,
  encodeChanges,
  ID_PATTERN,
  type Snapshot,
  ValidationError,
  type VersionVector,
} from "@nxs-sync/core";
import { z } from "zod";
import { MAX_CHANGES_BYTES } from "./schema.js";

/** Limits applied when decoding records. */
export interface RecordLimits {
  /** Largest JSON size of a record's `changes`, in UTF-16 code units of `JSON.stringify`. Default 8 MiB. */
  readonly maxChangesBytes?: number;
  /** Largest number of changes in one record (a pack). Default 10 000. */
  readonly maxChanges?: number;
  /** Largest number of ops in one change. Default 10 000. */
  readonly maxOps?: number;
  /** Largest length of a path. Default 64. */
  readonly maxPathLength?: number;
}

/** Options of {@link decodeChangeRecord}. */
export interface DecodeChangeOptions extends RecordLimits {
  /** Only these documents are accepted (a record of another doc is quarantined). */
  readonly docs?: ReadonlySet<string> | readonly string[];
  /**
   * Decodes an HLC string; throws when it is unparsable. Default: core's `decodeHlc`.
   */
  readonly decodeHlc?: (hlc: string) => unknown;
  /**
   * Require `origin` to be bound to the author node (`<node>` or `<node>.<instance>`). Default true.
   * Turn off only where every writer is trusted (e.g. replicator-role test fixtures).
   */
  readonly requireBoundOrigin?: boolean;
}

/** The result of decoding one record: a value, or the typed reason it was quarantined. */
export type DecodeResult<T> =
  | { readonly ok: true; readonly value: T; readonly recordId: string }
  | { readonly ok: false; readonly error: ValidationError; readonly recordId: string | undefined };

const id = z.string().regex(ID_PATTERN);
const json = z.json();
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/**
 * The zod schema of an `nxs_changes` record as the API returns it (extra fields are ignored): a
 * pack of the consecutive changes `seq..last` of one origin, `changes` in core's change-batch form
 * (`EncodedChanges`, checked by core's `decodeChanges`). See docs/adr/0005-change-packs.md.
 */
export const changeRecordSchema = z
  .object({
    id: z.string().min(1).max(64),
    doc: id,
    origin: id,
    seq,
    last: seq,
    hlc: z.string().min(1).max(64),
    changes: z.looseObject({ g: z.array(z.unknown()) }),
    node: z.string().min(1).max(64),
  })
  .refine((r) => r.last >= r.seq, { message: "last is below seq", path: ["last"] });

/** An `nxs_changes` record after validation of its envelope. */
export type ChangeRecord = z.infer<typeof changeRecordSchema>;

/** The zod schema of an `nxs_snapshots` record. */
export const snapshotRecordSchema = z.object({
  id: z.string().min(1).max(64),
  doc: id,
  version: z.record(z.string().regex(ID_PATTERN), z.number().int().min(0)),
  state: z.object({ format: z.literal(1), state: json }),
  node: z.string().min(1).max(64),
  created: z.string().optional(),
});

/**
 * Whether `origin` belongs to node record `node`: `origin` is the node id or `<node>.<instance>`.
 * @param origin - The change's origin (replica id).
 * @param node - The author node record id.
 * @returns True when bound.
 */
export function isOriginOfNode(origin: string, node: string): boolean {
  return node.length > 0 && (origin === node || origin.startsWith(`${node}.`));
}

function recordIdOf(raw: unknown): string | undefined {
  const v = (raw as { id?: unknown } | null)?.id;
  return typeof v === "string" ? v : undefined;
}

function invalid(
  message: string,
  recordId: string | undefined,
  issues: ValidationError["issues"] = [],
  cause?: unknown,
) {
  return {
    ok: false as const,
    recordId,
    error: new ValidationError(`nxs_changes record ${recordId ?? "?"}: ${message}`, {
      code: ErrorCode.SchemaInvalid,
      issues,
      cause,
    }),
  };
}

/**
 * Validates an `nxs_changes` record (from a list, a realtime event or another server) and turns it
 * into its changes (a pack: `seq..last` of one origin). Never throws: a malformed record (wrong
 * types, a pack that does not match its envelope, huge values, unknown doc, origin not bound to its
 * author node, unparsable HLC) comes back as `ok: false` with a {@link ValidationError} and the
 * record id, for quarantine.
 * @param raw - The record as received.
 * @param options - Accepted docs, HLC decoder, limits.
 * @returns The changes, oldest first, or why the record was refused.
 */
export function decodeChangeRecord(
  raw: unknown,
  options: DecodeChangeOptions = {},
): DecodeResult<readonly Change[]> {
  const recordId = recordIdOf(raw);
  const parsed = changeRecordSchema.safeParse(raw);
  if (!parsed.success) {
    return invalid(
      "malformed record",
      recordId,
      parsed.error.issues.map((i) => ({ path: i.path, message: i.message })),
      parsed.error,
    );
  }
  const r = parsed.data;
  const count = r.last - r.seq + 1;
  const maxChanges = options.maxChanges ?? 10_000;
  if (count > maxChanges) return invalid(`${count} changes exceed the limit of ${maxChanges}`, recordId);
  const docs = options.docs;
  if (docs !== undefined) {
    const known = docs instanceof Set ? docs.has(r.doc) : (docs as readonly string[]).includes(r.doc);
    if (!known) return invalid(`unknown doc ${JSON.stringify(r.doc)}`, recordId);
  }
  if (options.requireBoundOrigin !== false && !isOriginOfNode(r.origin, r.node)) {
    return invalid(`origin ${JSON.stringify(r.origin)} is not bound to its author node ${r.node}`, recordId);
  }
  try {
    (options.decodeHlc ?? decodeHlc)(r.hlc);
  } catch (e) {
    return invalid(`unparsable hlc ${JSON.stringify(r.hlc)}`, recordId, [], e);
  }
  const maxBytes = options.maxChangesBytes ?? MAX_CHANGES_BYTES;
  const size = JSON.stringify(r.changes).length;
  if (size > maxBytes) return invalid(`changes of ${size} bytes exceed the limit of ${maxBytes}`, recordId);
  let changes: Change[];
  try {
    changes = decodeChanges(r.changes);
  } catch (e) {
    return invalid(`malformed changes: ${e instanceof Error ? e.message : String(e)}`, recordId, [], e);
  }
  if (changes.length !== count) {
    return invalid(`holds ${changes.length} changes, its envelope says ${r.seq}..${r.last}`, recordId);
  }
  if ((changes[changes.length - 1] as Change).hlc !== r.hlc) {
    return invalid(`envelope hlc ${JSON.stringify(r.hlc)} is not the last change's`, recordId);
  }
  const maxOps = options.maxOps ?? 10_000;
  const maxPath = options.maxPathLength ?? 64;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i] as Change;
    if (c.doc !== r.doc || c.origin !== r.origin || c.seq !== r.seq + i) {
      return invalid(`change ${c.doc}/${c.origin}/${c.seq} does not match its envelope`, recordId);
    }
    if (c.ops.length > maxOps) return invalid(`${c.ops.length} ops exceed the limit of ${maxOps}`, recordId);
    if (c.ops.some((o) => o.path.length > maxPath))
      return invalid(`a path is longer than ${maxPath}`, recordId);
  }
  return { ok: true, value: changes, recordId: r.id };
}

function packError(message: string): ValidationError {
  return new ValidationError(`encodeChangeRecord: ${message}`, { code: ErrorCode.OpInvalid });
}

/**
 * The body of the `nxs_changes` record that stores `changes` (a pack), authored by node `node`.
 * @param changes - Consecutive changes (seq without a gap) of one origin of one doc, at least one.
 * @param node - The author node record id (the authenticated node for a gateway).
 * @returns The record body for the create API.
 * @throws {@link ValidationError} `op/invalid` when `changes` is empty or not one run.
 */
export function encodeChangeRecord(changes: readonly Change[], node: string): Record<string, unknown> {
  const first = changes[0];
  const last = changes[changes.length - 1];
  if (first === undefined || last === undefined) throw packError("no changes");
  for (let i = 1; i < changes.length; i++) {
    const c = changes[i] as Change;
    if (c.doc !== first.doc || c.origin !== first.origin || c.seq !== first.seq + i) {
      throw packError(
        `${c.doc}/${c.origin}/${c.seq} does not follow ${first.doc}/${first.origin}/${first.seq + i - 1}`,
      );
    }
  }
  return {
    doc: first.doc,
    origin: first.origin,
    seq: first.seq,
    last: last.seq,
    hlc: last.hlc,
    changes: encodeChanges(changes),
    node,
  };
}

/**
 * The body of a record holding the changes of `record` from seq `from` on (the tail a server lacks
 * when it holds a shorter pack at the same key). Keeps the author node. Works on a record as read
 * from a server and on a body made by this function (no `id`).
 * @param record - A valid `nxs_changes` record or body.
 * @param from - The first seq to keep; must be above the record's first seq.
 * @returns The body, or undefined when nothing is left, `from` does not cut the record, or the
 * record is invalid.
 */
export function sliceChangeRecord(
  record: Readonly<Record<string, unknown>>,
  from: number,
): Record<string, unknown> | undefined {
  if (!(typeof record.seq === "number" && from > record.seq)) return undefined;
  const d = decodeChangeRecord({ ...record, id: record.id ?? "body" }, { requireBoundOrigin: false });
  if (!d.ok) return undefined;
  const tail = d.value.filter((c) => c.seq >= from);
  if (tail.length === 0) return undefined;
  return encodeChangeRecord(tail, String(record.node));
}

/** Limits of {@link packChanges}. */
export interface PackLimits {
  /** Most changes per pack. */
  readonly packSize: number;
  /** Largest estimated JSON size of a pack's ops, in bytes. */
  readonly packMaxBytes: number;
}

/** Limits of {@link cutRuns}. */
export interface CutLimits<T> {
  /** Most items per run. */
  readonly max: number;
  /** Largest total size per run (an item bigger than this is a run of its own). */
  readonly maxBytes: number;
  /** Size of one item. */
  readonly sizeOf: (item: T) => number;
  /** Whether `next` may join the run that ends with `prev`. Default: always. */
  readonly joins?: (prev: T, next: T) => boolean;
}

/**
 * Cuts a list into runs, in order, within a count and a size limit (and a joining rule).
 * @param items - The list.
 * @param limits - Count, size and joining rule.
 * @returns The runs.
 */
export function cutRuns<T>(items: readonly T[], limits: CutLimits<T>): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = limits.sizeOf(item);
    const prev = cur[cur.length - 1];
    if (
      prev !== undefined &&
      (cur.length >= limits.max ||
        bytes + size > limits.maxBytes ||
        (limits.joins !== undefined && !limits.joins(prev, item)))
    ) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * Cuts changes into packs: runs of consecutive seqs of one origin and doc, within the limits. A
 * change larger than `packMaxBytes` is a pack of its own (the server decides whether it fits).
 * @param changes - Changes in outbox order.
 * @param limits - Size limits.
 * @returns Packs, in the order of `changes`.
 */
export function packChanges(changes: readonly Change[], limits: PackLimits): Change[][] {
  return cutRuns(changes, {
    max: limits.packSize,
    maxBytes: limits.packMaxBytes,
    sizeOf: estimateChangeBytes,
    joins: (prev, c) => prev.doc === c.doc && prev.origin === c.origin && prev.seq + 1 === c.seq,
  });
}

/**
 * A cheap estimate of the JSON size of a change in a record, without serialising it (strings count
 * twice, for escapes).
 * @param c - A change.
 * @returns Bytes, roughly.
 */
export function estimateChangeBytes(c: Change): number {
  let n = 16;
  for (const op of c.ops) {
    n += 24;
    for (const seg of op.path) n += seg.length + 3;
    if ("value" in op) n += valueSize(op.value);
  }
  return n;
}

function valueSize(v: unknown): number {
  if (typeof v === "string") return v.length * 2 + 2;
  if (v === null || typeof v !== "object") return 24;
  return JSON.stringify(v).length;
}

/**
 * Validates an `nxs_snapshots` record and turns it into a {@link Snapshot}. Never throws.
 * @param raw - The record as received.
 * @param options - Accepted docs.
 * @returns The snapshot, or why it was refused.
 */
export function decodeSnapshotRecord(
  raw: unknown,
  options: Pick<DecodeChangeOptions, "docs"> = {},
): DecodeResult<Snapshot> {
  const recordId = recordIdOf(raw);
  const parsed = snapshotRecordSchema.safeParse(raw);
  if (!parsed.success) {
    const err = new ValidationError(`nxs_snapshots record ${recordId ?? "?"}: malformed record`, {
      issues: parsed.error.issues.map((i) => ({ path: i.path, message: i.message })),
      cause: parsed.error,
    });
    return { ok: false, error: err, recordId };
  }
  const r = parsed.data;
  const docs = options.docs;
  if (
    docs !== undefined &&
    !(docs instanceof Set ? docs.has(r.doc) : (docs as readonly string[]).includes(r.doc))
  ) {
    return {
      ok: false,
      recordId,
      error: new ValidationError(`nxs_snapshots record ${recordId}: unknown doc ${JSON.stringify(r.doc)}`),
    };
  }
  const snapshot: Snapshot = {
    format: 1,
    doc: r.doc as DocId,
    version: Object.freeze({ ...r.version }) as VersionVector,
    state: r.state.state,
  };
  return { ok: true, value: snapshot, recordId: r.id };
}

/**
 * The body of the `nxs_snapshots` record that stores `snapshot`.
 * @param snapshot - A snapshot made by core.
 * @param node - The author node record id.
 * @returns The record body for the create API.
 */
export function encodeSnapshotRecord(snapshot: Snapshot, node: string): Record<string, unknown> {
  return {
    doc: snapshot.doc,
    version: snapshot.version,
    state: { format: snapshot.format, state: snapshot.state },
    node,
  };
}
