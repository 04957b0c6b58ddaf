import {
  encodeHlc,
  HLC_COUNTER_DIGITS,
  HLC_MAX_COUNTER,
  HLC_MAX_MS,
  HLC_MS_DIGITS,
  type HlcParts,
} from "../clock/hlc.js";
import { ErrorCode, ValidationError } from "../errors/errors.js";
import type { Change, Json, Op, Path } from "../model/change.js";
import { isPlainObject, toFrozenJson } from "../model/json.js";
import { decodeChangeWith } from "./change-codec.js";
import { isSeparator, SeparatorPicker } from "./columns.js";

/**
 * A list of changes of one document in a compact JSON form (see docs/protocol.md, *Change
 * batches*): changes grouped by origin into runs of consecutive seqs, HLCs as deltas, and the ops
 * of a run as columns (kinds, paths, values, tags).
 */
export interface EncodedChanges {
  /** The document (absent when the list is empty). */
  readonly doc?: string;
  /** Path separators (between paths, between segments), absent when paths are arrays. */
  readonly sep?: string;
  readonly sep2?: string;
  /** The runs. */
  readonly g: readonly EncodedChangeRun[];
}

/** Consecutive changes of one origin, ops as columns. */
export interface EncodedChangeRun {
  /** Origin. */
  readonly o: string;
  /** Seq of the first change; the others follow without a gap. */
  readonly s: number;
  /**
   * Per change, its HLC relative to the previous one of the run (the first one's is `(0, 0)`):
   * `t >= 0` same ms, counter + t; `t < 0` ms - t, counter 0; `[ms delta, counter]` otherwise.
   */
  readonly h: readonly (number | readonly [number, number])[];
  /** Ops per change: one number when every change of the run has as many. */
  readonly n: number | readonly number[];
  /** Op kinds, one character per op (`s`et `d`el `i`nc `a`dd `r`em); absent when all are sets. */
  readonly k?: string;
  /** Paths of the ops: one string (`sep` between paths, `sep2` between segments) or arrays. */
  readonly p: string | readonly (readonly string[])[];
  /** Values of the ops that have one (every kind but `del`), in order. */
  readonly v: readonly Json[];
  /** Tags of the `rem` ops, in order (`null` when a rem has none); absent without rem ops. */
  readonly t?: readonly (readonly string[] | null)[];
}

const KIND_CHAR = { set: "s", del: "d", inc: "i", add: "a", rem: "r" } as const;
const CHAR_KIND: Readonly<Record<string, Op["kind"]>> = { s: "set", d: "del", i: "inc", a: "add", r: "rem" };

function msOf(hlc: string): number {
  return Number.parseInt(hlc.slice(0, HLC_MS_DIGITS), 16);
}
function counterOf(hlc: string): number {
  return Number.parseInt(hlc.slice(HLC_MS_DIGITS, HLC_MS_DIGITS + HLC_COUNTER_DIGITS), 16);
}

interface Run {
  origin: string;
  start: number;
  changes: Change[];
}

/**
 * Encodes changes of one document (e.g. what `changesSince` returned) in the compact form of
 * {@link EncodedChanges}. A pure function: the result is JSON, for a transport or a peer exchange.
 * Changes of one origin keep their relative order; origins are grouped.
 * @param changes - Changes of one document.
 * @returns The encoded list.
 * @throws {@link ValidationError} `op/invalid` when the changes are of several documents.
 */
export function encodeChanges(changes: readonly Change[]): EncodedChanges {
  if (changes.length === 0) return { g: [] };
  const doc = (changes[0] as Change).doc;
  // Runs: per origin, consecutive seqs.
  const runs: Run[] = [];
  const lastRun = new Map<string, Run>();
  const picker = new SeparatorPicker();
  for (const c of changes) {
    if (c.doc !== doc)
      throw new ValidationError(`encodeChanges: changes of docs ${doc} and ${c.doc}`, {
        code: ErrorCode.OpInvalid,
      });
    let run = lastRun.get(c.origin);
    if (run === undefined || run.start + run.changes.length !== c.seq) {
      run = { origin: c.origin, start: c.seq, changes: [] };
      runs.push(run);
      lastRun.set(c.origin, run);
    }
    run.changes.push(c);
    for (const op of c.ops) for (const seg of op.path) picker.see(seg);
  }
  const seps = picker.pickTwo();
  const g: EncodedChangeRun[] = runs.map((run) => {
    const h: (number | readonly [number, number])[] = [];
    const counts: number[] = [];
    // Kind characters, collected only once a kind other than set shows up (most runs are all sets).
    let kinds: string[] | undefined;
    let opCount = 0;
    const paths: string[] = [];
    const pathArrays: Path[] = [];
    const values: Json[] = [];
    const tags: (readonly string[] | null)[] = [];
    let ms = 0;
    let counter = 0;
    for (const c of run.changes) {
      const cms = msOf(c.hlc);
      const cc = counterOf(c.hlc);
      if (cms === ms && cc >= counter) h.push(cc - counter);
      else if (cms > ms && cc === 0) h.push(ms - cms);
      else h.push([cms - ms, cc]);
      ms = cms;
      counter = cc;
      counts.push(c.ops.length);
      for (const op of c.ops) {
        if (op.kind !== "set" && kinds === undefined) kinds = new Array<string>(opCount).fill("s");
        if (kinds !== undefined) kinds.push(KIND_CHAR[op.kind]);
        opCount++;
        const path = op.path;
        if (seps !== undefined) paths.push(path.length === 1 ? (path[0] as string) : path.join(seps[1]));
        else pathArrays.push(path);
        if (op.kind !== "del") values.push(op.value);
        if (op.kind === "rem") tags.push(op.tags ?? null);
      }
    }
    const n = counts.every((x) => x === counts[0]) ? (counts[0] as number) : counts;
    const p = seps !== undefined && opCount > 0 ? paths.join(seps[0]) : pathArrays;
    const out: {
      o: string;
      s: number;
      h: typeof h;
      n: typeof n;
      k?: string;
      p: typeof p;
      v: Json[];
      t?: typeof tags;
    } =
      kinds === undefined
        ? { o: run.origin, s: run.start, h, n, p, v: values }
        : { o: run.origin, s: run.start, h, n, k: kinds.join(""), p, v: values };
    if (tags.length > 0) out.t = tags;
    return out;
  });
  return seps === undefined ? { doc, g } : { doc, sep: seps[0], sep2: seps[1], g };
}

function malformed(msg: string): never {
  throw new ValidationError(`malformed change list: ${msg}`, { code: ErrorCode.OpInvalid });
}

/**
 * Decodes an untrusted {@link EncodedChanges}: the encoding is checked, then every change is
 * validated as {@link decodeChange} does (shape, ids, paths, JSON values, HLC made by its origin).
 * @param input - Anything received.
 * @returns Deeply frozen changes, grouped by origin (each origin's in the order encoded).
 * @throws {@link ValidationError} `op/invalid` when the list or a change is malformed,
 * {@link ClockError} `hlc/invalid` for an HLC out of range.
 */
export function decodeChanges(input: unknown): Change[] {
  return decodeWith(input, decodeChangeWith);
}

/**
 * Decodes what {@link encodeChanges} wrote from changes this process already validated (the
 * change log's own chunks): the encoding is read the same way, but each change is only frozen,
 * not validated again, so a chunk always reads back whatever it was made of.
 * @internal
 */
export function decodeOwnChanges(input: unknown): Change[] {
  return decodeWith(input, freezeOwnChange);
}

function freezeOwnChange(c: {
  doc: string;
  origin: string;
  seq: number;
  hlc: string;
  ops: unknown[];
}): Change {
  for (let k = 0; k < c.ops.length; k++) {
    const op = c.ops[k] as { path: string[]; value?: unknown; tags?: string[] };
    Object.freeze(op.path);
    if ("value" in op) op.value = toFrozenJson(op.value);
    if (op.tags !== undefined) Object.freeze(op.tags);
    Object.freeze(op);
  }
  Object.freeze(c.ops);
  return Object.freeze(c) as unknown as Change;
}

function decodeWith(
  input: unknown,
  finish: (
    c: { doc: string; origin: string; seq: number; hlc: string; ops: unknown[] },
    parts: HlcParts,
  ) => Change,
): Change[] {
  if (!isPlainObject(input)) malformed("not an object");
  const { doc, sep, sep2, g } = input as Record<string, unknown>;
  if (!Array.isArray(g)) malformed("g");
  if (g.length === 0) return [];
  if (typeof doc !== "string") malformed("doc");
  const joined = sep !== undefined;
  if (joined && (!isSeparator(sep) || !isSeparator(sep2) || sep === sep2)) malformed("separators");
  const out: Change[] = [];
  for (const run of g as unknown[]) {
    if (!isPlainObject(run)) malformed("run");
    const { o, s, h, n, k, p, v, t } = run as Record<string, unknown>;
    if (typeof o !== "string") malformed("run origin");
    if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 1) malformed("run seq");
    if (!Array.isArray(h)) malformed("run hlcs");
    const nChanges = h.length;
    if (Array.isArray(n)) {
      if (n.length !== nChanges) malformed("op counts");
    } else if (typeof n !== "number") malformed("op counts");
    let total = 0;
    for (let j = 0; j < nChanges; j++) {
      const c = Array.isArray(n) ? n[j] : n;
      if (typeof c !== "number" || !Number.isSafeInteger(c) || c < 0) malformed("op count");
      total += c;
    }
    if (k !== undefined && (typeof k !== "string" || k.length !== total)) malformed("kinds");
    let paths: unknown[];
    if (typeof p === "string") {
      if (!joined) malformed("path column without separators");
      paths = total === 0 ? [] : p.split(sep as string);
    } else if (Array.isArray(p)) paths = p;
    else malformed("paths");
    if (paths.length !== total) malformed("path count");
    if (!Array.isArray(v)) malformed("values");
    if (t !== undefined && !Array.isArray(t)) malformed("tags");
    let opAt = 0;
    let valueAt = 0;
    let tagAt = 0;
    let ms = 0;
    let counter = 0;
    let msFor = -1;
    let msHex = "";
    for (let j = 0; j < nChanges; j++) {
      const ht = h[j];
      if (typeof ht === "number") {
        if (ht >= 0) counter += ht;
        else {
          ms -= ht;
          counter = 0;
        }
      } else if (Array.isArray(ht) && ht.length === 2 && typeof ht[0] === "number") {
        ms += ht[0];
        counter = ht[1] as number;
      } else malformed("hlc");
      // encodeHlc checks the first stamp of a run (the node id is the run's origin) and any out of
      // range; the others are written here, with the ms part's hex kept while it does not change.
      const parts = { ms, counter, node: o as string };
      let hlc: string;
      const inRange =
        Number.isInteger(ms) && ms >= 0 && ms <= HLC_MAX_MS && Number.isInteger(counter) && counter >= 0;
      if (j === 0 || !inRange || counter > HLC_MAX_COUNTER) {
        hlc = encodeHlc(parts);
        msFor = -1;
      } else {
        if (ms !== msFor) {
          msFor = ms;
          msHex = ms.toString(16).padStart(HLC_MS_DIGITS, "0");
        }
        hlc = msHex + counter.toString(16).padStart(HLC_COUNTER_DIGITS, "0") + (o as string);
      }
      const count = (Array.isArray(n) ? n[j] : n) as number;
      const ops: unknown[] = new Array(count);
      for (let q = 0; q < count; q++, opAt++) {
        const kind = k === undefined ? "set" : CHAR_KIND[(k as string)[opAt] as string];
        if (kind === undefined) malformed(`op kind ${(k as string)[opAt]}`);
        const raw = paths[opAt];
        const path = typeof raw === "string" ? (joined ? raw.split(sep2 as string) : malformed("path")) : raw;
        if (kind === "del") ops[q] = { kind, path };
        else {
          if (valueAt >= v.length) malformed("value count");
          const value = v[valueAt++];
          if (kind === "rem") {
            const tg = (t as unknown[] | undefined)?.[tagAt++];
            if (tg === undefined) malformed("tag count");
            ops[q] = tg === null ? { kind, path, value } : { kind, path, value, tags: tg };
          } else ops[q] = { kind, path, value };
        }
      }
      out.push(finish({ doc: doc as string, origin: o as string, seq: (s as number) + j, hlc, ops }, parts));
    }
    if (valueAt !== v.length || tagAt !== ((t as unknown[] | undefined)?.length ?? 0))
      malformed("column lengths");
  }
  return out;
}
