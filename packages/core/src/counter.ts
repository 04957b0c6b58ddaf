import { isNewer } from "./stamp.js";
import type { Undo } from "./undo.js";

/** One increment kept by a {@link CounterState}: stamp and amount. */
export interface CounterEntry {
  readonly h: string;
  readonly i: number;
  readonly d: number;
}

/**
 * The state of a PN-counter node: per origin, its increments (stamp, amount). Increments commute;
 * a delete at or above the counter drops the increments older than it (the counter restarts from
 * what is newer). Compaction folds the increments covered by the stability frontier into one entry
 * per origin (its running total).
 */
export class CounterState {
  /** Per origin, increments in arrival order. */
  readonly entries = new Map<string, CounterEntry[]>();
  #sum: number | undefined = 0;
  #count = 0;

  /** Records an increment. */
  inc(origin: string, h: string, i: number, d: number, undo: Undo | undefined): void {
    let list = this.entries.get(origin);
    if (list === undefined) {
      const created: CounterEntry[] = [];
      list = created;
      this.entries.set(origin, created);
      undo?.push(() => this.entries.delete(origin));
    }
    const l = list;
    l.push({ h, i, d });
    this.#count++;
    const before = this.#sum;
    this.#sum = before !== undefined && Number.isInteger(d) ? before + d : undefined;
    undo?.push(() => {
      l.pop();
      this.#count--;
      this.#sum = before;
    });
  }

  /** Drops the increments not newer than `(h, i)`. */
  pruneOlder(h: string, i: number, undo: Undo | undefined): void {
    for (const [origin, list] of this.entries) {
      const kept = list.filter((e) => isNewer(e.h, e.i, h, i));
      if (kept.length === list.length) continue;
      const sum = this.#sum;
      const count = this.#count;
      this.#count -= list.length - kept.length;
      this.#sum = undefined;
      if (kept.length === 0) this.entries.delete(origin);
      else this.entries.set(origin, kept);
      undo?.push(() => {
        this.entries.set(origin, list);
        this.#sum = sum;
        this.#count = count;
      });
    }
  }

  /** Folds the increments for which `covered` holds into one entry per origin (compaction). */
  fold(covered: (h: string) => boolean): void {
    for (const [origin, list] of this.entries) {
      let n = 0;
      while (n < list.length && covered((list[n] as CounterEntry).h)) n++;
      if (n < 2) continue;
      // Sum in order for a deterministic float result.
      let d = 0;
      for (let k = 0; k < n; k++) d += (list[k] as CounterEntry).d;
      const last = list[n - 1] as CounterEntry;
      this.entries.set(origin, [{ h: last.h, i: last.i, d }, ...list.slice(n)]);
      this.#count -= n - 1;
    }
    this.#sum = undefined;
  }

  /** Whether no increment is kept. */
  isEmpty(): boolean {
    return this.#count === 0;
  }

  /**
   * The counter's value: the sum of its increments, or undefined when it has none (it was never
   * created, or deleted since). Non-integer amounts are summed in a canonical order so that every
   * replica gets the same float.
   */
  value(): number | undefined {
    if (this.#count === 0) return undefined;
    if (this.#sum !== undefined) return this.#sum;
    const all: CounterEntry[] = [];
    for (const origin of [...this.entries.keys()].sort()) {
      const list = (this.entries.get(origin) as CounterEntry[]).slice();
      list.sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : a.i - b.i));
      all.push(...list);
    }
    let s = 0;
    let integral = true;
    for (const e of all) {
      s += e.d;
      if (!Number.isInteger(e.d)) integral = false;
    }
    if (integral) this.#sum = s;
    return s;
  }
}
