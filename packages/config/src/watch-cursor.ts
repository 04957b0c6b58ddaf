/**
 * The cursor of one key's watch: what to do with a version that arrives (from realtime or from a
 * query), so that a listener sees versions in `(version, hlc, id)` order, none twice, and no number
 * skipped. Pure: the store's watch feeds it and acts on its answers.
 */
import { compareVersions, type VersionMeta } from "./version.js";

/** The order fields of a version. */
export type VersionPosition = Pick<VersionMeta, "version" | "hlc" | "id">;

/** What to do with an arriving version. */
export type CursorDecision =
  /** Seen before (delivered or reported), or not asked for (at or below `fromVersion`): nothing. */
  | { readonly kind: "repeat" }
  /**
   * Deliver it. `sibling` is set when the cursor already delivered another version of the same
   * number (the losing side of a cut, now overtaken): a conflict to report as well.
   */
  | { readonly kind: "deliver"; readonly sibling?: VersionPosition }
  /** It sorts below the cursor (the losing side of a cut): report a conflict, never deliver it. */
  | { readonly kind: "conflict"; readonly winner: VersionPosition }
  /** A number is missing between the cursor and it: fill by a query before delivering past it. */
  | { readonly kind: "hole"; readonly after: number };

/**
 * How many version numbers below the cursor a query that fills a hole or resyncs reads again: the
 * losing side of a cut that realtime did not bring (an SSE drop) is found there and reported as a
 * conflict. A losing version further below than this, missed by realtime, is not reported by the
 * watch (it is never delivered either way).
 */
export const RESYNC_WINDOW = 16;

/** A watch cursor: the last delivered position and the ids already handled. */
export interface WatchCursor {
  /** The last delivered version, or undefined before the first. */
  readonly last: VersionPosition | undefined;
  /** The version number the watch started after (`fromVersion`). */
  readonly from: number;
  /**
   * Decides about an arriving version.
   * @param v - The version.
   * @param allowGap - True for versions read by a query (the truth: a missing number was compacted).
   * @returns The decision (see {@link CursorDecision}).
   */
  decide(v: VersionPosition, allowGap?: boolean): CursorDecision;
  /** Records that `v` was delivered (moves the cursor). */
  delivered(v: VersionPosition): void;
  /** Records that `v` was handled without a delivery (a conflict, an invalid version). */
  handled(v: VersionPosition): void;
  /**
   * The version number a query that fills a hole or resyncs starts after: {@link RESYNC_WINDOW}
   * below the cursor's, so the cursor's same-number siblings (and recent ones) are read too.
   */
  queryAfter(): number;
}

/**
 * Creates a watch cursor.
 * @param fromVersion - Versions numbered above it are delivered (0: every version).
 * @returns The cursor.
 * @example
 * ```ts
 * const c = createWatchCursor(3);
 * c.decide({ version: 5, hlc: "h", id: "x" }); // { kind: "hole", after: 3 }
 * ```
 */
export function createWatchCursor(fromVersion: number): WatchCursor {
  let last: VersionPosition | undefined;
  const seen = new Set<string>();
  const queryAfter = (): number =>
    last === undefined ? fromVersion : Math.max(fromVersion, last.version - RESYNC_WINDOW);
  return {
    get last() {
      return last;
    },
    from: fromVersion,
    decide(v, allowGap = false) {
      // Versions at or below fromVersion were not asked for (a late sibling of one included).
      if (seen.has(v.id) || v.version <= fromVersion) return { kind: "repeat" };
      if (last === undefined) {
        if (!allowGap && v.version > fromVersion + 1) return { kind: "hole", after: fromVersion };
        return { kind: "deliver" };
      }
      const order = compareVersions(v, last);
      if (order < 0) return { kind: "conflict", winner: last };
      if (!allowGap && v.version > last.version + 1) return { kind: "hole", after: queryAfter() };
      if (v.version === last.version) return { kind: "deliver", sibling: last };
      return { kind: "deliver" };
    },
    delivered(v) {
      seen.add(v.id);
      last = { version: v.version, hlc: v.hlc, id: v.id };
    },
    handled(v) {
      seen.add(v.id);
    },
    queryAfter,
  };
}
