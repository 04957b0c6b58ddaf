import type { Json, Path } from "./change.js";
import { isPlainObject } from "./json.js";

/** Why a path of the CRDT state is hidden from the typed state (see docs/core.md, "Schema upgrades"). */
export const HiddenReason = {
  /** A key the local schema does not know (a field of a newer schema). Hidden for the doc's life. */
  Unknown: "unknown",
  /** A value the local schema refuses (absent from the typed state, or shown as its `fallback`). */
  Refused: "refused",
} as const;
/** The union of hidden reasons. */
export type HiddenReason = (typeof HiddenReason)[keyof typeof HiddenReason];

/** A path of the CRDT state the typed state does not show as it is. */
export interface HiddenPath {
  readonly path: Path;
  readonly reason: HiddenReason;
  /** What the typed state shows instead (the `initial` value there), or undefined: absent. */
  readonly fallback: Json | undefined;
}

interface Trie {
  hidden: HiddenPath | undefined;
  kids: Map<string, Trie> | undefined;
}

/**
 * The hidden paths of a document, in a trie by segment: finding the one above a path or those
 * below it costs the path's depth (plus what is found), however many are hidden.
 */
export class HiddenPaths {
  #root: Trie = { hidden: undefined, kids: undefined };
  #size = 0;

  /** How many paths are hidden. */
  get size(): number {
    return this.#size;
  }

  /** Hides a path (replacing what hid that path before). */
  add(h: HiddenPath): void {
    let t = this.#root;
    for (const seg of h.path) {
      if (t.kids === undefined) t.kids = new Map();
      let k = t.kids.get(seg);
      if (k === undefined) {
        k = { hidden: undefined, kids: undefined };
        t.kids.set(seg, k);
      }
      t = k;
    }
    if (t.hidden === undefined) this.#size++;
    t.hidden = h;
  }

  /** Shows a path again. */
  remove(path: Path): void {
    const t = this.#node(path);
    if (t?.hidden === undefined) return;
    t.hidden = undefined;
    this.#size--;
  }

  /** What hides exactly `path`, if anything. */
  get(path: Path): HiddenPath | undefined {
    return this.#node(path)?.hidden;
  }

  /** The shallowest hidden path that is `path` or one of its ancestors. */
  covering(path: Path): HiddenPath | undefined {
    if (this.#size === 0) return undefined;
    let t: Trie | undefined = this.#root;
    for (const seg of path) {
      t = t.kids?.get(seg);
      if (t === undefined) return undefined;
      if (t.hidden !== undefined) return t.hidden;
    }
    return undefined;
  }

  /**
   * The hidden paths strictly below `path`.
   * @param topmost - Leave out those below another one found.
   */
  below(path: Path, topmost = false): HiddenPath[] {
    const out: HiddenPath[] = [];
    if (this.#size === 0) return out;
    const walk = (t: Trie): void => {
      if (t.kids === undefined) return;
      for (const k of t.kids.values()) {
        if (k.hidden !== undefined) {
          out.push(k.hidden);
          if (topmost) continue;
        }
        walk(k);
      }
    };
    const t = this.#node(path);
    if (t !== undefined) walk(t);
    return out;
  }

  /** Every hidden path. */
  all(): HiddenPath[] {
    return this.below([]);
  }

  /** Removes every hidden path. */
  clear(): void {
    this.#root = { hidden: undefined, kids: undefined };
    this.#size = 0;
  }

  /**
   * The typed value at `path` from the CRDT value `v` there: a covering hidden path gives its
   * fallback (or absence), and the hidden paths below are taken out of (or replaced in) a copy.
   */
  project(path: Path, v: Json | undefined): Json | undefined {
    if (this.#size === 0) return v;
    const above = this.covering(path);
    if (above !== undefined) return getIn(above.fallback, path.slice(above.path.length));
    let out = v;
    for (const h of this.below(path, true)) out = replaceIn(out, h.path.slice(path.length), h.fallback);
    return out;
  }

  #node(path: Path): Trie | undefined {
    let t: Trie | undefined = this.#root;
    for (const seg of path) {
      t = t.kids?.get(seg);
      if (t === undefined) return undefined;
    }
    return t;
  }
}

function getIn(v: Json | undefined, rel: Path): Json | undefined {
  let cur = v;
  for (const seg of rel) {
    if (!isPlainObject(cur) || !Object.hasOwn(cur, seg)) return undefined;
    cur = cur[seg];
  }
  return cur;
}

/** A frozen copy of `v` with the value at `rel` replaced by `value` (removed when undefined). */
function replaceIn(v: Json | undefined, rel: Path, value: Json | undefined): Json | undefined {
  if (rel.length === 0) return value;
  if (!isPlainObject(v)) return v;
  const [seg, ...rest] = rel as [string, ...string[]];
  const had = Object.hasOwn(v, seg);
  if (!had && value === undefined) return v;
  const next = replaceIn(had ? v[seg] : undefined, rest, value);
  if (had && Object.is(next, v[seg])) return v;
  const copy: Record<string, Json> = { ...v };
  if (next === undefined) delete copy[seg];
  else copy[seg] = next;
  return Object.freeze(copy);
}
