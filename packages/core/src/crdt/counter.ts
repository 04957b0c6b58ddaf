import { HLC_COUNTER_DIGITS, HLC_MS_DIGITS, HLC_PREFIX_LENGTH } from "../clock/hlc.js";
import type { Undo } from "./undo.js";

/** One increment kept by a {@link CounterState}: stamp and amount. */
export interface CounterEntry {
  readonly h: string;
  readonly i: number;
  readonly d: number;
}

/**
 * The value of a counter from its increments, by the definition of docs/protocol.md ("Counter
 * value"): per origin, a left fold of its amounts in stamp order starting from 0; then a left fold
 * of those per-origin totals, origins in code-unit order, starting from 0. Compaction replaces a
 * prefix of an origin's increments by their left fold, which leaves every result unchanged.
 * @param entries - Per origin, its increments in stamp order.
 * @returns The value.
 */
export function foldCounter(entries: ReadonlyMap<string, readonly CounterEntry[]>): number {
  let total = 0;
  for (const origin of [...entries.keys()].sort()) {
    let s = 0;
    for (const e of entries.get(origin) as readonly CounterEntry[]) s += e.d;
    total += s;
  }
  return total;
}

/** The ms of the initial state's stamp `""` in a {@link CounterRun}: below every HLC's. */
const INITIAL_MS = -1;

/**
 * One origin's increments in stamp order, as columns: per increment its HLC's ms and counter, its
 * op index and its amount (the HLC's node is the origin but where {@link CounterRun.nodes} says
 * otherwise; the initial state's stamp `""` has ms -1). Stamps compare as (ms, counter, node, op
 * index), which is the order of HLC strings (fixed-width hex, then the node).
 */
export class CounterRun {
  /** Increments held. */
  n = 0;
  ms: Float64Array;
  counter: Int32Array;
  index: Int32Array;
  amount: Float64Array;
  /** Per increment, its HLC's node when it is not the origin; undefined while none is. */
  nodes: (string | undefined)[] | undefined;
  /** The left fold of the amounts (this origin's term of {@link foldCounter}), or undefined until computed. */
  total: number | undefined = 0;

  constructor(capacity = 4) {
    this.ms = new Float64Array(capacity);
    this.counter = new Int32Array(capacity);
    this.index = new Int32Array(capacity);
    this.amount = new Float64Array(capacity);
  }

  /** The node of increment `k`'s HLC. */
  nodeAt(k: number, origin: string): string {
    return this.nodes?.[k] ?? origin;
  }

  /** Increment `k`'s HLC string (`""` for the initial state's stamp). */
  hlcAt(k: number, origin: string): string {
    const ms = this.ms[k] as number;
    if (ms === INITIAL_MS) return "";
    return (
      ms.toString(16).padStart(HLC_MS_DIGITS, "0") +
      (this.counter[k] as number).toString(16).padStart(HLC_COUNTER_DIGITS, "0") +
      this.nodeAt(k, origin)
    );
  }

  /** Compares increment `k` with the stamp (ms, counter, node, i): negative, 0 or positive. */
  compare(k: number, origin: string, ms: number, counter: number, node: string, i: number): number {
    const a = this.ms[k] as number;
    if (a !== ms) return a < ms ? -1 : 1;
    const c = this.counter[k] as number;
    if (c !== counter) return c < counter ? -1 : 1;
    const nk = ms === INITIAL_MS ? "" : this.nodeAt(k, origin);
    if (nk !== node) return nk < node ? -1 : 1;
    return (this.index[k] as number) - i;
  }

  #grow(): void {
    const size = this.ms.length * 2;
    this.ms = grown(this.ms, new Float64Array(size));
    this.counter = grown(this.counter, new Int32Array(size));
    this.index = grown(this.index, new Int32Array(size));
    this.amount = grown(this.amount, new Float64Array(size));
  }

  /** Inserts an increment at position `at` (0..n). */
  insert(at: number, origin: string, ms: number, counter: number, node: string, i: number, d: number): void {
    if (this.n === this.ms.length) this.#grow();
    const n = this.n;
    if (at < n) {
      this.ms.copyWithin(at + 1, at, n);
      this.counter.copyWithin(at + 1, at, n);
      this.index.copyWithin(at + 1, at, n);
      this.amount.copyWithin(at + 1, at, n);
      if (this.nodes !== undefined) this.nodes.splice(at, 0, undefined);
    }
    this.ms[at] = ms;
    this.counter[at] = counter;
    this.index[at] = i;
    this.amount[at] = d;
    if (node !== origin && ms !== INITIAL_MS) {
      if (this.nodes === undefined) this.nodes = [];
      while (this.nodes.length < at) this.nodes.push(undefined);
      this.nodes[at] = node;
    } else if (this.nodes !== undefined && at < this.nodes.length) this.nodes[at] = undefined;
    this.n = n + 1;
  }

  /** Removes the increment at position `at`. */
  removeAt(at: number): void {
    const n = this.n;
    if (at < n - 1) {
      this.ms.copyWithin(at, at + 1, n);
      this.counter.copyWithin(at, at + 1, n);
      this.index.copyWithin(at, at + 1, n);
      this.amount.copyWithin(at, at + 1, n);
    }
    if (this.nodes !== undefined && at < this.nodes.length) this.nodes.splice(at, 1);
    this.n = n - 1;
  }

  /** A new run holding increments `[from, to)` of this one. */
  slice(from: number, to: number): CounterRun {
    const r = new CounterRun(Math.max(4, to - from));
    r.ms.set(this.ms.subarray(from, to));
    r.counter.set(this.counter.subarray(from, to));
    r.index.set(this.index.subarray(from, to));
    r.amount.set(this.amount.subarray(from, to));
    if (this.nodes !== undefined && this.nodes.length > from) r.nodes = this.nodes.slice(from, to);
    r.n = to - from;
    r.total = undefined;
    return r;
  }
}

/** `into` holding `from`'s items first. */
function grown<A extends Float64Array | Int32Array>(from: A, into: A): A {
  into.set(from);
  return into;
}

/** The value of the lowercase hex digits `h[from, to)` (the state holds well-formed HLCs only). */
function hexAt(h: string, from: number, to: number): number {
  let v = 0;
  for (let k = from; k < to; k++) {
    const c = h.charCodeAt(k);
    v = v * 16 + (c <= 57 ? c - 48 : c - 87);
  }
  return v;
}

/**
 * A stamp's HLC parts as a counter run keeps them, parsed without allocating (but for a node that
 * is not the origin).
 */
function parseStamp(h: string, origin: string): { ms: number; counter: number; node: string } {
  if (h === "") return { ms: INITIAL_MS, counter: 0, node: "" };
  return {
    ms: hexAt(h, 0, HLC_MS_DIGITS),
    counter: hexAt(h, HLC_MS_DIGITS, HLC_PREFIX_LENGTH),
    node:
      h.length === HLC_PREFIX_LENGTH + origin.length && h.endsWith(origin)
        ? origin
        : h.slice(HLC_PREFIX_LENGTH),
  };
}

/**
 * The state of a PN-counter node: per origin, its increments (stamp, amount) in stamp order, in
 * columns ({@link CounterRun}). Increments commute; a delete at or above the counter drops the
 * increments older than it (the counter restarts from what is newer). Compaction folds the
 * increments covered by the stability frontier into one entry per origin (their left fold).
 *
 * The value is {@link foldCounter}. While every amount is an integer and the sum of their
 * magnitudes is a safe integer, every order of summing is exact, so a running sum gives the same
 * number in O(1): the fast path. Otherwise each origin's left fold is kept (extended in O(1) by an
 * increment appended in stamp order) and the value folds those per-origin totals: O(origins).
 */
export class CounterState {
  /** Per origin, its increments. */
  readonly runs = new Map<string, CounterRun>();
  #count = 0;
  /** Whether every amount is an integer and {@link #abs} is a safe integer (sums are exact). */
  #exact = true;
  /** The sum of the magnitudes of the amounts (meaningful while exact). */
  #abs = 0;
  /** The exact sum while {@link #exact}. */
  #sum = 0;
  /** The folded value when not exact, or undefined until computed. */
  #cached: number | undefined;
  /** The origins in code-unit order (the order of {@link foldCounter}), until one is added or dropped. */
  #order: string[] | undefined;
  /** {@link entries}, until the next edit. */
  #view: Map<string, CounterEntry[]> | undefined;

  /**
   * Per origin, its increments in stamp order as entries: built from the columns (for the JSON
   * codec and tests; the binary snapshot reads {@link runs}).
   */
  get entries(): ReadonlyMap<string, readonly CounterEntry[]> {
    if (this.#view === undefined) {
      const view = new Map<string, CounterEntry[]>();
      for (const [origin, run] of this.runs) {
        const list: CounterEntry[] = new Array(run.n);
        for (let k = 0; k < run.n; k++)
          list[k] = { h: run.hlcAt(k, origin), i: run.index[k] as number, d: run.amount[k] as number };
        view.set(origin, list);
      }
      this.#view = view;
    }
    return this.#view;
  }

  /** Records an increment (kept in stamp order within its origin). */
  inc(origin: string, h: string, i: number, d: number, undo: Undo | undefined): void {
    const p = parseStamp(h, origin);
    this.incParts(origin, p.ms, p.counter, p.node, i, d, undo);
  }

  /**
   * {@link inc} with the HLC given as its parts (`""` as ms -1, counter 0, node ""), when the caller
   * has them: no string is parsed.
   */
  incParts(
    origin: string,
    ms: number,
    counter: number,
    node: string,
    i: number,
    d: number,
    undo: Undo | undefined,
  ): void {
    let run = this.runs.get(origin);
    if (run === undefined) {
      const created = new CounterRun();
      run = created;
      this.runs.set(origin, created);
      this.#order = undefined;
      undo?.push(() => {
        if (this.runs.get(origin) === created) this.runs.delete(origin);
        this.#order = undefined;
        this.#view = undefined;
      });
    }
    const r = run;
    const nd = ms === INITIAL_MS ? "" : node;
    // An origin's increments arrive in stamp order but for a restarted replica's own changes.
    let at = r.n;
    while (at > 0 && r.compare(at - 1, origin, ms, counter, nd, i) >= 0) at--;
    const total = r.total;
    const appended = at === r.n;
    r.insert(at, origin, ms, counter, nd, i, d);
    r.total = appended && total !== undefined ? total + d : undefined;
    const exact = this.#exact;
    const abs = this.#abs;
    const sum = this.#sum;
    const cached = this.#cached;
    this.#count++;
    this.#cached = undefined;
    this.#view = undefined;
    if (exact) {
      const a = abs + Math.abs(d);
      if (Number.isInteger(d) && a <= Number.MAX_SAFE_INTEGER) {
        this.#abs = a;
        this.#sum = sum + d;
      } else this.#exact = false;
    }
    undo?.push(() => {
      r.removeAt(at);
      r.total = total;
      this.#count--;
      this.#view = undefined;
      this.#restore(exact, abs, sum, cached);
    });
  }

  /** Drops the increments not newer than `(h, i)`. */
  pruneOlder(h: string, i: number, undo: Undo | undefined): void {
    for (const [origin, run] of this.runs) {
      const p = parseStamp(h, origin);
      // Stamps rise within a run: the kept increments are a suffix, found by binary search.
      let lo = 0;
      let hi = run.n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (run.compare(mid, origin, p.ms, p.counter, p.node, i) > 0) hi = mid;
        else lo = mid + 1;
      }
      if (lo === 0) continue;
      const exact = this.#exact;
      const abs = this.#abs;
      const sum = this.#sum;
      const cached = this.#cached;
      const count = this.#count;
      if (lo === run.n) {
        this.runs.delete(origin);
        this.#order = undefined;
      } else this.runs.set(origin, run.slice(lo, run.n));
      this.#view = undefined;
      this.#recount();
      undo?.push(() => {
        this.runs.set(origin, run);
        this.#order = undefined;
        this.#view = undefined;
        this.#count = count;
        this.#restore(exact, abs, sum, cached);
      });
    }
  }

  /**
   * Folds the increments for which `covered` holds (a prefix of each origin's, since stamps of one
   * origin grow with its seq) into one entry per origin: their left fold, at the last one's stamp.
   */
  fold(covered: (h: string) => boolean): void {
    let folded = false;
    for (const [origin, run] of this.runs) {
      let n = 0;
      while (n < run.n && covered(run.hlcAt(n, origin))) n++;
      if (n < 2) continue;
      let d = 0;
      for (let k = 0; k < n; k++) d += run.amount[k] as number;
      const next = run.slice(n - 1, run.n);
      next.amount[0] = d;
      this.runs.set(origin, next);
      folded = true;
    }
    if (folded) {
      this.#view = undefined;
      this.#recount();
    }
  }

  /** Whether no increment is kept. */
  isEmpty(): boolean {
    return this.#count === 0;
  }

  /**
   * The counter's value ({@link foldCounter}), or undefined when it has no increment (it was never
   * created, or deleted since).
   */
  value(): number | undefined {
    if (this.#count === 0) return undefined;
    if (this.#exact) return this.#sum;
    if (this.#cached === undefined) {
      // foldCounter, from the per-origin left folds.
      if (this.#order === undefined) this.#order = [...this.runs.keys()].sort();
      let total = 0;
      for (const origin of this.#order) {
        const run = this.runs.get(origin) as CounterRun;
        let s = run.total;
        if (s === undefined) {
          s = 0;
          for (let k = 0; k < run.n; k++) s += run.amount[k] as number;
          run.total = s;
        }
        total += s;
      }
      this.#cached = total;
    }
    return this.#cached;
  }

  #restore(exact: boolean, abs: number, sum: number, cached: number | undefined): void {
    this.#exact = exact;
    this.#abs = abs;
    this.#sum = sum;
    this.#cached = cached;
  }

  /** Recomputes the count and the fast path's sums from the runs. */
  #recount(): void {
    let count = 0;
    let exact = true;
    let abs = 0;
    let sum = 0;
    for (const run of this.runs.values()) {
      count += run.n;
      for (let k = 0; k < run.n && exact; k++) {
        const d = run.amount[k] as number;
        abs += Math.abs(d);
        if (!Number.isInteger(d) || abs > Number.MAX_SAFE_INTEGER) exact = false;
        else sum += d;
      }
    }
    this.#count = count;
    this.#restore(exact, abs, exact ? sum : 0, undefined);
  }
}
