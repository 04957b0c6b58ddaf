/**
 * The binary snapshot (layout 1): a document's CRDT state, version and doc id laid out in columns
 * (structure, key heads, key tails, values, leaf stamps) with varints, front-coded keys and
 * delta-coded integers, then compressed with raw deflate (RFC 1951, `fflate`). It is written from
 * the {@link DocState} directly and read back into one, with no JSON snapshot in between
 * (`doc.snapshotBinary()`, `createDoc({ snapshot: bytes })`); `encodeSnapshotBinary` /
 * `decodeSnapshotBinary` convert from and to the JSON snapshot (format 1). See docs/protocol.md
 * ("Binary snapshots").
 */
import { deflateSync, inflateSync } from "fflate";
import { encodeHlc, HLC_MAX_COUNTER, HLC_MAX_MS, HLC_MS_DIGITS, HLC_PREFIX_LENGTH } from "../clock/hlc.js";
import { type DocId, toDocId } from "../clock/ids.js";
import type { VersionVector } from "../clock/version-vector.js";
import { AddWinsSetState, type SetElement } from "../crdt/add-wins-set.js";
import { type CounterRun, CounterState } from "../crdt/counter.js";
import { DocNode, DocState, isLeafOnly } from "../crdt/doc-state.js";
import { Kids } from "../crdt/kids.js";
import { MAX_OPS_PER_CHANGE } from "../crdt/stamp.js";
import { ErrorCode, isNxsError, ValidationError } from "../errors/errors.js";
import type { Json, Snapshot } from "../model/change.js";
import { canonicalJson } from "../model/json.js";
import { decodeSnapshot } from "./change-codec.js";
import { decodeState, encodeState } from "./state-codec.js";

/** First bytes of a binary snapshot: "NX", then the layout version (1 or 2). */
const MAGIC0 = 0x4e;
const MAGIC1 = 0x58;
/**
 * Layout 2 (the default) differs from 1 in two places: the header lists each replica id once (the
 * version, `last` and `extra` refer to the replica table), and a counter writes its increments'
 * stamps inline, as run-length coded `(ms delta, counter, op index, node)` tuples per origin,
 * instead of one HLC-table row and an absolute stamp each.
 */
const LAYOUT_1 = 1;
const LAYOUT_2 = 2;
const RAW = 0;
const DEFLATE = 1;
const COLUMNS = 6;
/** The stamp of `(hlc ref, op index)` is `ref * STAMP_M + index` (op indexes are below it). */
const STAMP_M = MAX_OPS_PER_CHANGE;
/** Bodies up to this size are not deflated (deflate would save a few bytes at most). */
const MIN_DEFLATE = 64;
/**
 * The fflate level by body size: level 6 up to {@link LARGE_BODY} bytes, level 1 above. Measured
 * (CPU medians): on a large body level 1 is several times faster for a size within 0.5% of level
 * 6's (a 62.7 KB header of 1,540 replicas: 6.5-7.3 -> 1.8 ms, 15,106 -> 15,052 B; a counter of
 * 100,000 increments, 867 KB: 164 -> 100 ms, +0.3%), while a small, very regular body is where
 * level 6 saves most (the benchmark's 10,000-key map, 22 KB: 395 B at level 6, 540 B at level 1)
 * and costs ~1 ms. Level 9 was as small as 6 and up to 6x slower. Any level inflates the same: the
 * format does not change.
 */
const DEFLATE_LEVEL_SMALL = 6;
const DEFLATE_LEVEL_LARGE = 1;
const LARGE_BODY = 32 * 1024;
/** Integers written as a varint difference: |difference| below this (zigzag stays a safe integer). */
const INT_DELTA_LIMIT = 2 ** 52;
/** The largest body a binary snapshot may inflate to (64 MiB). */
const MAX_BODY = 64 * 2 ** 20;
/** Raw deflate expands a byte to at most 1032 bytes (a 258-byte match in 2 bits). */
const MAX_INFLATE_RATIO = 1032;

// Value tags (values column).
const T_NULL = 0;
const T_FALSE = 1;
const T_TRUE = 2;
const T_INT = 3; // zigzag difference from the previous T_INT of the column
const T_F64 = 4;
const T_STR = 5;
const T_ARR = 6;
const T_OBJ = 7;
const T_NODE = 8; // a child that is a node (its structure follows in the structure column)
const T_RUN = 9; // a run: the difference, then how many integers (2 or more) each add it

// Node flags (structure column).
const F_SHADOW = 1;
const F_VALUE = 2; // the shadow is a leaf (else a delete)
const F_MARKER = 4;
const F_KIDS = 8;
const F_COUNTER = 16;
const F_SET = 32;
const F_ALL = 63;

/** Options of {@link encodeSnapshotBinary} and `doc.snapshotBinary()`. */
export interface BinarySnapshotOptions {
  /**
   * The layout to write (default 2). Layout 1 is what readers before issue 23 read: write it while
   * such readers must load the bytes. Every reader of layout 2 reads layout 1 too.
   */
  readonly layout?: 1 | 2;
  /**
   * Deflate the columns (default true): a hundred times smaller on regular data, for about a
   * millisecond per 60 KB. Set false when the bytes are compressed again downstream.
   */
  readonly compress?: boolean;
}

/** The content of a binary snapshot, decoded into the form a document runs on. */
export interface DecodedBinarySnapshot {
  readonly doc: DocId;
  readonly version: VersionVector;
  readonly state: DocState;
  readonly extra: Map<string, Set<number>>;
}

function invalid(msg: string): never {
  throw new ValidationError(`binary snapshot: ${msg}`, { code: ErrorCode.SchemaInvalid });
}

// ---------------------------------------------------------------- writing

class Out {
  buf = new Uint8Array(1024);
  len = 0;

  room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    if (this.len === this.buf.length) this.room(1);
    this.buf[this.len++] = b;
  }

  /** An unsigned integer up to 2^53 - 1, 7 bits per byte, low bits first. */
  uint(n: number): void {
    if (this.len + 8 > this.buf.length) this.room(8);
    const buf = this.buf;
    let len = this.len;
    if (n < 0x80) {
      buf[len] = n;
      this.len = len + 1;
      return;
    }
    if (n < 0x80000000) {
      while (n >= 0x80) {
        buf[len++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
    } else {
      while (n >= 0x80) {
        buf[len++] = (n % 0x80) | 0x80;
        n = Math.floor(n / 0x80);
      }
    }
    buf[len++] = n;
    this.len = len;
  }

  /** A signed integer of magnitude below 2^52, zigzag-coded. */
  int(n: number): void {
    this.uint(n < 0 ? -2 * n - 1 : 2 * n);
  }

  f64(x: number): void {
    this.room(8);
    new DataView(this.buf.buffer, this.len, 8).setFloat64(0, x, true);
    this.len += 8;
  }

  /** UTF-8 bytes of `s[from, to)`, no length; a lone surrogate as its 3-byte form (WTF-8). */
  utf8(s: string, from: number, to: number): void {
    this.room((to - from) * 3);
    const buf = this.buf;
    let len = this.len;
    for (let k = from; k < to; k++) {
      let c = s.charCodeAt(k);
      if (c < 0x80) buf[len++] = c;
      else if (c < 0x800) {
        buf[len++] = 0xc0 | (c >> 6);
        buf[len++] = 0x80 | (c & 63);
      } else {
        if (c >= 0xd800 && c < 0xdc00 && k + 1 < to) {
          const d = s.charCodeAt(k + 1);
          if (d >= 0xdc00 && d < 0xe000) {
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            k++;
            buf[len++] = 0xf0 | (c >> 18);
            buf[len++] = 0x80 | ((c >> 12) & 63);
            buf[len++] = 0x80 | ((c >> 6) & 63);
            buf[len++] = 0x80 | (c & 63);
            continue;
          }
        }
        buf[len++] = 0xe0 | (c >> 12);
        buf[len++] = 0x80 | ((c >> 6) & 63);
        buf[len++] = 0x80 | (c & 63);
      }
    }
    this.len = len;
  }

  /** A string as its UTF-8 byte length and bytes. */
  str(s: string): void {
    const n = s.length;
    let k = 0;
    while (k < n && s.charCodeAt(k) < 0x80) k++;
    if (k === n) {
      this.uint(n);
      this.room(n);
      const buf = this.buf;
      let len = this.len;
      for (let j = 0; j < n; j++) buf[len++] = s.charCodeAt(j);
      this.len = len;
      return;
    }
    const tmp = new Out();
    tmp.utf8(s, 0, n);
    this.uint(tmp.len);
    this.room(tmp.len);
    this.buf.set(tmp.buf.subarray(0, tmp.len), this.len);
    this.len += tmp.len;
  }
}

/**
 * Encodes a document's state as a binary snapshot, reading the CRDT tree directly.
 * @param doc - The document id.
 * @param version - Its version vector.
 * @param state - Its CRDT state.
 * @param extra - Seqs applied past a gap, per origin.
 * @param options - `compress` (default true).
 * @returns The bytes.
 */
export function encodeStateBinary(
  doc: DocId,
  version: VersionVector,
  state: DocState,
  extra: ReadonlyMap<string, ReadonlySet<number>>,
  options: BinarySnapshotOptions = {},
): Uint8Array {
  // One writer for every call (encoding is synchronous): its code stays optimized across calls.
  const w = sharedWriter;
  w.reset();
  try {
    return encodeWith(w, doc, version, state, extra, options);
  } finally {
    w.release();
  }
}

function encodeWith(
  w: Writer,
  doc: DocId,
  version: VersionVector,
  state: DocState,
  extra: ReadonlyMap<string, ReadonlySet<number>>,
  options: BinarySnapshotOptions,
): Uint8Array {
  const layout = options.layout ?? LAYOUT_2;
  if (layout !== LAYOUT_1 && layout !== LAYOUT_2) invalid(`unknown layout ${layout}`);
  w.layout = layout;
  const vEntries = Object.entries(version);
  // Layout 2: the version's origins first, so that its replica indexes are 0, 1, 2...
  if (layout === LAYOUT_2) for (const [o] of vEntries) w.replica(o);
  w.node(state.root);
  w.flushValues();
  w.flushStamps();
  const h =
    layout === LAYOUT_2 ? header2(w, doc, vEntries, state, extra) : header1(w, doc, vEntries, state, extra);
  return frameBody(h, w, layout, options);
}

/** The header of layout 1, written last (it lists what the tree referenced) but placed first. */
function header1(
  w: Writer,
  doc: DocId,
  vEntries: readonly [string, number][],
  state: DocState,
  extra: ReadonlyMap<string, ReadonlySet<number>>,
): Out {
  const h = new Out();
  h.str(doc);
  h.uint(vEntries.length);
  for (const [o, seq] of vEntries) {
    h.str(o);
    h.uint(seq);
  }
  const lastRefs: number[] = [];
  for (const hlc of state.lastHlc.values()) lastRefs.push(w.ref(hlc));
  const table = hlcTable(w);
  h.uint(w.replicas.length);
  for (const r of w.replicas) h.str(r);
  writeHlcTable(h, table);
  h.uint(lastRefs.length);
  let j = 0;
  for (const o of state.lastHlc.keys()) {
    h.str(o);
    h.uint(lastRefs[j++] as number);
  }
  writeExtra(h, extra, (o) => h.str(o));
  return h;
}

/** `extra`: count, then per origin (as `origin` writes it) the count and the seq deltas. */
function writeExtra(
  h: Out,
  extra: ReadonlyMap<string, ReadonlySet<number>>,
  origin: (o: string) => void,
): void {
  let nExtra = 0;
  for (const seqs of extra.values()) if (seqs.size > 0) nExtra++;
  h.uint(nExtra);
  for (const [o, seqs] of extra) {
    if (seqs.size === 0) continue;
    origin(o);
    h.uint(seqs.size);
    let prev = 0;
    for (const q of [...seqs].sort((a, b) => a - b)) {
      h.uint(q - prev);
      prev = q;
    }
  }
}

/**
 * The header of layout 2: doc; the replica table (each id once, front-coded, the version's origins
 * first); the version (its seqs, in the order of those first replicas); the HLC table; `last`
 * (replica index, ref); `extra` (replica index, count, seq deltas).
 */
function header2(
  w: Writer,
  doc: DocId,
  vEntries: readonly [string, number][],
  state: DocState,
  extra: ReadonlyMap<string, ReadonlySet<number>>,
): Out {
  const lastRefs: number[] = [];
  for (const [o, hlc] of state.lastHlc) {
    lastRefs.push(w.replica(o));
    lastRefs.push(w.ref(hlc));
  }
  const table = hlcTable(w);
  for (const [o, seqs] of extra) if (seqs.size > 0) w.replica(o);
  const h = new Out();
  h.str(doc);
  // Front-coded: per id, the length of the prefix it shares with the previous one, then the rest.
  h.uint(w.replicas.length);
  let prev = "";
  for (const r of w.replicas) {
    const max = Math.min(prev.length, r.length);
    let p = 0;
    while (p < max && prev.charCodeAt(p) === r.charCodeAt(p)) p++;
    h.uint(p);
    h.str(p === 0 ? r : r.slice(p));
    prev = r;
  }
  // The version's origins are the first replicas, in its order (encodeWith): its seqs only.
  h.uint(vEntries.length);
  for (const [, seq] of vEntries) h.uint(seq);
  writeHlcTable(h, table);
  h.uint(lastRefs.length / 2);
  for (const x of lastRefs) h.uint(x);
  // Every origin of extra is in the replica table already.
  writeExtra(h, extra, (o) => h.uint(w.replica(o)));
  return h;
}

/** The HLC table's rows (ms delta, counter, replica index), registering each HLC's node as a replica. */
function hlcTable(w: Writer): number[] {
  const hlcs = w.hlcs;
  const table: number[] = new Array(hlcs.length * 3);
  let prevMs = 0;
  for (let k = 0; k < hlcs.length; k++) {
    const hlc = hlcs[k] as string;
    const ms = Number.parseInt(hlc.slice(0, HLC_MS_DIGITS), 16);
    const counter = Number.parseInt(hlc.slice(HLC_MS_DIGITS, HLC_PREFIX_LENGTH), 16);
    // The state only holds HLCs (remote remove tags are checked): anything else is a bug, not a 0.
    if (Number.isNaN(ms) || Number.isNaN(counter) || hlc.length <= HLC_PREFIX_LENGTH)
      invalid(`the state holds a malformed hlc ${JSON.stringify(hlc)}`);
    table[3 * k] = ms - prevMs;
    table[3 * k + 1] = counter;
    table[3 * k + 2] = w.replica(hlc.slice(HLC_PREFIX_LENGTH));
    prevMs = ms;
  }
  return table;
}

function writeHlcTable(h: Out, table: readonly number[]): void {
  h.uint(table.length / 3);
  for (let k = 0; k < table.length; k += 3) {
    h.int(table[k] as number);
    h.uint(table[k + 1] as number);
    h.uint(table[k + 2] as number);
  }
}

/**
 * The frame: magic, layout, compression (and, deflated, the body length), then the body: the column
 * lengths and the columns.
 */
function frameBody(h: Out, w: Writer, layout: number, options: BinarySnapshotOptions): Uint8Array {
  const cols = [h, w.s, w.kl, w.kb, w.v, w.st];
  const head = new Out();
  head.uint(COLUMNS);
  for (const c of cols) head.uint(c.len);
  let size = head.len;
  for (const c of cols) size += c.len;
  const body = new Uint8Array(size);
  body.set(head.buf.subarray(0, head.len), 0);
  let at = head.len;
  for (const c of cols) {
    body.set(c.buf.subarray(0, c.len), at);
    at += c.len;
  }
  const compress = (options.compress ?? true) && size > MIN_DEFLATE;
  const payload = compress
    ? deflateSync(body, { level: body.length > LARGE_BODY ? DEFLATE_LEVEL_LARGE : DEFLATE_LEVEL_SMALL })
    : body;
  const frame = new Out();
  frame.byte(MAGIC0);
  frame.byte(MAGIC1);
  frame.byte(layout);
  frame.byte(compress ? DEFLATE : RAW);
  if (compress) frame.uint(size);
  const out = new Uint8Array(frame.len + payload.length);
  out.set(frame.buf.subarray(0, frame.len), 0);
  out.set(payload, frame.len);
  return out;
}

/** Writes the tree in one pass, numbering HLCs and replicas as it meets them. */
class Writer {
  readonly s = new Out(); // structure
  readonly kl = new Out(); // key heads and tail lengths
  readonly kb = new Out(); // key tail bytes
  readonly v = new Out(); // values
  readonly st = new Out(); // plain-leaf stamps
  /** HLCs in the order met; the ref of `hlcs[k]` is `k + 1` (0 is `""`). */
  readonly hlcs: string[] = [];
  readonly refs = new Map<string, number>([["", 0]]);
  readonly replicas: string[] = [];
  readonly replicaIndex = new Map<string, number>();
  /** The layout being written. */
  layout = LAYOUT_2;
  lastHlc = "";
  lastRef = 0;
  prevInt = 0;
  /** A run of integers with the same difference, not written yet. */
  runD = 0;
  runN = 0;
  prevStamp = 0;
  stampD = 0;
  stampN = 0;

  /** Empties the writer for the next document. */
  reset(): void {
    for (const o of [this.s, this.kl, this.kb, this.v, this.st]) o.len = 0;
    this.hlcs.length = 0;
    this.refs.clear();
    this.refs.set("", 0);
    this.replicas.length = 0;
    this.replicaIndex.clear();
    this.lastHlc = "";
    this.lastRef = 0;
    this.prevInt = 0;
    this.runD = 0;
    this.runN = 0;
    this.prevStamp = 0;
    this.stampD = 0;
    this.stampN = 0;
  }

  /** Drops what the last document left (large buffers, its strings). */
  release(): void {
    for (const o of [this.s, this.kl, this.kb, this.v, this.st])
      if (o.buf.length > 1 << 20) o.buf = new Uint8Array(1024);
    this.reset();
  }

  ref(h: string): number {
    if (h === this.lastHlc) return this.lastRef;
    let r = this.refs.get(h);
    if (r === undefined) {
      this.hlcs.push(h);
      r = this.hlcs.length;
      this.refs.set(h, r);
    }
    this.lastHlc = h;
    this.lastRef = r;
    return r;
  }

  stamp(h: string, i: number): number {
    return this.ref(h) * STAMP_M + i;
  }

  replica(node: string): number {
    let k = this.replicaIndex.get(node);
    if (k === undefined) {
      k = this.replicas.length;
      this.replicas.push(node);
      this.replicaIndex.set(node, k);
    }
    return k;
  }

  /** Writes the pending run of integers. */
  flushValues(): void {
    const n = this.runN;
    if (n === 0) return;
    const v = this.v;
    if (n === 1) v.byte(T_INT);
    else v.byte(T_RUN);
    v.int(this.runD);
    if (n > 1) v.uint(n);
    this.runN = 0;
  }

  flushStamps(): void {
    if (this.stampN === 0) return;
    this.st.int(this.stampD);
    this.st.uint(this.stampN);
    this.stampN = 0;
  }

  value(x: Json): void {
    if (typeof x === "number") {
      const d = x - this.prevInt;
      if (Number.isSafeInteger(x) && d < INT_DELTA_LIMIT && d > -INT_DELTA_LIMIT) {
        // -0 is written as 0, as JSON does.
        const dd = d === 0 ? 0 : d;
        this.prevInt = x === 0 ? 0 : x;
        if (this.runN > 0 && dd === this.runD) this.runN++;
        else {
          this.flushValues();
          this.runD = dd;
          this.runN = 1;
        }
        return;
      }
      this.flushValues();
      this.v.byte(T_F64);
      this.v.f64(x);
      return;
    }
    this.flushValues();
    const v = this.v;
    if (typeof x === "string") {
      v.byte(T_STR);
      v.str(x);
    } else if (x === null) v.byte(T_NULL);
    else if (x === false) v.byte(T_FALSE);
    else if (x === true) v.byte(T_TRUE);
    else if (Array.isArray(x)) {
      v.byte(T_ARR);
      v.uint(x.length);
      // No run spans two elements: each element takes at least one byte (the decoder bounds the
      // length by the bytes left).
      for (const e of x) {
        this.flushValues();
        this.value(e);
      }
    } else {
      const o = x as { readonly [key: string]: Json };
      const keys = Object.keys(o);
      v.byte(T_OBJ);
      v.uint(keys.length);
      for (const k of keys) {
        this.flushValues();
        v.str(k);
        this.value(o[k] as Json);
      }
    }
  }

  node(n: DocNode): void {
    const s = this.s;
    const kids = n.kids !== undefined && n.kids.size > 0 ? n.kids : undefined;
    const x = n.x;
    let flags = 0;
    if (n.sh !== undefined) flags |= n.sd ? F_SHADOW : F_SHADOW | F_VALUE;
    if (n.mh !== undefined) flags |= F_MARKER;
    if (kids !== undefined) flags |= F_KIDS;
    if (x instanceof CounterState) flags |= F_COUNTER;
    else if (x !== undefined) flags |= F_SET;
    s.uint(flags);
    if (n.sh !== undefined) {
      s.uint(this.stamp(n.sh, n.si));
      if (!n.sd) this.value(n.v as Json);
    }
    if (n.mh !== undefined) s.uint(this.stamp(n.mh, n.mi));
    if (kids !== undefined) {
      s.uint(kids.size);
      this.keys(kids);
      for (let e = 0; e < kids.end; e++) {
        if (kids.key[e] === undefined) continue;
        const leaf = kids.isLeaf(e);
        const kid = leaf ? undefined : (kids.val[e] as DocNode);
        if (kid === undefined || isLeafOnly(kid)) {
          let t: number;
          if (kid === undefined) {
            this.value(kids.val[e] as Json);
            t = this.stamp(kids.h[e] as string, kids.i[e] as number);
          } else {
            this.value(kid.v as Json);
            t = this.stamp(kid.sh as string, kid.si);
          }
          const d = t - this.prevStamp;
          this.prevStamp = t;
          if (this.stampN > 0 && d === this.stampD) this.stampN++;
          else {
            this.flushStamps();
            this.stampD = d;
            this.stampN = 1;
          }
        } else {
          this.flushValues();
          this.v.byte(T_NODE);
          this.node(kid);
        }
      }
    }
    if (x instanceof CounterState) {
      s.uint(x.runs.size);
      if (this.layout === LAYOUT_2)
        for (const [o, run] of x.runs) {
          s.uint(this.replica(o));
          s.uint(run.n);
          this.counterStamps(o, run);
        }
      else
        for (const [o, list] of x.entries) {
          s.uint(this.replica(o));
          s.uint(list.length);
          for (const e of list) {
            s.uint(this.stamp(e.h, e.i));
            this.value(e.d);
          }
        }
    } else if (x !== undefined) {
      s.uint(x.elements.size);
      for (const el of x.elements.values()) {
        this.value(el.value);
        s.uint(el.tags.size);
        for (const [t, ti] of el.tags) s.uint(this.stamp(t, ti));
        s.uint(el.fh === undefined ? 0 : this.stamp(el.fh, el.fi) + 1);
        const gone = el.gone;
        s.uint(gone === undefined ? 0 : gone.size);
        if (gone !== undefined) for (const g of gone) s.uint(this.ref(g));
      }
    }
  }

  /**
   * Layout 2: one origin's increments, their amounts in the values column and their stamps inline
   * in the structure column as runs: `count, ms delta (signed), counter, op index, node`, where a
   * run stands for `count` increments that each apply the same tuple to the previous stamp (from
   * ms 0, counter 0). The counter is absolute when the ms delta is not 0, else a signed delta; the
   * node is 0 for the origin, 1 for `""` (the initial state's stamp: ms and counter unchanged, both
   * written 0), `k + 2` for replica `k`.
   */
  counterStamps(origin: string, run: CounterRun): void {
    let prevMs = 0;
    let prevC = 0;
    // The pending run.
    let n = 0;
    let rd = 0;
    let rc = 0;
    let ri = 0;
    let rn = 0;
    for (let k = 0; k < run.n; k++) {
      this.value(run.amount[k] as number);
      const ms = run.ms[k] as number;
      let node: number;
      let d = 0;
      let cc = 0;
      if (ms < 0) node = 1;
      else {
        const c = run.counter[k] as number;
        const id = run.nodeAt(k, origin);
        node = id === origin ? 0 : this.replica(id) + 2;
        d = ms - prevMs;
        cc = d === 0 ? c - prevC : c;
        prevMs = ms;
        prevC = c;
      }
      const i = run.index[k] as number;
      if (n > 0 && d === rd && cc === rc && i === ri && node === rn) n++;
      else {
        if (n > 0) this.counterRun(n, rd, rc, ri, rn);
        n = 1;
        rd = d;
        rc = cc;
        ri = i;
        rn = node;
      }
    }
    if (n > 0) this.counterRun(n, rd, rc, ri, rn);
  }

  counterRun(n: number, d: number, c: number, i: number, node: number): void {
    const s = this.s;
    s.uint(n);
    s.int(d);
    if (d === 0) s.int(c);
    else s.uint(c);
    s.uint(i);
    s.uint(node);
  }

  /**
   * The keys of one object, front-coded against the previous one in UTF-16 units: per key, one
   * varint `shared * 16 + tail length` (15 and the length after it when the tail is longer), and
   * the tail's UTF-8 bytes.
   */
  keys(kids: Kids<DocNode>): void {
    const kl = this.kl;
    const kb = this.kb;
    let prev = "";
    for (let e = 0; e < kids.end; e++) {
      const k = kids.key[e];
      if (k === undefined) continue;
      const max = Math.min(prev.length, k.length);
      let p = 0;
      while (p < max && prev.charCodeAt(p) === k.charCodeAt(p)) p++;
      const at = kb.len;
      kb.utf8(k, p, k.length);
      const len = kb.len - at;
      if (len < 15) kl.uint(p * 16 + len);
      else {
        kl.uint(p * 16 + 15);
        kl.uint(len);
      }
      prev = k;
    }
  }
}

// ---------------------------------------------------------------- reading

// ignoreBOM: a leading U+FEFF is content (a string or key that starts with it), not a mark.
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

class In {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  byte(): number {
    if (this.pos >= this.end) invalid("truncated");
    return this.buf[this.pos++] as number;
  }

  uint(): number {
    const buf = this.buf;
    let b = this.pos < this.end ? (buf[this.pos++] as number) : invalid("truncated");
    if (b < 0x80) return b;
    let n = b & 0x7f;
    let mul = 0x80;
    for (;;) {
      b = this.pos < this.end ? (buf[this.pos++] as number) : invalid("truncated");
      n += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 0x80;
      if (mul > 2 ** 49) invalid("varint too long");
    }
    if (n > Number.MAX_SAFE_INTEGER) invalid("varint out of range");
    return n;
  }

  int(): number {
    const z = this.uint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  /** A count of items each taking at least one byte of this column. */
  count(): number {
    const n = this.uint();
    if (n > this.end - this.pos) invalid("count larger than the data");
    return n;
  }

  f64(): number {
    if (this.pos + 8 > this.end) invalid("truncated");
    const x = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return x;
  }

  /** The next `n` bytes. */
  take(n: number): Uint8Array {
    const start = this.pos;
    if (n > this.end - start) invalid("truncated");
    this.pos = start + n;
    return this.buf.subarray(start, start + n);
  }

  str(): string {
    const n = this.uint();
    const start = this.pos;
    if (n > this.end - start) invalid("truncated");
    this.pos = start + n;
    const buf = this.buf;
    if (n < 32) {
      let ascii = true;
      for (let k = start; k < start + n; k++)
        if ((buf[k] as number) >= 0x80) {
          ascii = false;
          break;
        }
      if (ascii)
        return String.fromCharCode.apply(null, buf.subarray(start, start + n) as unknown as number[]);
    }
    return decodeUtf8(buf.subarray(start, start + n));
  }
}

/** Decodes UTF-8, including the 3-byte forms of lone surrogates that the encoder writes. */
function decodeUtf8(bytes: Uint8Array): string {
  // Fast path: no surrogate forms (0xED 0xA0..0xBF), the platform decoder is exact.
  let hasSurrogate = false;
  for (let k = 0; k + 1 < bytes.length; k++)
    if (bytes[k] === 0xed && (bytes[k + 1] as number) >= 0xa0) {
      hasSurrogate = true;
      break;
    }
  if (!hasSurrogate) return utf8Decoder.decode(bytes);
  let out = "";
  let k = 0;
  while (k < bytes.length) {
    const b = bytes[k] as number;
    let c: number;
    if (b < 0x80) {
      c = b;
      k += 1;
    } else if (b < 0xe0) {
      c = ((b & 31) << 6) | ((bytes[k + 1] as number) & 63);
      k += 2;
    } else if (b < 0xf0) {
      c = ((b & 15) << 12) | (((bytes[k + 1] as number) & 63) << 6) | ((bytes[k + 2] as number) & 63);
      k += 3;
    } else {
      c =
        ((b & 7) << 18) |
        (((bytes[k + 1] as number) & 63) << 12) |
        (((bytes[k + 2] as number) & 63) << 6) |
        ((bytes[k + 3] as number) & 63);
      k += 4;
    }
    out += String.fromCodePoint(c);
  }
  return out;
}

/**
 * Whether `x` is a Uint8Array, including one made in another realm (a worker, an iframe, a `vm`
 * context), where `instanceof Uint8Array` is false.
 * @param x - Anything.
 * @returns True for a Uint8Array of any realm.
 */
export function isUint8Array(x: unknown): x is Uint8Array {
  return (
    x instanceof Uint8Array ||
    (ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === "[object Uint8Array]")
  );
}

function body(bytes: Uint8Array): Uint8Array {
  if (!isUint8Array(bytes)) invalid("not a Uint8Array");
  if (bytes.length < 4 || bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) invalid("not a binary snapshot");
  if (bytes[2] !== LAYOUT_1 && bytes[2] !== LAYOUT_2) invalid(`unknown layout ${bytes[2]}`);
  const method = bytes[3];
  if (method === RAW) return bytes.subarray(4);
  if (method !== DEFLATE) invalid(`unknown compression ${method}`);
  const frame = new In(bytes, 4, bytes.length);
  const len = frame.uint();
  const payload = bytes.subarray(frame.pos);
  // Checked before anything is allocated: a few KiB must not claim (or inflate to) gigabytes.
  if (len > MAX_BODY) invalid(`body of ${len} bytes is larger than ${MAX_BODY}`);
  if (len > payload.length * MAX_INFLATE_RATIO) invalid(`body of ${len} bytes from ${payload.length}`);
  // One byte more than announced: a body that inflates to more fills it (fflate does not grow a
  // buffer it is given, it stops or throws at its end), one that inflates to less does not reach it.
  let out: Uint8Array;
  try {
    out = inflateSync(payload, { out: new Uint8Array(len + 1) });
  } catch (e) {
    return invalid(`deflate: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (out.length !== len) invalid(`body inflates to ${out.length} bytes, not ${len}`);
  return out;
}

/**
 * Decodes a binary snapshot straight into a CRDT state, checking everything (the bytes come from
 * storage or the network), as `decodeState` does for a JSON snapshot.
 * @param bytes - The binary snapshot.
 * @returns The doc id, version, CRDT state and the seqs applied past a gap.
 * @throws {@link ValidationError} `schema/invalid` when the bytes are not a binary snapshot, are
 * truncated or corrupt.
 */
export function decodeStateBinary(bytes: Uint8Array): DecodedBinarySnapshot {
  const data = body(bytes);
  try {
    return read(data, bytes[2] as number);
  } catch (e) {
    if (isNxsError(e)) {
      if (e instanceof ValidationError && e.code === ErrorCode.SchemaInvalid) throw e;
      return invalid(e.message);
    }
    // A stack overflow or an allocation failure on hostile input: still a typed error.
    return invalid(e instanceof Error ? e.message : String(e));
  }
}

function read(data: Uint8Array, layout: number): DecodedBinarySnapshot {
  const head = new In(data, 0, data.length);
  if (head.uint() !== COLUMNS) invalid("column count");
  const lens: number[] = [];
  for (let k = 0; k < COLUMNS; k++) lens.push(head.uint());
  let at = head.pos;
  const cols: In[] = [];
  for (const len of lens) {
    if (len > data.length - at) invalid("truncated");
    cols.push(new In(data, at, at + len));
    at += len;
  }
  if (at !== data.length) invalid("trailing bytes");
  const [h, s, kl, kb, v, st] = cols as [In, In, In, In, In, In];

  const doc = toDocId(h.str());
  const version: Record<string, number> = {};
  const setVersion = (o: string, seq: number) => {
    if (Object.hasOwn(version, o)) invalid("duplicate version origin");
    if (o === "__proto__")
      Object.defineProperty(version, o, { value: seq, enumerable: true, writable: true, configurable: true });
    else version[o] = seq;
  };
  let replicas: string[] = [];
  /** Reads a replica table. */
  const readReplicas = () => {
    const nr = h.count();
    replicas = new Array(nr);
    for (let k = 0; k < nr; k++) replicas[k] = h.str();
  };
  /** A replica index (layout 2), checked. */
  const replicaAt = (): string => {
    const ri = h.uint();
    if (ri >= replicas.length) invalid(`replica index ${ri}`);
    return replicas[ri] as string;
  };
  if (layout === LAYOUT_1) {
    const nv = h.count();
    for (let k = 0; k < nv; k++) {
      const o = h.str();
      setVersion(o, h.uint());
    }
    readReplicas();
  } else {
    const nr = h.count();
    replicas = new Array(nr);
    let prev = "";
    for (let k = 0; k < nr; k++) {
      const p = h.uint();
      if (p > prev.length) invalid("replica id prefix");
      const tail = h.str();
      prev = p === 0 ? tail : prev.slice(0, p) + tail;
      replicas[k] = prev;
    }
    const nv = h.count();
    if (nv > nr) invalid("version larger than the replica table");
    for (let k = 0; k < nv; k++) setVersion(replicas[k] as string, h.uint());
  }
  const nr = replicas.length;
  const nt = h.count();
  const table: string[] = new Array(nt + 1);
  table[0] = "";
  let ms = 0;
  for (let k = 1; k <= nt; k++) {
    ms += h.int();
    const counter = h.uint();
    const ri = h.uint();
    if (ri >= nr) invalid(`hlc ${k - 1} replica`);
    try {
      table[k] = encodeHlc({ ms, counter, node: replicas[ri] as string });
    } catch (e) {
      invalid(`hlc ${k - 1}: ${isNxsError(e) ? e.message : String(e)}`);
    }
  }
  const nRefs = nt + 1;
  const state = new DocState();
  const nl = h.count();
  for (let k = 0; k < nl; k++) {
    const o = layout === LAYOUT_1 ? h.str() : replicaAt();
    const ref = h.uint();
    if (ref >= nRefs) invalid(`hlc ref ${ref}`);
    state.lastHlc.set(o, table[ref] as string);
  }
  const extra = new Map<string, Set<number>>();
  const ne = h.count();
  for (let k = 0; k < ne; k++) {
    const o = layout === LAYOUT_1 ? h.str() : replicaAt();
    const nq = h.count();
    const seqs = new Set<number>();
    let q = 0;
    for (let j = 0; j < nq; j++) {
      q += h.uint();
      if (q < 1 || !Number.isSafeInteger(q)) invalid("extra seqs");
      seqs.add(q);
    }
    extra.set(o, seqs);
  }

  let prevInt = 0;
  let runD = 0;
  let runLeft = 0;
  let prevStamp = 0;
  let stampD = 0;
  let stampLeft = 0;
  const value = (): Json => {
    if (runLeft > 0) {
      runLeft--;
      const x = prevInt + runD;
      if (!Number.isSafeInteger(x)) invalid("integer out of range");
      prevInt = x;
      return x;
    }
    const tag = v.byte();
    switch (tag) {
      case T_INT:
      case T_RUN: {
        runD = v.int();
        if (tag === T_RUN) {
          const n = v.uint();
          if (n < 2) invalid("run length");
          runLeft = n - 1;
        }
        const x = prevInt + runD;
        if (!Number.isSafeInteger(x)) invalid("integer out of range");
        prevInt = x;
        return x;
      }
      case T_STR:
        return v.str();
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_F64: {
        const x = v.f64();
        if (!Number.isFinite(x)) invalid("number is not finite");
        return x;
      }
      case T_ARR: {
        const n = v.count();
        const out: Json[] = new Array(n);
        for (let k = 0; k < n; k++) {
          // The encoder ends runs between elements, so each one takes a byte (bounding `n`).
          if (runLeft > 0) invalid("run across array elements");
          out[k] = value();
        }
        return Object.freeze(out);
      }
      case T_OBJ: {
        const n = v.count();
        const out: Record<string, Json> = {};
        for (let k = 0; k < n; k++) {
          if (runLeft > 0) invalid("run across an object key");
          const key = v.str();
          if (key === "__proto__") invalid('the key "__proto__" is not allowed');
          if (Object.hasOwn(out, key)) invalid(`duplicate key ${JSON.stringify(key)} in a value`);
          out[key] = value();
        }
        return Object.freeze(out);
      }
      default:
        return invalid(`value tag ${tag}`);
    }
  };
  const nextStamp = (): number => {
    if (stampLeft === 0) {
      stampD = st.int();
      stampLeft = st.uint();
      if (stampLeft < 1) invalid("stamp run length");
    }
    stampLeft--;
    prevStamp += stampD;
    return prevStamp;
  };
  /** The HLC ref of a stamp, checked. */
  const refOf = (t: number): number => {
    if (!Number.isSafeInteger(t) || t < 0) invalid(`stamp ${t}`);
    const q = Math.floor(t / STAMP_M);
    if (q >= nRefs) invalid(`stamp ${t}`);
    return q;
  };
  const node = (n: DocNode): void => {
    const flags = s.uint();
    if (flags > F_ALL || (flags & (F_COUNTER | F_SET)) === (F_COUNTER | F_SET)) invalid("node flags");
    if (flags & F_SHADOW) {
      const t = s.uint();
      const q = refOf(t);
      n.sh = table[q];
      n.si = t - q * STAMP_M;
      if (flags & F_VALUE) n.v = value();
      else n.sd = true;
    } else if (flags & F_VALUE) invalid("node flags");
    if (flags & F_MARKER) {
      const t = s.uint();
      const q = refOf(t);
      n.mh = table[q];
      n.mi = t - q * STAMP_M;
    }
    if (flags & F_KIDS) {
      const count = s.uint();
      // Each key takes at least one byte of the key heads column.
      if (count < 1 || count > kl.end - kl.pos) invalid("key count larger than the data");
      // The tails of these keys, decoded in one go when they are ASCII.
      const start = kl.pos;
      let total = 0;
      for (let j = 0; j < count; j++) {
        const c = kl.uint();
        total += c % 16 === 15 ? kl.uint() : c % 16;
      }
      kl.pos = start;
      const tails = kb.take(total);
      let ascii = true;
      for (let k = 0; k < tails.length; k++)
        if ((tails[k] as number) >= 0x80) {
          ascii = false;
          break;
        }
      const text = ascii ? utf8Decoder.decode(tails) : "";
      const names: string[] = new Array(count);
      let prev = "";
      let off = 0;
      for (let j = 0; j < count; j++) {
        const c = kl.uint();
        const p = Math.floor(c / 16);
        const len = c % 16 === 15 ? kl.uint() : c % 16;
        if (p > prev.length) invalid("key head");
        const tail = ascii ? text.slice(off, off + len) : decodeUtf8(tails.subarray(off, off + len));
        off += len;
        prev = p === 0 ? tail : prev.slice(0, p) + tail;
        // No path reaches it (checkPath), and materializing it would set a prototype.
        if (prev === "__proto__") invalid('the key "__proto__" is not allowed');
        names[j] = prev;
      }
      const kids = new Kids<DocNode>();
      for (let j = 0; j < count; j++) {
        const key = names[j] as string;
        if (kids.find(key) >= 0) invalid("duplicate key");
        if (runLeft === 0 && v.pos < v.end && v.buf[v.pos] === T_NODE) {
          v.pos++;
          const child = new DocNode();
          node(child);
          kids.addNode(key, child);
        } else {
          const lv = value();
          const t = nextStamp();
          const q = refOf(t);
          kids.addLeaf(key, lv, table[q] as string, t - q * STAMP_M);
        }
      }
      n.kids = kids;
    }
    if (flags & F_COUNTER) {
      const c = new CounterState();
      const no = s.count();
      for (let k = 0; k < no; k++) {
        const ri = s.uint();
        if (ri >= nr) invalid("counter origin");
        const origin = replicas[ri] as string;
        // Layout 2 codes stamps and amounts in runs, so a count is not bounded by the bytes: the
        // increments of a snapshot are bounded as layout 1's are (at most one per body byte).
        const ni = layout === LAYOUT_1 ? s.count() : s.uint();
        if (ni > incrementBudget) invalid("more counter increments than a body can hold");
        incrementBudget -= ni;
        if (layout === LAYOUT_2) {
          counterStamps(c, origin, ni);
          continue;
        }
        for (let j = 0; j < ni; j++) {
          const t = s.uint();
          const q = refOf(t);
          const amount = value();
          if (typeof amount !== "number") invalid("counter amount");
          c.inc(origin, table[q] as string, t - q * STAMP_M, amount, undefined);
        }
      }
      n.x = c;
    } else if (flags & F_SET) {
      const set = new AddWinsSetState();
      const ne = s.count();
      for (let k = 0; k < ne; k++) {
        const val = value();
        const tags = new Map<string, number>();
        const ntg = s.count();
        for (let j = 0; j < ntg; j++) {
          const t = s.uint();
          const q = refOf(t);
          tags.set(table[q] as string, t - q * STAMP_M);
        }
        const el: SetElement = { value: val, tags, gone: undefined, fh: undefined, fi: 0 };
        const floor = s.uint();
        if (floor > 0) {
          const q = refOf(floor - 1);
          el.fh = table[q];
          el.fi = floor - 1 - q * STAMP_M;
        }
        const ng = s.count();
        if (ng > 0) {
          const gone = new Set<string>();
          for (let j = 0; j < ng; j++) gone.add(hlcOfRef(s.uint()));
          el.gone = gone;
        }
        set.elements.set(canonicalJson(val), el);
      }
      n.x = set;
    }
  };
  let incrementBudget = MAX_BODY;
  /** Layout 2: `ni` increments of `origin`, their stamps in runs (Writer.counterStamps). */
  const counterStamps = (c: CounterState, origin: string, ni: number): void => {
    let ms = 0;
    let counter = 0;
    let j = 0;
    while (j < ni) {
      const n = s.uint();
      if (n < 1 || n > ni - j) invalid("counter run length");
      const d = s.int();
      const cc = d === 0 ? s.int() : s.uint();
      const i = s.uint();
      if (i >= STAMP_M) invalid(`op index ${i}`);
      const node = s.uint();
      let nodeId: string;
      if (node === 0) nodeId = origin;
      else if (node === 1) {
        if (d !== 0 || cc !== 0) invalid("counter stamp of the initial state");
        nodeId = "";
      } else if (node - 2 < nr) nodeId = replicas[node - 2] as string;
      else nodeId = invalid(`counter stamp node ${node}`);
      // encodeHlc checks the node id once per run (and the ranges of its first stamp).
      if (node !== 1) encodeHlc({ ms: 0, counter: 0, node: nodeId });
      for (let q = 0; q < n; q++, j++) {
        if (node !== 1) {
          if (d === 0) counter += cc;
          else {
            ms += d;
            counter = cc;
          }
          if (
            !Number.isSafeInteger(ms) ||
            ms < 0 ||
            ms > HLC_MAX_MS ||
            !Number.isSafeInteger(counter) ||
            counter < 0 ||
            counter > HLC_MAX_COUNTER
          )
            invalid(`counter stamp (${ms}, ${counter})`);
        }
        const amount = value();
        if (typeof amount !== "number") invalid("counter amount");
        // Straight into the counter's columns: no HLC string is built.
        if (node === 1) c.incParts(origin, -1, 0, "", i, amount, undefined);
        else c.incParts(origin, ms, counter, nodeId, i, amount, undefined);
      }
    }
  };
  const hlcOfRef = (x: number): string => {
    if (x >= nRefs) invalid(`hlc ref ${x}`);
    return table[x] as string;
  };
  node(state.root);
  if (runLeft > 0 || stampLeft > 0) invalid("runs past the data");
  for (const c of cols) if (c.pos !== c.end) invalid("trailing bytes in a column");
  return { doc, version: Object.freeze(version), state, extra };
}

/**
 * Encodes a JSON snapshot (format 1, as `doc.snapshot()` returns it) in the binary form. A
 * document encodes itself faster with `doc.snapshotBinary()` (no JSON in between).
 * @param snapshot - The snapshot.
 * @param options - `compress` (default true): deflate the columns.
 * @returns The bytes; {@link decodeSnapshotBinary} gives back the snapshot, and
 * `createDoc({ snapshot: bytes })` loads them.
 * @throws {@link ValidationError} `schema/invalid` when the snapshot is not one `createDoc` would
 * load (the same checks).
 * @example
 * ```ts
 * const bytes = encodeSnapshotBinary(storedSnapshot);
 * const copy = createDoc({ schema, docId, replicaId: "node-b", snapshot: bytes });
 * ```
 */
export function encodeSnapshotBinary(snapshot: Snapshot, options: BinarySnapshotOptions = {}): Uint8Array {
  const snap = decodeSnapshot(snapshot);
  const { state, extra } = decodeState(snap.state);
  return encodeStateBinary(snap.doc, snap.version, state, extra, options);
}

/**
 * Decodes a binary snapshot into the JSON snapshot (format 1) of the same state: the one
 * `doc.snapshot()` gives after loading the bytes. To load a document, pass the bytes to
 * `createDoc({ snapshot: bytes })` instead (no JSON in between).
 * @param bytes - The binary snapshot.
 * @returns The snapshot.
 * @throws {@link ValidationError} `schema/invalid` when the bytes are not a binary snapshot, are
 * truncated or corrupt.
 */
export function decodeSnapshotBinary(bytes: Uint8Array): Snapshot {
  const d = decodeStateBinary(bytes);
  return Object.freeze({
    format: 1 as const,
    doc: d.doc,
    version: d.version,
    state: encodeState(d.state, d.extra) as unknown as Json,
  });
}

const sharedWriter = new Writer();
