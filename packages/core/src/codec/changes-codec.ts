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
import { changeLike, decodeChangeWith, knownHlcParts } from "./change-codec.js";
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

/**
 * Format 2 of a change batch (see docs/protocol.md, *Change batches*): format 1's columns, with
 * runs of repeats coded once. Readers before format 2 refuse it (it has no `g`), so a writer uses
 * it only where every reader reads it.
 */
export interface EncodedChangesV2 {
  /** The format. */
  readonly f: 2;
  readonly doc?: string;
  readonly sep?: string;
  readonly sep2?: string;
  /** The runs. */
  readonly r: readonly EncodedChangeRunV2[];
}

/** An HLC delta of {@link EncodedChangeRun.h}, or `{ r: count, h: delta }`: `count` changes with that delta each. */
export type HlcDeltaV2 = number | readonly [number, number] | { readonly r: number; readonly h: number };

/**
 * A run of format 2: as {@link EncodedChangeRun}, but consecutive changes with the same ops form a
 * group whose ops are written once. `m` holds the number of changes of each group (absent when
 * each group is one change); `n` then counts the ops per group, and `k`, `p`, `v`, `t` hold each
 * group's ops once. `h` may code a repeated delta as `{ r, h }`.
 */
export interface EncodedChangeRunV2 extends Omit<EncodedChangeRun, "h"> {
  readonly h: readonly HlcDeltaV2[];
  readonly m?: readonly number[];
}

/** Options of {@link encodeChanges}. */
export interface EncodeChangesOptions {
  /**
   * The format to write (default 1). Format 2 codes repeats once (a counter's run of identical
   * increments costs a few bytes per millisecond instead of 7-9 per change); readers before it
   * refuse it.
   */
  readonly format?: 1 | 2;
}

/** The most changes one batch may decode to (format 2 codes repeats, so its size does not bound them). */
export const MAX_CHANGES_PER_BATCH = 2 ** 20;

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
 * {@link EncodedChanges} (format 1), or {@link EncodedChangesV2} with `{ format: 2 }` (repeats
 * written once; readers before format 2 refuse it). A pure function: the result is JSON, for a
 * transport or a peer exchange. Changes of one origin keep their relative order; origins are
 * grouped. {@link decodeChanges} reads both formats.
 * @param changes - Changes of one document.
 * @param options - `format`: 1 (the default) or 2.
 * @returns The encoded list.
 * @throws {@link ValidationError} `op/invalid` when the changes are of several documents, or the
 * format is unknown.
 * @example
 * ```ts
 * const batch = encodeChanges(doc.changesSince({}), { format: 2 });
 * const copy = decodeChanges(JSON.parse(JSON.stringify(batch)));
 * ```
 */
export function encodeChanges(changes: readonly Change[], options?: { readonly format?: 1 }): EncodedChanges;
export function encodeChanges(changes: readonly Change[], options: { readonly format: 2 }): EncodedChangesV2;
export function encodeChanges(
  changes: readonly Change[],
  options?: EncodeChangesOptions,
): EncodedChanges | EncodedChangesV2;
export function encodeChanges(
  changes: readonly Change[],
  options: EncodeChangesOptions = {},
): EncodedChanges | EncodedChangesV2 {
  const v2 = options.format === 2;
  if (options.format !== undefined && options.format !== 1 && !v2)
    throw new ValidationError(`encodeChanges: unknown format ${String(options.format)}`, {
      code: ErrorCode.OpInvalid,
    });
  if (changes.length === 0) return v2 ? { f: 2, r: [] } : { g: [] };
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
  if (v2) {
    const r = runs.map((run) => encodeRun(run, seps, true));
    return seps === undefined ? { f: 2, doc, r } : { f: 2, doc, sep: seps[0], sep2: seps[1], r };
  }
  const g = runs.map((run) => encodeRun(run, seps, false) as EncodedChangeRun);
  return seps === undefined ? { doc, g } : { doc, sep: seps[0], sep2: seps[1], g };
}

/** Whether two op lists are the same ops (so a format 2 group writes them once). */
function sameOps(a: readonly Op[], b: readonly Op[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) {
    const x = a[k] as Op;
    const y = b[k] as Op;
    if (x === y) continue;
    if (x.kind !== y.kind || x.path.length !== y.path.length) return false;
    for (let q = 0; q < x.path.length; q++) if (x.path[q] !== y.path[q]) return false;
    if (x.kind === "del") continue;
    const xv = x.value;
    const yv = (y as { value: Json }).value;
    if (xv !== yv && (typeof xv !== "object" || xv === null || JSON.stringify(xv) !== JSON.stringify(yv)))
      return false;
    if (x.kind === "rem") {
      const xt = x.tags;
      const yt = (y as { tags?: readonly string[] }).tags;
      if (xt === undefined || yt === undefined ? xt !== yt : xt.join() !== yt.join()) return false;
    }
  }
  return true;
}

/**
 * One run's columns. With `repeats` (format 2), consecutive changes with the same ops form a group
 * written once, and a repeated HLC delta is written once with its count; without, format 1.
 */
function encodeRun(
  run: Run,
  seps: readonly [string, string] | undefined,
  repeats: boolean,
): EncodedChangeRun | EncodedChangeRunV2 {
  const h: HlcDeltaV2[] = [];
  const groups: number[] = [];
  const counts: number[] = [];
  let kinds: string[] | undefined;
  let opCount = 0;
  const paths: string[] = [];
  const pathArrays: Path[] = [];
  const values: Json[] = [];
  const tags: (readonly string[] | null)[] = [];
  let ms = 0;
  let counter = 0;
  let prevOps: readonly Op[] | undefined;
  // The pending repeat of an HLC delta.
  let rep = 0;
  let repD = 0;
  const flush = () => {
    if (rep === 1 || !repeats) for (let q = 0; q < rep; q++) h.push(repD);
    else if (rep > 1) h.push({ r: rep, h: repD });
    rep = 0;
  };
  for (const c of run.changes) {
    // A decoded change (what a replica seals after applyRemote) has its HLC parsed already.
    const known = knownHlcParts(c);
    const cms = known === undefined ? msOf(c.hlc) : known.ms;
    const cc = known === undefined ? counterOf(c.hlc) : known.counter;
    // A delta as one number (same ms: the counter step; a later ms with counter 0: minus the ms
    // step), else a pair.
    const d = cms === ms && cc >= counter ? cc - counter : cms > ms && cc === 0 ? ms - cms : undefined;
    if (d === undefined) {
      flush();
      h.push([cms - ms, cc]);
    } else if (rep > 0 && d === repD) rep++;
    else {
      flush();
      rep = 1;
      repD = d;
    }
    ms = cms;
    counter = cc;
    if (repeats && prevOps !== undefined && sameOps(prevOps, c.ops)) {
      groups[groups.length - 1] = (groups[groups.length - 1] as number) + 1;
      continue;
    }
    prevOps = c.ops;
    groups.push(1);
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
  flush();
  const n = counts.every((x) => x === counts[0]) ? (counts[0] as number) : counts;
  const p = seps !== undefined && opCount > 0 ? paths.join(seps[0]) : pathArrays;
  const out: {
    o: string;
    s: number;
    h: HlcDeltaV2[];
    m?: number[];
    n: typeof n;
    k?: string;
    p?: typeof p;
    v?: Json[];
    t?: typeof tags;
  } =
    groups.length < run.changes.length
      ? { o: run.origin, s: run.start, h, m: groups, n }
      : { o: run.origin, s: run.start, h, n };
  if (kinds !== undefined) out.k = kinds.join("");
  out.p = p;
  out.v = values;
  if (tags.length > 0) out.t = tags;
  return out as EncodedChangeRunV2;
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

/** Format 2's HLC column with its repeats `{ r, h }` written out, at most `budget` entries. */
function expandHlcs(h: readonly unknown[], budget: number): unknown[] {
  const out: unknown[] = [];
  for (const x of h) {
    if (isPlainObject(x)) {
      const { r, h: d } = x as Record<string, unknown>;
      if (typeof r !== "number" || !Number.isSafeInteger(r) || r < 2 || typeof d !== "number")
        malformed("hlc repeat");
      if (out.length + r > budget) malformed(`more than ${MAX_CHANGES_PER_BATCH} changes`);
      for (let q = 0; q < r; q++) out.push(d);
    } else out.push(x);
  }
  return out;
}

function decodeWith(
  input: unknown,
  finish: (
    c: { doc: string; origin: string; seq: number; hlc: string; ops: unknown[] },
    parts: HlcParts,
  ) => Change,
): Change[] {
  if (!isPlainObject(input)) malformed("not an object");
  const { f, doc, sep, sep2 } = input as Record<string, unknown>;
  const v2 = f === 2;
  if (f !== undefined && !v2) malformed(`format ${String(f)}`);
  const g = (input as Record<string, unknown>)[v2 ? "r" : "g"];
  if (!Array.isArray(g)) malformed(v2 ? "r" : "g");
  if (g.length === 0) return [];
  if (typeof doc !== "string") malformed("doc");
  const joined = sep !== undefined;
  if (joined && (!isSeparator(sep) || !isSeparator(sep2) || sep === sep2)) malformed("separators");
  const out: Change[] = [];
  let budget = MAX_CHANGES_PER_BATCH;
  for (const run of g as unknown[]) {
    if (!isPlainObject(run)) malformed("run");
    const { o, s, n, k, p, v, t, m } = run as Record<string, unknown>;
    let h = (run as Record<string, unknown>).h;
    if (typeof o !== "string") malformed("run origin");
    if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 1) malformed("run seq");
    if (!Array.isArray(h)) malformed("run hlcs");
    if (v2) h = expandHlcs(h, budget);
    const hs = h as unknown[];
    const nChanges = hs.length;
    if (nChanges > budget) malformed(`more than ${MAX_CHANGES_PER_BATCH} changes`);
    budget -= nChanges;
    // Format 2: changes per group of identical ops (one group per change without `m`).
    let groups: readonly number[] | undefined;
    if (v2 && m !== undefined) {
      if (!Array.isArray(m)) malformed("groups");
      let sum = 0;
      for (const x of m) {
        if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 1) malformed("group size");
        sum += x;
      }
      if (sum !== nChanges) malformed("group sizes");
      groups = m as number[];
    }
    const nGroups = groups === undefined ? nChanges : groups.length;
    if (Array.isArray(n)) {
      if (n.length !== nGroups) malformed("op counts");
    } else if (typeof n !== "number") malformed("op counts");
    let total = 0;
    for (let j = 0; j < nGroups; j++) {
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
    // The group of change j, how many of its changes are left, and where its ops start.
    let group = -1;
    let groupLeft = 0;
    let groupOps = 0;
    let groupValues = 0;
    let groupTags = 0;
    // The first change of a group of several, and the column positions after its ops.
    let groupFirst: Change | undefined;
    let groupEnd: [number, number, number] | undefined;
    for (let j = 0; j < nChanges; j++) {
      if (groupLeft === 0) {
        if (groupEnd !== undefined) [opAt, valueAt, tagAt] = groupEnd;
        groupFirst = undefined;
        groupEnd = undefined;
        group++;
        groupLeft = groups === undefined ? 1 : (groups[group] as number);
        groupOps = opAt;
        groupValues = valueAt;
        groupTags = tagAt;
      } else {
        opAt = groupOps;
        valueAt = groupValues;
        tagAt = groupTags;
      }
      groupLeft--;
      const ht = hs[j];
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
      const count = (Array.isArray(n) ? n[group] : n) as number;
      if (groupFirst !== undefined && opAt === groupOps) {
        // A later change of a group: the same ops as the group's first, already checked.
        out.push(changeLike(groupFirst, (s as number) + j, hlc, parts));
        continue;
      }
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
      const made = finish(
        { doc: doc as string, origin: o as string, seq: (s as number) + j, hlc, ops },
        parts,
      );
      out.push(made);
      if (groupLeft > 0) {
        groupFirst = made;
        groupEnd = [opAt, valueAt, tagAt];
      }
    }
    if (groupEnd !== undefined) [opAt, valueAt, tagAt] = groupEnd;
    if (valueAt !== v.length || tagAt !== ((t as unknown[] | undefined)?.length ?? 0))
      malformed("column lengths");
  }
  return out;
}
