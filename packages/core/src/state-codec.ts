import { AddWinsSetState, type SetElement } from "./add-wins-set.js";
import type { Json } from "./change.js";
import { CounterState } from "./counter.js";
import { DocNode, DocState } from "./doc-state.js";
import { ErrorCode, ValidationError } from "./errors.js";
import { canonicalJson, isPlainObject, toFrozenJson } from "./json.js";
import { MAX_OPS_PER_CHANGE } from "./stamp.js";

/**
 * The JSON encoding of a document's CRDT state inside a snapshot (`Snapshot.state`, format 1).
 * See docs/protocol.md. Stamps are numbers `ref * 2^20 + opIndex` where `ref` indexes `hlcs`
 * (`hlcs[0]` is `""`, the stamp of the initial state).
 */
export interface EncodedState {
  readonly hlcs: readonly string[];
  /** Per origin, the ref of the HLC of its highest contiguous applied change. */
  readonly last: Readonly<Record<string, number>>;
  /** Per origin, seqs applied past a gap (rare: own changes after a restart). */
  readonly extra?: Readonly<Record<string, readonly number[]>>;
  readonly root: EncodedNode;
}

/** One node of an {@link EncodedState}. */
export interface EncodedNode {
  /** Shadow: `[stamp, value]` for a leaf, `[stamp]` for a delete. */
  readonly s?: readonly [number, Json] | readonly [number];
  /** Marker stamp: the path is an object (or a set) even when empty. */
  readonly m?: number;
  /** Children by key. */
  readonly c?: Readonly<Record<string, EncodedNode>>;
  /** Counter: per origin, `[stamp, amount]` increments. */
  readonly n?: Readonly<Record<string, readonly (readonly [number, number])[]>>;
  /** Set: elements `[value, [tag stamps], removeFloor?, [gone tag refs]?]`. */
  readonly e?: readonly (readonly [Json, readonly number[], number?, (readonly number[])?])[];
  /** `"c"` counter or `"s"` set, for a typed node with no payload yet. */
  readonly k?: "c" | "s";
}

/**
 * Encodes a CRDT state as JSON.
 * @param state - The state.
 * @param extra - Seqs applied past a gap, per origin.
 * @returns The encoded state.
 */
export function encodeState(state: DocState, extra: ReadonlyMap<string, ReadonlySet<number>>): EncodedState {
  const hlcs: string[] = [""];
  const refs = new Map<string, number>([["", 0]]);
  const ref = (h: string): number => {
    let r = refs.get(h);
    if (r === undefined) {
      r = hlcs.length;
      hlcs.push(h);
      refs.set(h, r);
    }
    return r;
  };
  const stamp = (h: string, i: number): number => ref(h) * MAX_OPS_PER_CHANGE + i;
  const enc = (n: DocNode): EncodedNode => {
    const out: {
      s?: readonly [number, Json] | readonly [number];
      m?: number;
      c?: Record<string, EncodedNode>;
      n?: Record<string, (readonly [number, number])[]>;
      e?: (readonly [Json, readonly number[], number?, (readonly number[])?])[];
      k?: "c" | "s";
    } = {};
    if (n.sh !== undefined) out.s = n.sd ? [stamp(n.sh, n.si)] : [stamp(n.sh, n.si), n.v as Json];
    if (n.mh !== undefined) out.m = stamp(n.mh, n.mi);
    if (n.kids !== undefined && n.kids.size > 0) {
      const c: Record<string, EncodedNode> = {};
      for (const [k, kid] of n.kids) c[k] = enc(kid);
      out.c = c;
    }
    if (n.x instanceof CounterState) {
      out.k = "c";
      if (!n.x.isEmpty()) {
        const o: Record<string, (readonly [number, number])[]> = {};
        for (const [origin, list] of n.x.entries)
          o[origin] = list.map((e) => [stamp(e.h, e.i), e.d] as const);
        out.n = o;
      }
    } else if (n.x instanceof AddWinsSetState) {
      out.k = "s";
      if (!n.x.isEmpty()) {
        out.e = [...n.x.elements.values()].map((el) => {
          const tags = [...el.tags].map(([t, ti]) => stamp(t, ti));
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
  return hasExtra ? { hlcs, last, extra: ex, root } : { hlcs, last, root };
}

function corrupt(msg: string): never {
  throw new ValidationError(`snapshot state is malformed: ${msg}`, { code: ErrorCode.SchemaInvalid });
}

/**
 * Decodes a state made by {@link encodeState}.
 * @param json - The `state` of a snapshot.
 * @returns The CRDT state and the seqs applied past a gap.
 * @throws {@link ValidationError} `schema/invalid` when the encoding is malformed.
 */
export function decodeState(json: unknown): { state: DocState; extra: Map<string, Set<number>> } {
  if (!isPlainObject(json)) corrupt("not an object");
  const { hlcs, last, extra, root } = json as Record<string, unknown>;
  if (!Array.isArray(hlcs) || hlcs[0] !== "" || !hlcs.every((h) => typeof h === "string")) corrupt("hlcs");
  const table = hlcs as string[];
  const hlcOf = (r: unknown): string => {
    if (typeof r !== "number" || !Number.isInteger(r) || r < 0 || r >= table.length) corrupt(`hlc ref ${r}`);
    return table[r] as string;
  };
  const unstamp = (s: unknown): [string, number] => {
    if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0) corrupt(`stamp ${s}`);
    return [hlcOf(Math.floor(s / MAX_OPS_PER_CHANGE)), s % MAX_OPS_PER_CHANGE];
  };
  const state = new DocState();
  const dec = (e: unknown, n: DocNode): void => {
    if (!isPlainObject(e)) corrupt("node");
    const o = e as Record<string, unknown>;
    if (o.s !== undefined) {
      if (!Array.isArray(o.s) || o.s.length < 1 || o.s.length > 2) corrupt("shadow");
      [n.sh, n.si] = unstamp(o.s[0]);
      n.sd = o.s.length === 1;
      if (!n.sd) {
        const v = toFrozenJson(o.s[1]);
        if (v === undefined) corrupt("leaf value");
        n.v = v;
      }
    }
    if (o.m !== undefined) [n.mh, n.mi] = unstamp(o.m);
    if (o.c !== undefined) {
      if (!isPlainObject(o.c)) corrupt("children");
      n.kids = new Map();
      for (const [k, kid] of Object.entries(o.c)) {
        const child = new DocNode();
        dec(kid, child);
        n.kids.set(k, child);
      }
    }
    if (o.k === "c" || o.n !== undefined) {
      const c = new CounterState();
      if (o.n !== undefined) {
        if (!isPlainObject(o.n)) corrupt("counter");
        for (const [origin, list] of Object.entries(o.n)) {
          if (!Array.isArray(list)) corrupt("counter entries");
          for (const item of list) {
            if (!Array.isArray(item) || typeof item[1] !== "number" || !Number.isFinite(item[1]))
              corrupt("counter entry");
            const [h, i] = unstamp(item[0]);
            c.inc(origin, h, i, item[1], undefined);
          }
        }
      }
      n.x = c;
    } else if (o.k === "s" || o.e !== undefined) {
      const s = new AddWinsSetState();
      if (o.e !== undefined) {
        if (!Array.isArray(o.e)) corrupt("set");
        for (const item of o.e) {
          if (!Array.isArray(item) || !Array.isArray(item[1])) corrupt("set element");
          const value = toFrozenJson(item[0]);
          if (value === undefined) corrupt("set element value");
          const tags = new Map<string, number>();
          for (const t of item[1] as unknown[]) {
            const [h, i] = unstamp(t);
            tags.set(h, i);
          }
          const el: SetElement = { value, tags, gone: undefined, fh: undefined, fi: 0 };
          if (item[2] !== undefined && item[2] !== -1) [el.fh, el.fi] = unstamp(item[2]);
          if (item[3] !== undefined) {
            if (!Array.isArray(item[3])) corrupt("set gone tags");
            el.gone = new Set((item[3] as unknown[]).map(hlcOf));
          }
          s.elements.set(canonicalJson(value), el);
        }
      }
      n.x = s;
    }
  };
  dec(root, state.root);
  if (!isPlainObject(last)) corrupt("last");
  for (const [o, r] of Object.entries(last as Record<string, unknown>)) state.lastHlc.set(o, hlcOf(r));
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
