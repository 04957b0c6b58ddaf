import type { Change } from "./change.js";
import { getVersion, type VersionVector } from "./version-vector.js";

/**
 * What a document has applied and still retains: the version vector (per origin, the highest
 * contiguous seq), seqs applied past a gap, and the retained changes that `changesSince` serves
 * until `compact` drops them.
 */
export class ChangeLog {
  readonly vv = new Map<string, number>();
  /** Seqs applied past a gap (own changes made after a restart before older ones came back). */
  readonly extra = new Map<string, Set<number>>();
  /** Per origin, retained changes: `list[k]` has seq `start + k` (holes only past a gap). */
  readonly #log = new Map<string, { start: number; list: (Change | undefined)[] }>();
  /** Per origin: seqs up to this were dropped by compaction (or came in a snapshot). */
  readonly #floor = new Map<string, number>();
  /** Per origin: the HLC of the change at the compaction floor. */
  readonly #floorHlc = new Map<string, string>();
  #version: VersionVector | undefined;

  /** Starts from a snapshot's version (nothing retained below it). */
  static fromVersion(
    vv: VersionVector,
    extra: Map<string, Set<number>>,
    hlcOf: (origin: string) => string | undefined,
  ): ChangeLog {
    const log = new ChangeLog();
    for (const [o, s] of Object.entries(vv)) {
      if (s <= 0) continue;
      log.vv.set(o, s);
      log.#floor.set(o, s);
      const h = hlcOf(o);
      if (h !== undefined) log.#floorHlc.set(o, h);
    }
    for (const [o, seqs] of extra) log.extra.set(o, new Set(seqs));
    return log;
  }

  /** Whether `(origin, seq)` was applied. */
  has(origin: string, seq: number): boolean {
    return seq <= (this.vv.get(origin) ?? 0) || (this.extra.get(origin)?.has(seq) ?? false);
  }

  /** The next seq expected from `origin`. */
  next(origin: string): number {
    return (this.vv.get(origin) ?? 0) + 1;
  }

  /**
   * Records an applied change and retains it.
   * @returns The seqs the version vector advanced over (beyond the change itself, from `extra`).
   */
  record(change: Change): void {
    const o = change.origin;
    let m = this.#log.get(o);
    if (m === undefined) {
      m = { start: change.seq, list: [] };
      this.#log.set(o, m);
    }
    if (change.seq < m.start) {
      // Older than anything retained (an own change coming back after a restart): prepend.
      const pad: (Change | undefined)[] = new Array(m.start - change.seq).fill(undefined);
      m.list = [...pad, ...m.list];
      m.start = change.seq;
    }
    const k = change.seq - m.start;
    while (m.list.length < k) m.list.push(undefined);
    m.list[k] = change;
    const v = this.vv.get(o) ?? 0;
    if (change.seq === v + 1) {
      let nv = change.seq;
      const ex = this.extra.get(o);
      if (ex !== undefined) {
        while (ex.delete(nv + 1)) nv++;
        if (ex.size === 0) this.extra.delete(o);
      }
      this.vv.set(o, nv);
    } else {
      let ex = this.extra.get(o);
      if (ex === undefined) {
        ex = new Set();
        this.extra.set(o, ex);
      }
      ex.add(change.seq);
    }
    this.#version = undefined;
  }

  /** The HLC of the change at the contiguous head of `origin`, when known. */
  headHlc(origin: string): string | undefined {
    const v = this.vv.get(origin);
    if (v === undefined) return undefined;
    const m = this.#log.get(origin);
    const c = m === undefined ? undefined : m.list[v - m.start];
    return c?.hlc ?? (this.#floor.get(origin) === v ? this.#floorHlc.get(origin) : undefined);
  }

  /** The version vector, frozen (cached until the next record). */
  version(): VersionVector {
    if (this.#version === undefined) this.#version = Object.freeze(Object.fromEntries(this.vv));
    return this.#version;
  }

  /** The retained changes `since` lacks, ordered by HLC (per origin that is seq order). */
  changesSince(since: VersionVector): Change[] {
    const out: Change[] = [];
    for (const [o, m] of this.#log) {
      const s = getVersion(since, o);
      for (let k = Math.max(0, s + 1 - m.start); k < m.list.length; k++) {
        const c = m.list[k];
        if (c !== undefined) out.push(c);
      }
    }
    out.sort((a, b) => (a.hlc < b.hlc ? -1 : a.hlc > b.hlc ? 1 : a.seq - b.seq));
    return out;
  }

  /**
   * Drops retained changes covered by `frontier` (clamped to what was applied).
   * @returns Per origin, the HLC of the newest change now covered: stamps not after it are stable.
   */
  compact(frontier: VersionVector): Map<string, string> {
    for (const [o, f0] of Object.entries(frontier)) {
      const f = Math.min(f0, this.vv.get(o) ?? 0);
      const old = this.#floor.get(o) ?? 0;
      if (f <= old) continue;
      const m = this.#log.get(o);
      const h = m === undefined ? undefined : m.list[f - m.start]?.hlc;
      if (h !== undefined) this.#floorHlc.set(o, h);
      this.#floor.set(o, f);
      if (m !== undefined) {
        const drop = f + 1 - m.start;
        if (drop > 0) {
          m.list = m.list.slice(drop);
          m.start = f + 1;
        }
        if (m.list.every((c) => c === undefined)) this.#log.delete(o);
      }
    }
    return new Map(this.#floorHlc);
  }

  /** Whether every change of `origin` after `seq` that was applied here is still retained. */
  canServe(origin: string, seq: number): boolean {
    return seq >= (this.#floor.get(origin) ?? 0);
  }

  /** How many changes are retained. */
  size(): number {
    let n = 0;
    for (const m of this.#log.values()) for (const c of m.list) if (c !== undefined) n++;
    return n;
  }
}
