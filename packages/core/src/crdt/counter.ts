import { isNewer } from "./stamp.js";
import type { Undo } from "./undo.js";

/** One increment kept by a {@link CounterState}: stamp and amount. */
export interface CounterEntry {
  readonly h: string;
  readonly i: number;
  readonly d: number;
}

/** Whether entry `a` sorts before stamp `(h, i)`. */
const before = (a: CounterEntry, h: string, i: number): boolean => isNewer(h, i, a.h, a.i);

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

/**
 * The state of a PN-counter node: per origin, its increments (stamp, amount) in stamp order.
 * Increments commute; a delete at or above the counter drops the increments older than it (the
 * counter restarts from what is newer). Compaction folds the increments covered by the stability
 * frontier into one entry per origin (their left fold).
 *
 * The value is {@link foldCounter}. While every amount is an integer and the sum of their
 * magnitudes is a safe integer, every order of summing is exact, so a running sum gives the same
 * number in O(1): the fast path. Otherwise the fold is computed once and cached until the next edit.
 */
export class CounterState {
  /** Per origin, increments in stamp order. */
  readonly entries = new Map<string, CounterEntry[]>();
  #count = 0;
  /** Whether every amount is an integer and {@link #abs} is a safe integer (sums are exact). */
  #exact = true;
  /** The sum of the magnitudes of the amounts (meaningful while exact). */
  #abs = 0;
  /** The exact sum while {@link #exact}. */
  #sum = 0;
  /** The folded value when not exact, or undefined until computed. */
  #cached: number | undefined;
  /**
   * Per origin, the left fold of its amounts in stamp order (its term of {@link foldCounter}), or
   * undefined until computed. An increment appended after an origin's last one extends it in O(1),
   * so the value of a counter with fractional amounts costs O(origins) per read, not O(increments).
   */
  readonly #totals = new Map<string, number | undefined>();
  /** The origins in code-unit order (the order of {@link foldCounter}), until one is added or dropped. */
  #order: string[] | undefined;

  /** Records an increment (kept in stamp order within its origin). */
  inc(origin: string, h: string, i: number, d: number, undo: Undo | undefined): void {
    let list = this.entries.get(origin);
    if (list === undefined) {
      const created: CounterEntry[] = [];
      list = created;
      this.entries.set(origin, created);
      this.#totals.set(origin, 0);
      this.#order = undefined;
      undo?.push(() => {
        this.entries.delete(origin);
        this.#totals.delete(origin);
        this.#order = undefined;
      });
    }
    const l = list;
    const entry = { h, i, d };
    // An origin's increments arrive in stamp order but for a restarted replica's own changes.
    let at = l.length;
    while (at > 0 && !before(l[at - 1] as CounterEntry, h, i)) at--;
    const total = this.#totals.get(origin);
    if (at === l.length) {
      l.push(entry);
      if (total !== undefined) this.#totals.set(origin, total + d);
    } else {
      l.splice(at, 0, entry);
      this.#totals.set(origin, undefined);
    }
    const exact = this.#exact;
    const abs = this.#abs;
    const sum = this.#sum;
    const cached = this.#cached;
    this.#count++;
    this.#cached = undefined;
    if (exact) {
      const a = abs + Math.abs(d);
      if (Number.isInteger(d) && a <= Number.MAX_SAFE_INTEGER) {
        this.#abs = a;
        this.#sum = sum + d;
      } else this.#exact = false;
    }
    undo?.push(() => {
      l.splice(at, 1);
      this.#count--;
      if (this.#totals.has(origin)) this.#totals.set(origin, total);
      this.#restore(exact, abs, sum, cached);
    });
  }

  /** Drops the increments not newer than `(h, i)`. */
  pruneOlder(h: string, i: number, undo: Undo | undefined): void {
    for (const [origin, list] of this.entries) {
      const kept = list.filter((e) => isNewer(e.h, e.i, h, i));
      if (kept.length === list.length) continue;
      const exact = this.#exact;
      const abs = this.#abs;
      const sum = this.#sum;
      const cached = this.#cached;
      const count = this.#count;
      const total = this.#totals.get(origin);
      if (kept.length === 0) {
        this.entries.delete(origin);
        this.#totals.delete(origin);
        this.#order = undefined;
      } else {
        this.entries.set(origin, kept);
        this.#totals.set(origin, undefined);
      }
      this.#recount();
      undo?.push(() => {
        this.entries.set(origin, list);
        this.#totals.set(origin, total);
        this.#order = undefined;
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
    for (const [origin, list] of this.entries) {
      let n = 0;
      while (n < list.length && covered((list[n] as CounterEntry).h)) n++;
      if (n < 2) continue;
      let d = 0;
      for (let k = 0; k < n; k++) d += (list[k] as CounterEntry).d;
      const last = list[n - 1] as CounterEntry;
      this.entries.set(origin, [{ h: last.h, i: last.i, d }, ...list.slice(n)]);
      this.#totals.set(origin, undefined);
      folded = true;
    }
    if (folded) this.#recount();
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
      if (this.#order === undefined) this.#order = [...this.entries.keys()].sort();
      let total = 0;
      for (const origin of this.#order) {
        let s = this.#totals.get(origin);
        if (s === undefined) {
          s = 0;
          for (const e of this.entries.get(origin) as CounterEntry[]) s += e.d;
          this.#totals.set(origin, s);
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

  /** Recomputes the count and the fast path's sums from the entries. */
  #recount(): void {
    let count = 0;
    let exact = true;
    let abs = 0;
    let sum = 0;
    for (const list of this.entries.values()) {
      count += list.length;
      for (const e of list) {
        if (!exact) continue;
        abs += Math.abs(e.d);
        if (!Number.isInteger(e.d) || abs > Number.MAX_SAFE_INTEGER) exact = false;
        else sum += e.d;
      }
    }
    this.#count = count;
    this.#restore(exact, abs, exact ? sum : 0, undefined);
  }
}
