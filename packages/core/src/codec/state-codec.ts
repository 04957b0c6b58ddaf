import { encodeHlc, HLC_COUNTER_DIGITS, HLC_MS_DIGITS, HLC_PREFIX_LENGTH } from "../clock/hlc.js";
import { AddWinsSetState, type SetElement } from "../crdt/add-wins-set.js";
import { CounterState } from "../crdt/counter.js";
import { DocNode, DocState, isLeafOnly } from "../crdt/doc-state.js";
import { Kids } from "../crdt/kids.js";
import { MAX_OPS_PER_CHANGE } from "../crdt/stamp.js";
import { ErrorCode, isNxsError, ValidationError } from "../errors/errors.js";
import type { Json } from "../model/change.js";
import { canonicalJson, isPlainObject, toFrozenJson } from "../model/json.js";
import { isSeparator, SeparatorPicker } from "./columns.js";

/**
 * The JSON encoding of a document's CRDT state inside a snapshot (`Snapshot.state`, format 1).
 * See docs/protocol.md. HLCs are a table of numbers (ms delta, counter, replica index), sorted, so
 * that a stamp is one number `ref * m + opIndex` (`ref` 0 is `""`, the stamp of the initial state,
 * `ref` k is the k-th HLC of the table); children of an object are columns (keys, values, stamps).
 */
export interface EncodedState {
  /** Replica ids, referenced by the HLC table and by counter entries (`""` for the initial value). */
  readonly r: readonly string[];
  /** The HLC table, ascending: per HLC, `ms - previous ms`, `counter`, index in `r`. */
  readonly t: readonly number[];
  /** The stamp multiplier: one more than the largest op index of any stamp. */
  readonly m: number;
  /** The separator of the key columns (`c[0]` is then one string), absent when keys are arrays. */
  readonly sep?: string;
  /** Per origin, the ref of the HLC of its highest contiguous applied change. */
  readonly last: Readonly<Record<string, number>>;
  /** Per origin, seqs applied past a gap (rare: own changes after a restart). */
  readonly extra?: Readonly<Record<string, readonly number[]>>;
  readonly root: EncodedNode;
}

/**
 * The children of a node as columns: keys (one string joined by `sep`, or an array), then per child
 * either its leaf value (a *plain leaf*: a set value and nothing else; never an object) or its
 * encoded node (an object), then the stamps of the plain leaves, each minus the previous one.
 */
export type EncodedChildren = readonly [
  keys: string | readonly string[],
  entries: readonly (Json | EncodedNode)[],
  stamps: readonly number[],
];

/** One node of an {@link EncodedState}. */
export interface EncodedNode {
  /** Shadow: `[stamp, value]` for a leaf, `[stamp]` for a delete. */
  readonly s?: readonly [number, Json] | readonly [number];
  /** Marker stamp: the path is an object (or a set) even when empty. */
  readonly m?: number;
  /** Children, as columns. */
  readonly c?: EncodedChildren;
  /** Counter increments, flat: `origin index, stamp, amount` per increment (per origin in order). */
  readonly n?: readonly number[];
  /** Set: elements `[value, [tag stamps], removeFloor?, [gone tag refs]?]`. */
  readonly e?: readonly (readonly [Json, readonly number[], number?, (readonly number[])?])[];
  /** `"c"` counter or `"s"` set, for a typed node with no payload yet. */
  readonly k?: "c" | "s";
}

type MutableNode = {
  s?: readonly [number, Json] | readonly [number];
  m?: number;
  c?: EncodedChildren;
  n?: number[];
  e?: (readonly [Json, readonly number[], number?, (readonly number[])?])[];
  k?: "c" | "s";
};

/** A node that is a set leaf (not an object) and nothing else: encoded as its value in its parent's columns. */
function isPlainLeaf(n: DocNode): boolean {
  return isLeafOnly(n) && !isPlainObject(n.v);
}

/**
 * Encodes a CRDT state as JSON.
 * @param state - The state.
 * @param extra - Seqs applied past a gap, per origin.
 * @returns The encoded state.
 */
export function encodeState(state: DocState, extra: ReadonlyMap<string, ReadonlySet<number>>): EncodedState {
  // Pass 1: every HLC, the largest op index, and which separators the keys leave free.
  const hlcSet = new Set<string>();
  let maxIndex = 0;
  const picker = new SeparatorPicker();
  const see = (h: string, i: number): void => {
    if (h !== "") hlcSet.add(h);
    if (i > maxIndex) maxIndex = i;
  };
  const scan = (n: DocNode): void => {
    if (n.sh !== undefined) see(n.sh, n.si);
    if (n.mh !== undefined) see(n.mh, n.mi);
    if (n.kids !== undefined)
      for (let e = 0; e < n.kids.end; e++) {
        const k = n.kids.key[e];
        if (k === undefined) continue;
        picker.see(k);
        if (n.kids.isLeaf(e)) see(n.kids.h[e] as string, n.kids.i[e] as number);
        else scan(n.kids.val[e] as DocNode);
      }
    if (n.x instanceof CounterState) {
      for (const list of n.x.entries.values()) for (const e of list) see(e.h, e.i);
    } else if (n.x instanceof AddWinsSetState) {
      for (const el of n.x.elements.values()) {
        for (const [t, ti] of el.tags) see(t, ti);
        if (el.fh !== undefined) see(el.fh, el.fi);
        if (el.gone !== undefined) for (const g of el.gone) see(g, 0);
      }
    }
  };
  scan(state.root);
  for (const h of state.lastHlc.values()) see(h, 0);

  // The HLC table, sorted (so refs follow HLC order), and the replica table.
  const sorted = [...hlcSet].sort();
  const refs = new Map<string, number>([["", 0]]);
  const replicas: string[] = [];
  const replicaIndex = new Map<string, number>();
  const rIndex = (node: string): number => {
    let k = replicaIndex.get(node);
    if (k === undefined) {
      k = replicas.length;
      replicas.push(node);
      replicaIndex.set(node, k);
    }
    return k;
  };
  const t: number[] = new Array(sorted.length * 3);
  let prevMs = 0;
  for (let k = 0; k < sorted.length; k++) {
    const h = sorted[k] as string;
    refs.set(h, k + 1);
    const ms = Number.parseInt(h.slice(0, HLC_MS_DIGITS), 16);
    t[3 * k] = ms - prevMs;
    t[3 * k + 1] = Number.parseInt(h.slice(HLC_MS_DIGITS, HLC_MS_DIGITS + HLC_COUNTER_DIGITS), 16);
    t[3 * k + 2] = rIndex(h.slice(HLC_PREFIX_LENGTH));
    prevMs = ms;
  }
  const m = maxIndex + 1;
  const ref = (h: string): number => refs.get(h) as number;
  const stamp = (h: string, i: number): number => (refs.get(h) as number) * m + i;
  const sep = picker.pick();

  // Pass 2: the tree.
  const enc = (n: DocNode): EncodedNode => {
    const out: MutableNode = {};
    if (n.sh !== undefined) out.s = n.sd ? [stamp(n.sh, n.si)] : [stamp(n.sh, n.si), n.v as Json];
    if (n.mh !== undefined) out.m = stamp(n.mh, n.mi);
    if (n.kids !== undefined && n.kids.size > 0) {
      const keys: string[] = [];
      const entries: (Json | EncodedNode)[] = [];
      const stamps: number[] = [];
      let prev = 0;
      const kids = n.kids;
      for (let e = 0; e < kids.end; e++) {
        const k = kids.key[e];
        if (k === undefined) continue;
        keys.push(k);
        if (kids.isLeaf(e)) {
          const v = kids.val[e] as Json;
          const s = stamp(kids.h[e] as string, kids.i[e] as number);
          if (isPlainObject(v)) {
            // A leaf holding an object value (possible only through a binary snapshot): a node entry.
            entries.push({ s: [s, v] });
            continue;
          }
          stamps.push(s - prev);
          prev = s;
          entries.push(v);
          continue;
        }
        const kid = kids.val[e] as DocNode;
        if (isPlainLeaf(kid)) {
          const s = stamp(kid.sh as string, kid.si);
          stamps.push(s - prev);
          prev = s;
          entries.push(kid.v as Json);
        } else {
          entries.push(enc(kid));
        }
      }
      out.c = [sep === undefined ? keys : keys.join(sep), entries, stamps];
    }
    if (n.x instanceof CounterState) {
      out.k = "c";
      if (!n.x.isEmpty()) {
        const flat: number[] = [];
        for (const [origin, list] of n.x.entries)
          for (const e of list) flat.push(rIndex(origin), stamp(e.h, e.i), e.d);
        out.n = flat;
      }
    } else if (n.x instanceof AddWinsSetState) {
      out.k = "s";
      if (!n.x.isEmpty()) {
        out.e = [...n.x.elements.values()].map((el) => {
          const tags = [...el.tags].map(([tg, ti]) => stamp(tg, ti));
          const floor = el.fh === undefined ? undefined : stamp(el.fh, el.fi);
          const gone = el.gone === undefined || el.gone.size === 0 ? undefined : [...el.gone].map(ref);
          if (gone !== undefined) return [el.value, tags, floor ?? -1, gone] as const;
          if (floor !== undefined) return [el.value, tags, floor] as const;
          return [el.value, tags] as const;
        });
      }
    }
    return out;
  };
  const root = enc(state.root);
  const last: Record<string, number> = {};
  for (const [o, h] of state.lastHlc) last[o] = ref(h);
  const ex: Record<string, number[]> = {};
  let hasExtra = false;
  for (const [o, seqs] of extra) {
    if (seqs.size === 0) continue;
    ex[o] = [...seqs].sort((a, b) => a - b);
    hasExtra = true;
  }
  const head = sep === undefined ? { r: replicas, t, m } : { r: replicas, t, m, sep };
  return hasExtra ? { ...head, last, extra: ex, root } : { ...head, last, root };
}

function corrupt(msg: string): never {
  throw new ValidationError(`snapshot state is malformed: ${msg}`, { code: ErrorCode.SchemaInvalid });
}

/**
 * Decodes a state made by {@link encodeState}, checking everything (it comes from storage or the
 * network).
 * @param json - The `state` of a snapshot.
 * @returns The CRDT state and the seqs applied past a gap.
 * @throws {@link ValidationError} `schema/invalid` when the encoding is malformed.
 */
export function decodeState(json: unknown): { state: DocState; extra: Map<string, Set<number>> } {
  if (!isPlainObject(json)) corrupt("not an object");
  const { r, t, m, sep, last, extra, root } = json as Record<string, unknown>;
  if (!Array.isArray(r) || !r.every((x) => typeof x === "string")) corrupt("replica table (r)");
  const replicas = r as string[];
  if (!Array.isArray(t) || t.length % 3 !== 0) corrupt("hlc table (t)");
  if (typeof m !== "number" || !Number.isSafeInteger(m) || m < 1 || m > MAX_OPS_PER_CHANGE) corrupt("m");
  if (sep !== undefined && !isSeparator(sep)) corrupt("sep");
  const table: string[] = [""];
  let ms = 0;
  for (let k = 0; k < t.length; k += 3) {
    const d = t[k];
    const counter = t[k + 1];
    const ri = t[k + 2];
    if (typeof d !== "number" || !Number.isSafeInteger(d)) corrupt(`hlc ${k / 3} ms`);
    if (typeof ri !== "number" || !Number.isInteger(ri) || ri < 0 || ri >= replicas.length)
      corrupt(`hlc ${k / 3} replica`);
    ms += d;
    try {
      table.push(encodeHlc({ ms, counter: counter as number, node: replicas[ri] as string }));
    } catch (e) {
      corrupt(`hlc ${k / 3}: ${isNxsError(e) ? e.message : String(e)}`);
    }
  }
  const nRefs = table.length;
  const limit = nRefs * m;
  const checkStamp = (s: unknown): number => {
    if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0 || s >= limit) corrupt(`stamp ${s}`);
    return s;
  };
  const hlcOfRef = (x: unknown): string => {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x >= nRefs) corrupt(`hlc ref ${x}`);
    return table[x] as string;
  };
  const state = new DocState();
  const dec = (e: unknown, n: DocNode): void => {
    if (!isPlainObject(e)) corrupt("node");
    const o = e as Record<string, unknown>;
    if (o.s !== undefined) {
      if (!Array.isArray(o.s) || o.s.length < 1 || o.s.length > 2) corrupt("shadow");
      const s = checkStamp(o.s[0]);
      const q = Math.floor(s / m);
      n.sh = table[q];
      n.si = s - q * m;
      n.sd = o.s.length === 1;
      if (!n.sd) {
        const v = toFrozenJson(o.s[1]);
        if (v === undefined) corrupt("leaf value");
        n.v = v;
      }
    }
    if (o.m !== undefined) {
      const s = checkStamp(o.m);
      const q = Math.floor(s / m);
      n.mh = table[q];
      n.mi = s - q * m;
    }
    if (o.c !== undefined) decChildren(o.c, n);
    if (o.k === "c" || o.n !== undefined) {
      const c = new CounterState();
      if (o.n !== undefined) {
        const flat = o.n;
        if (!Array.isArray(flat) || flat.length % 3 !== 0) corrupt("counter");
        for (let k = 0; k < flat.length; k += 3) {
          const ri = flat[k];
          const amount = flat[k + 2];
          if (typeof ri !== "number" || !Number.isInteger(ri) || ri < 0 || ri >= replicas.length)
            corrupt("counter origin");
          if (typeof amount !== "number" || !Number.isFinite(amount)) corrupt("counter amount");
          const s = checkStamp(flat[k + 1]);
          const q = Math.floor(s / m);
          c.inc(replicas[ri] as string, table[q] as string, s - q * m, amount, undefined);
        }
      }
      n.x = c;
    } else if (o.k === "s" || o.e !== undefined) {
      const set = new AddWinsSetState();
      if (o.e !== undefined) {
        if (!Array.isArray(o.e)) corrupt("set");
        for (const item of o.e) {
          if (!Array.isArray(item) || !Array.isArray(item[1])) corrupt("set element");
          const value = toFrozenJson(item[0]);
          if (value === undefined) corrupt("set element value");
          const tags = new Map<string, number>();
          for (const tg of item[1] as unknown[]) {
            const s = checkStamp(tg);
            const q = Math.floor(s / m);
            tags.set(table[q] as string, s - q * m);
          }
          const el: SetElement = { value, tags, gone: undefined, fh: undefined, fi: 0 };
          if (item[2] !== undefined && item[2] !== -1) {
            const s = checkStamp(item[2]);
            const q = Math.floor(s / m);
            el.fh = table[q];
            el.fi = s - q * m;
          }
          if (item[3] !== undefined) {
            if (!Array.isArray(item[3])) corrupt("set gone tags");
            el.gone = new Set((item[3] as unknown[]).map(hlcOfRef));
          }
          set.elements.set(canonicalJson(value), el);
        }
      }
      n.x = set;
    }
  };
  const decChildren = (c: unknown, n: DocNode): void => {
    if (!Array.isArray(c) || c.length !== 3) corrupt("children");
    const [ks, es, ss] = c as unknown[];
    let keys: unknown[];
    if (typeof ks === "string") {
      if (sep === undefined) corrupt("key column without sep");
      keys = ks.split(sep as string);
    } else if (Array.isArray(ks)) keys = ks;
    else corrupt("key column");
    if (!Array.isArray(es) || es.length !== keys.length || !Array.isArray(ss)) corrupt("children columns");
    const kids = new Kids<DocNode>();
    let prev = 0;
    let si = 0;
    for (let j = 0; j < keys.length; j++) {
      const k = keys[j];
      if (typeof k !== "string") corrupt("key");
      // No path reaches it (checkPath), and materializing it would set a prototype.
      if (k === "__proto__") corrupt('the key "__proto__"');
      const entry = es[j];
      if (kids.find(k) >= 0) corrupt("duplicate key");
      if (isPlainObject(entry)) {
        const child = new DocNode();
        dec(entry, child);
        kids.addNode(k, child);
      } else {
        const d = ss[si++];
        if (typeof d !== "number") corrupt("leaf stamp");
        prev += d;
        const s = checkStamp(prev);
        const q = Math.floor(s / m);
        const v = toFrozenJson(entry);
        if (v === undefined) corrupt("leaf value");
        kids.addLeaf(k, v, table[q] as string, s - q * m);
      }
    }
    if (si !== ss.length) corrupt("leaf stamps");
    if (kids.size > 0) n.kids = kids;
  };
  dec(root, state.root);
  if (!isPlainObject(last)) corrupt("last");
  for (const [o, x] of Object.entries(last as Record<string, unknown>)) state.lastHlc.set(o, hlcOfRef(x));
  const ex = new Map<string, Set<number>>();
  if (extra !== undefined) {
    if (!isPlainObject(extra)) corrupt("extra");
    for (const [o, seqs] of Object.entries(extra as Record<string, unknown>)) {
      if (!Array.isArray(seqs) || !seqs.every((q) => Number.isSafeInteger(q) && (q as number) > 0))
        corrupt("extra seqs");
      ex.set(o, new Set(seqs as number[]));
    }
  }
  return { state, extra: ex };
}
