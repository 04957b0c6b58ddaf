import { AddWinsSetState } from "./add-wins-set.js";
import type { Json, Op, Path } from "./change.js";
import { CounterState } from "./counter.js";
import { canonicalJson, isPlainObject } from "./json.js";
import { NodeKind } from "./schema.js";
import { isNewer } from "./stamp.js";
import type { Undo } from "./undo.js";

const EMPTY_OBJECT: { readonly [key: string]: Json } = Object.freeze({});
const EMPTY_ARRAY: readonly Json[] = Object.freeze([]);

/**
 * One path of the CRDT tree. Every record it keeps is visible or still needed:
 * - the *shadow*: the newest leaf set or delete at this path (`sh`, `si`, `sd`, `v`). Writes below
 *   the path that are not newer than it are invisible for ever, so they are dropped;
 * - the *marker* (`mh`, `mi`): the newest "this is an object (or a set)" write, which makes an empty
 *   object exist without hiding anything below it;
 * - `kids`: the paths below;
 * - `x`: the payload of a counter or set node.
 */
export class DocNode {
  sh: string | undefined = undefined;
  si = 0;
  sd = false;
  v: Json | undefined = undefined;
  mh: string | undefined = undefined;
  mi = 0;
  kids: Map<string, DocNode> | undefined = undefined;
  x: CounterState | AddWinsSetState | undefined = undefined;
}

/** Whether a node's marker is visible (newer than its own shadow). */
export function hasVisibleMarker(n: DocNode): boolean {
  return n.mh !== undefined && (n.sh === undefined || isNewer(n.mh, n.mi, n.sh, n.si));
}

function isEmptyNode(n: DocNode): boolean {
  return (
    n.sh === undefined &&
    n.mh === undefined &&
    (n.kids === undefined || n.kids.size === 0) &&
    (n.x === undefined || n.x.isEmpty())
  );
}

/** How {@link DocState.apply} went: effective, ignored (shadowed or already newer), or an error message. */
export type ApplyOutcome = true | false | string;

/**
 * The CRDT state of a document: a tree of {@link DocNode}s plus, per origin, the HLC of the last
 * change applied in order. Edits are in place and recorded in an undo log so that a change can be
 * rolled back whole. Values are materialized from it on demand.
 */
/**
 * Whether a node holds a set leaf and nothing else (no delete mark, no children, no counter or set
 * state): the codecs write such a node as a plain value in its parent's columns.
 */
export function isLeafOnly(n: DocNode): boolean {
  return (
    n.sh !== undefined &&
    !n.sd &&
    n.mh === undefined &&
    (n.kids === undefined || n.kids.size === 0) &&
    n.x === undefined
  );
}

export class DocState {
  readonly root = new DocNode();
  /** Per origin, the HLC of its highest contiguous applied change. */
  readonly lastHlc = new Map<string, string>();

  /** Whether the change that made `tag` (an HLC) was applied here already. */
  readonly seen = (tag: string): boolean => {
    const node = tag.slice(18);
    const last = this.lastHlc.get(node);
    return last !== undefined && tag <= last;
  };

  /** The node at `path`, or undefined. */
  nodeAt(path: Path): DocNode | undefined {
    let n: DocNode | undefined = this.root;
    for (const seg of path) {
      n = n.kids?.get(seg);
      if (n === undefined) return undefined;
    }
    return n;
  }

  /**
   * Applies one op stamped `(h, i)` by `origin`.
   * @param kind - The node kind the schema declares at the op's path, when known.
   * @param touched - Receives the op's path when the op changed something.
   * @returns True (applied), false (no effect: shadowed or superseded) or an error message.
   */
  apply(
    op: Op,
    origin: string,
    h: string,
    i: number,
    kind: NodeKind | undefined,
    undo: Undo | undefined,
    touched: Path[],
  ): ApplyOutcome {
    const path = op.path;
    // Walk the existing nodes, computing the floor (newest shadow of a proper ancestor).
    let fh: string | undefined;
    let fi = 0;
    let n: DocNode = this.root;
    let depth = 0;
    for (; depth < path.length; depth++) {
      if (n.x !== undefined)
        return `path ${JSON.stringify(path)} goes below a ${n.x instanceof CounterState ? "counter" : "set"}`;
      if (n.sh !== undefined && (fh === undefined || isNewer(n.sh, n.si, fh, fi))) {
        fh = n.sh;
        fi = n.si;
      }
      const next = n.kids?.get(path[depth] as string);
      if (next === undefined) break;
      n = next;
    }
    if (fh !== undefined && !isNewer(h, i, fh, fi)) return false;
    // Create the missing nodes.
    for (; depth < path.length; depth++) {
      const seg = path[depth] as string;
      const child = new DocNode();
      let kids = n.kids;
      if (kids === undefined) {
        kids = new Map();
        n.kids = kids;
        const parent = n;
        undo?.push(() => {
          parent.kids = undefined;
        });
      } else {
        const k = kids;
        undo?.push(() => k.delete(seg));
      }
      kids.set(seg, child);
      n = child;
    }
    const target = n;
    const res = this.#applyAt(target, op, origin, h, i, kind, undo);
    if (res === true) touched.push(path);
    return res;
  }

  #applyAt(
    n: DocNode,
    op: Op,
    origin: string,
    h: string,
    i: number,
    kind: NodeKind | undefined,
    undo: Undo | undefined,
  ): ApplyOutcome {
    const newerThanShadow = n.sh === undefined || isNewer(h, i, n.sh, n.si);
    switch (op.kind) {
      case "set": {
        const value = op.value;
        const emptyArray = Array.isArray(value) && value.length === 0;
        const isSetNode = n.x instanceof AddWinsSetState || kind === NodeKind.Set;
        if (n.x instanceof CounterState || kind === NodeKind.Counter) return "set of a counter (use inc)";
        if (isSetNode && !emptyArray) return "set of an add-wins set other than [] (use add/rem)";
        if (isPlainObject(value) || isSetNode) {
          if (isPlainObject(value) && Object.keys(value).length > 0)
            return "set of a non-empty object (split it into leaves)";
          // A marker: the path is an object (or a set), hiding nothing below it.
          if (!newerThanShadow) return false;
          if (n.mh !== undefined && !isNewer(h, i, n.mh, n.mi)) return false;
          if (isSetNode && n.x === undefined) this.#setX(n, new AddWinsSetState(), undo);
          const { mh, mi } = n;
          n.mh = h;
          n.mi = i;
          undo?.push(() => {
            n.mh = mh;
            n.mi = mi;
          });
          return true;
        }
        if (n.x !== undefined) return "set of a set";
        if (!newerThanShadow) return false;
        this.#shadow(n, h, i, false, value, undo);
        return true;
      }
      case "del": {
        if (!newerThanShadow) return false;
        this.#shadow(n, h, i, true, undefined, undo);
        return true;
      }
      case "inc": {
        if (kind !== undefined && kind !== NodeKind.Counter) return "inc of a path that is not a counter";
        if (n.x instanceof AddWinsSetState) return "inc of a set";
        // Older than a delete of the counter itself: dropped.
        if (!newerThanShadow) return false;
        let c = n.x;
        if (c === undefined) {
          c = new CounterState();
          this.#setX(n, c, undo);
        }
        c.inc(origin, h, i, op.value, undo);
        return true;
      }
      case "add":
      case "rem": {
        if (kind !== undefined && kind !== NodeKind.Set)
          return `${op.kind} of a path that is not an add-wins set`;
        if (n.x instanceof CounterState) return `${op.kind} of a counter`;
        if (!newerThanShadow) return false;
        let s = n.x;
        if (s === undefined) {
          s = new AddWinsSetState();
          this.#setX(n, s, undo);
        }
        const key = canonicalJson(op.value);
        if (op.kind === "add") return s.add(key, op.value, h, i, undo) || false;
        return s.rem(key, op.value, op.tags, h, i, this.seen, undo) || false;
      }
      default:
        return `unknown op kind ${JSON.stringify((op as { kind: unknown }).kind)}`;
    }
  }

  #setX(n: DocNode, x: CounterState | AddWinsSetState, undo: Undo | undefined): void {
    n.x = x;
    undo?.push(() => {
      n.x = undefined;
    });
  }

  /** Sets the shadow of `n` and drops everything at or below `n` that it hides. */
  #shadow(
    n: DocNode,
    h: string,
    i: number,
    del: boolean,
    value: Json | undefined,
    undo: Undo | undefined,
  ): void {
    this.#setShadow(n, h, i, del, value, undo);
    this.#pruneAt(n, h, i, undo);
  }

  /** Writes the shadow fields of `n`, recording the previous ones in `undo`. */
  #setShadow(
    n: DocNode,
    h: string | undefined,
    i: number,
    del: boolean,
    value: Json | undefined,
    undo: Undo | undefined,
  ): void {
    const { sh, si, sd, v } = n;
    n.sh = h;
    n.si = i;
    n.sd = del;
    n.v = value;
    undo?.push(() => {
      n.sh = sh;
      n.si = si;
      n.sd = sd;
      n.v = v;
    });
  }

  /** Drops the marker, counter/set entries and child records of `n` not newer than `(h, i)`. */
  #pruneAt(n: DocNode, h: string, i: number, undo: Undo | undefined): void {
    if (n.mh !== undefined && !isNewer(n.mh, n.mi, h, i)) {
      const { mh, mi } = n;
      n.mh = undefined;
      undo?.push(() => {
        n.mh = mh;
        n.mi = mi;
      });
    }
    n.x?.pruneOlder(h, i, undo);
    if (n.kids !== undefined) this.#pruneKids(n, h, i, undo);
  }

  /** Drops the records below `n` that are not newer than `(h, i)`, and the nodes left empty. */
  #pruneKids(n: DocNode, h: string, i: number, undo: Undo | undefined): void {
    const kids = n.kids as Map<string, DocNode>;
    for (const [k, c] of kids) {
      if (c.sh !== undefined && !isNewer(c.sh, c.si, h, i))
        this.#setShadow(c, undefined, c.si, false, undefined, undo);
      this.#pruneAt(c, h, i, undo);
      if (isEmptyNode(c)) {
        kids.delete(k);
        undo?.push(() => kids.set(k, c));
      }
    }
  }

  /**
   * The materialized value of a node (deeply frozen), or undefined when it is absent.
   * @param n - A node of this tree.
   */
  value(n: DocNode): Json | undefined {
    const x = n.x;
    if (x !== undefined) {
      if (x instanceof CounterState) return x.value();
      const els = x.values();
      if (els.length > 0) return els;
      return hasVisibleMarker(n) ? EMPTY_ARRAY : undefined;
    }
    if (n.kids !== undefined && n.kids.size > 0) {
      let obj: Record<string, Json> | undefined;
      for (const [k, c] of n.kids) {
        const v = this.value(c);
        if (v === undefined) continue;
        if (obj === undefined) obj = {};
        obj[k] = v;
      }
      if (obj !== undefined) return Object.freeze(obj);
    }
    if (hasVisibleMarker(n)) return EMPTY_OBJECT;
    if (n.sh !== undefined && !n.sd) return n.v;
    return undefined;
  }

  /** The materialized value at a path (the root is always an object). */
  valueAt(path: Path): Json | undefined {
    if (path.length === 0) return this.value(this.root) ?? EMPTY_OBJECT;
    const n = this.nodeAt(path);
    return n === undefined ? undefined : this.value(n);
  }

  /**
   * The path whose value must be recomputed after a write at `path`: the path itself, or the
   * nearest ancestor whose existence as an object does not depend on its children.
   */
  recomputeRoot(path: Path): Path {
    const n = path.length;
    if (n <= 1) return path;
    if (n === 2) {
      const parent = this.root.kids?.get(path[0] as string);
      return parent !== undefined && parent.x === undefined && hasVisibleMarker(parent)
        ? path
        : path.slice(0, 1);
    }
    // The nodes of the proper ancestors (below the root), found in one walk.
    const chain: (DocNode | undefined)[] = new Array(n - 1);
    let cur: DocNode | undefined = this.root;
    for (let d = 0; d < n - 1; d++) {
      cur = cur?.kids?.get(path[d] as string);
      chain[d] = cur;
    }
    let len = n;
    while (len > 1) {
      const parent = chain[len - 2];
      if (parent !== undefined && parent.x === undefined && hasVisibleMarker(parent)) break;
      len--;
    }
    return len === n ? path : path.slice(0, len);
  }

  /**
   * Compaction: drops deletes and hidden leaves whose stamps are `covered` (causally stable),
   * remove floors of sets, folds counter increments, and removes nodes left empty.
   */
  gc(covered: (h: string) => boolean): void {
    const walk = (n: DocNode): void => {
      if (n.sh !== undefined && covered(n.sh) && (n.sd || hasVisibleMarker(n))) {
        n.sh = undefined;
        n.sd = false;
        n.v = undefined;
      }
      if (n.x instanceof CounterState) n.x.fold(covered);
      else if (n.x !== undefined) n.x.gc(covered);
      if (n.kids !== undefined) {
        for (const [k, c] of n.kids) {
          walk(c);
          if (isEmptyNode(c)) n.kids.delete(k);
        }
        if (n.kids.size === 0) n.kids = undefined;
      }
    };
    walk(this.root);
  }
}
