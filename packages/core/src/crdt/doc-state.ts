import type { Json, Op, Path } from "../model/change.js";
import { isPlainObject } from "../model/json.js";
import { NodeKind } from "../model/schema.js";
import { AddWinsSetState, elementKey } from "./add-wins-set.js";
import { CounterState } from "./counter.js";
import { Kids } from "./kids.js";
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
 * - `kids`: the paths below. A kid that is a *plain leaf* (a set value and nothing else, the bulk of
 *   most documents) is not a node but an entry of {@link Kids} holding its value and stamp;
 * - `x`: the payload of a counter or set node.
 */
export class DocNode {
  sh: string | undefined = undefined;
  si = 0;
  sd = false;
  v: Json | undefined = undefined;
  mh: string | undefined = undefined;
  mi = 0;
  kids: Kids<DocNode> | undefined = undefined;
  x: CounterState | AddWinsSetState | undefined = undefined;
}

/** The kid of `n` at `key` when it is a node (a plain leaf is an entry of `Kids`, not a node). */
export function kidNode(n: DocNode, key: string): DocNode | undefined {
  return n.kids?.nodeAt(key);
}

/** Whether an op writes a plain leaf: a set of a value that is not an object, where no counter or set is declared. */
function isPlainSet(op: Op, kind: NodeKind | undefined): op is Extract<Op, { kind: "set" }> {
  return op.kind === "set" && kind !== NodeKind.Counter && kind !== NodeKind.Set && !isPlainObject(op.value);
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

  /** The node at `path`, or undefined (also when the path holds a plain leaf, which is not a node). */
  nodeAt(path: Path): DocNode | undefined {
    let n: DocNode | undefined = this.root;
    for (const seg of path) {
      n = kidNode(n, seg);
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
    let leaf = -1;
    for (; depth < path.length; depth++) {
      if (n.x !== undefined)
        return `path ${JSON.stringify(path)} goes below a ${n.x instanceof CounterState ? "counter" : "set"}`;
      if (n.sh !== undefined && (fh === undefined || isNewer(n.sh, n.si, fh, fi))) {
        fh = n.sh;
        fi = n.si;
      }
      const kids = n.kids;
      if (kids === undefined) break;
      const seg = path[depth] as string;
      const e = kids.find(seg);
      if (e < 0) break;
      if (kids.isLeaf(e)) {
        if (depth === path.length - 1) {
          leaf = e;
          break;
        }
        // Below a plain leaf: its stamp is a shadow on the way; a write that passes it needs a node.
        const lh = kids.h[e] as string;
        const li = kids.i[e] as number;
        if (fh === undefined || isNewer(lh, li, fh, fi)) {
          fh = lh;
          fi = li;
        }
        if (!isNewer(h, i, fh, fi)) return false;
        n = this.#promote(kids, e, undo);
        continue;
      }
      n = kids.val[e] as DocNode;
    }
    if (fh !== undefined && !isNewer(h, i, fh, fi)) return false;
    if (leaf >= 0) {
      const kids = n.kids as Kids<DocNode>;
      if (isPlainSet(op, kind)) {
        // The common write: last writer wins on the leaf, in place.
        const lh = kids.h[leaf] as string;
        const li = kids.i[leaf] as number;
        if (!isNewer(h, i, lh, li)) return false;
        const lv = kids.val[leaf] as Json;
        kids.setLeaf(leaf, op.value, h, i);
        const key = path[depth] as string;
        undo?.push(() => kids.setLeaf(kids.find(key), lv, lh, li));
        touched.push(path);
        return true;
      }
      n = this.#promote(kids, leaf, undo);
      depth = path.length;
    }
    // Create the missing nodes (a plain leaf inline).
    for (; depth < path.length; depth++) {
      const seg = path[depth] as string;
      let kids = n.kids;
      if (kids === undefined) {
        kids = new Kids<DocNode>();
        n.kids = kids;
        const parent = n;
        undo?.push(() => {
          parent.kids = undefined;
        });
      }
      const k = kids;
      if (depth === path.length - 1 && isPlainSet(op, kind)) {
        k.addLeaf(seg, op.value, h, i);
        undo?.push(() => k.remove(k.find(seg)));
        touched.push(path);
        return true;
      }
      const child = new DocNode();
      k.addNode(seg, child);
      undo?.push(() => k.remove(k.find(seg)));
      n = child;
    }
    const target = n;
    const res = this.#applyAt(target, op, origin, h, i, kind, undo);
    if (res === true) touched.push(path);
    return res;
  }

  /**
   * The counter an `inc` at `path` stamped `(h, i)` would increment, when that op would reach an
   * existing counter node and be visible (newer than every shadow at or above it), else undefined:
   * what {@link apply} does for such an op is then `counter.inc(origin, h, i, amount, undo)`.
   */
  counterAt(path: Path, h: string, i: number): CounterState | undefined {
    let fh: string | undefined;
    let fi = 0;
    let n: DocNode = this.root;
    for (let depth = 0; depth < path.length; depth++) {
      if (n.x !== undefined) return undefined;
      if (n.sh !== undefined && (fh === undefined || isNewer(n.sh, n.si, fh, fi))) {
        fh = n.sh;
        fi = n.si;
      }
      const kids = n.kids;
      if (kids === undefined) return undefined;
      const e = kids.find(path[depth] as string);
      if (e < 0 || kids.isLeaf(e)) return undefined;
      n = kids.val[e] as DocNode;
    }
    if (fh !== undefined && !isNewer(h, i, fh, fi)) return undefined;
    if (n.sh !== undefined && !isNewer(h, i, n.sh, n.si)) return undefined;
    return n.x instanceof CounterState ? n.x : undefined;
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
        const key = elementKey(op.value);
        if (op.kind === "add") return s.add(key, op.value, h, i, undo) || false;
        return s.rem(key, op.value, op.tags, h, i, this.seen, undo) || false;
      }
      default:
        return `unknown op kind ${JSON.stringify((op as { kind: unknown }).kind)}`;
    }
  }

  /** Turns the plain leaf in entry `e` of `kids` into a node (before a write a leaf cannot hold). */
  #promote(kids: Kids<DocNode>, e: number, undo: Undo | undefined): DocNode {
    const node = new DocNode();
    const v = kids.val[e] as Json;
    const h = kids.h[e] as string;
    const i = kids.i[e] as number;
    node.sh = h;
    node.si = i;
    node.v = v;
    kids.setNode(e, node);
    const key = kids.key[e] as string;
    undo?.push(() => kids.setLeaf(kids.find(key), v, h, i));
    return node;
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
    const kids = n.kids as Kids<DocNode>;
    for (let e = 0; e < kids.end; e++) {
      const key = kids.key[e];
      if (key === undefined) continue;
      if (kids.isLeaf(e)) {
        const lv = kids.val[e] as Json;
        const lh = kids.h[e] as string;
        const li = kids.i[e] as number;
        if (isNewer(lh, li, h, i)) continue;
        kids.remove(e);
        undo?.push(() => kids.addLeaf(key, lv, lh, li));
        continue;
      }
      const c = kids.val[e] as DocNode;
      if (c.sh !== undefined && !isNewer(c.sh, c.si, h, i))
        this.#setShadow(c, undefined, c.si, false, undefined, undo);
      this.#pruneAt(c, h, i, undo);
      if (isEmptyNode(c)) {
        kids.remove(e);
        undo?.push(() => kids.addNode(key, c));
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
      const kids = n.kids;
      for (let e = 0; e < kids.end; e++) {
        const k = kids.key[e];
        if (k === undefined) continue;
        const v = kids.isLeaf(e) ? (kids.val[e] as Json) : this.value(kids.val[e] as DocNode);
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
    let parent: DocNode | undefined = this.root;
    const last = path.length - 1;
    for (let d = 0; d < last && parent !== undefined; d++) parent = kidNode(parent, path[d] as string);
    const kids = parent?.kids;
    const e = kids === undefined ? -1 : kids.find(path[last] as string);
    if (e < 0) return undefined;
    const k = kids as Kids<DocNode>;
    return k.isLeaf(e) ? (k.val[e] as Json) : this.value(k.val[e] as DocNode);
  }

  /**
   * The path whose value must be recomputed after a write at `path`: the path itself, or the
   * nearest ancestor whose existence as an object does not depend on its children.
   */
  recomputeRoot(path: Path): Path {
    const n = path.length;
    if (n <= 1) return path;
    if (n === 2) {
      const parent = kidNode(this.root, path[0] as string);
      return parent !== undefined && parent.x === undefined && hasVisibleMarker(parent)
        ? path
        : path.slice(0, 1);
    }
    // The nodes of the proper ancestors (below the root), found in one walk.
    const chain: (DocNode | undefined)[] = new Array(n - 1);
    let cur: DocNode | undefined = this.root;
    for (let d = 0; d < n - 1; d++) {
      cur = cur === undefined ? undefined : kidNode(cur, path[d] as string);
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
      const kids = n.kids;
      if (kids !== undefined) {
        for (let e = 0; e < kids.end; e++) {
          if (kids.key[e] === undefined || kids.isLeaf(e)) continue;
          const c = kids.val[e] as DocNode;
          walk(c);
          if (isEmptyNode(c)) kids.remove(e);
          // A node left holding just a leaf goes back inline.
          else if (isLeafOnly(c)) kids.setLeaf(e, c.v as Json, c.sh as string, c.si);
        }
        if (kids.size === 0) n.kids = undefined;
      }
    };
    walk(this.root);
  }
}
