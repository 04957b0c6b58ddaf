import {
  type Change,
  type DocId,
  decodeHlc,
  ErrorCode,
  type Hlc,
  ID_PATTERN,
  type ReplicaId,
  type Snapshot,
  ValidationError,
  type VersionVector,
} from "@nxs-sync/core";
import { z } from "zod";
import { MAX_OPS_BYTES } from "./schema.js";

/** Limits applied when decoding records. */
export interface RecordLimits {
  /** Largest JSON size of a change's ops, in UTF-16 code units of `JSON.stringify`. Default 8 MiB. */
  readonly maxOpsBytes?: number;
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

/** The result of decoding one record: a change, or the typed reason it was quarantined. */
export type DecodeResult<T> =
  | { readonly ok: true; readonly value: T; readonly recordId: string }
  | { readonly ok: false; readonly error: ValidationError; readonly recordId: string | undefined };

const id = z.string().regex(ID_PATTERN);
const path = z.array(z.string().max(512));
const json = z.json();

const opSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("set"), path, value: json }),
  z.object({ kind: z.literal("del"), path }),
  z.object({ kind: z.literal("inc"), path, value: z.number().refine(Number.isFinite, "not finite") }),
  z.object({ kind: z.literal("add"), path, value: json }),
  // `tags`: the add tags the remover had observed; without it a remove is not add-wins (docs/protocol.md).
  z.object({
    kind: z.literal("rem"),
    path,
    value: json,
    tags: z.array(z.string().max(128)).max(100_000).optional(),
  }),
]);

/** The zod schema of an `nxs_changes` record as the API returns it (extra fields are ignored). */
export const changeRecordSchema = z.object({
  id: z.string().min(1).max(64),
  doc: id,
  origin: id,
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  hlc: z.string().min(1).max(64),
  ops: z.array(opSchema),
  node: z.string().min(1).max(64),
});

/** An `nxs_changes` record after validation. */
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
 * into a {@link Change}. Never throws: a malformed record (wrong types, huge values, unknown doc,
 * origin not bound to its author node, unparsable HLC) comes back as `ok: false` with a
 * {@link ValidationError} and the record id, for quarantine.
 * @param raw - The record as received.
 * @param options - Accepted docs, HLC decoder, limits.
 * @returns The change, or why it was refused.
 */
export function decodeChangeRecord(raw: unknown, options: DecodeChangeOptions = {}): DecodeResult<Change> {
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
  const maxOps = options.maxOps ?? 10_000;
  if (r.ops.length > maxOps) return invalid(`${r.ops.length} ops exceed the limit of ${maxOps}`, recordId);
  const maxPath = options.maxPathLength ?? 64;
  if (r.ops.some((o) => o.path.length > maxPath))
    return invalid(`a path is longer than ${maxPath}`, recordId);
  const maxBytes = options.maxOpsBytes ?? MAX_OPS_BYTES;
  const size = JSON.stringify(r.ops).length;
  if (size > maxBytes) return invalid(`ops of ${size} bytes exceed the limit of ${maxBytes}`, recordId);
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
  const change: Change = {
    doc: r.doc as DocId,
    origin: r.origin as ReplicaId,
    seq: r.seq,
    hlc: r.hlc as Hlc,
    ops: r.ops as Change["ops"],
  };
  return { ok: true, value: change, recordId: r.id };
}

/**
 * The body of the `nxs_changes` record that stores `change`, authored by node `node`.
 * @param change - A change made by core.
 * @param node - The author node record id (the authenticated node for a gateway).
 * @returns The record body for the create API.
 */
export function encodeChangeRecord(change: Change, node: string): Record<string, unknown> {
  return { doc: change.doc, origin: change.origin, seq: change.seq, hlc: change.hlc, ops: change.ops, node };
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
