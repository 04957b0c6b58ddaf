import type { Json } from "../model/change.js";

/** Index slots per entry kept free at most: the table grows past this load. */
const MAX_LOAD = 0.75;
const EMPTY = 0;
const TOMBSTONE = -1;

/**
 * Longest probe an insertion may take before the table gives up its own index for a `Map`. Honest
 * keys stay far below it at this load; keys made to collide (the hash is public, and keys can come
 * from peers) reach it after a few hundred, and `Map` hashes with V8's per-process random seed.
 */
const MAX_PROBE = 512;

/**
 * FNV-1a over the UTF-16 code units of a key, then the MurmurHash3 finalizer (so that the low
 * bits the index uses depend on every bit of the sum).
 * @internal Exported for tests.
 */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < key.length; k++) {
    h ^= key.charCodeAt(k);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The children of one node of the CRDT tree: a hash table from key to entry, where an entry is
 * either a child node or a *plain leaf* held inline (value and stamp), which is what most children
 * of a wide object are. Per child it costs about 36 bytes (four columns and the index) where a
 * `Map` entry plus a node object cost about 130.
 *
 * Entries live in columns (`key`, `val`, `h`, `i`) and are visited with
 * `for (let e = 0; e < kids.end; e++) if (kids.key[e] !== undefined) ...`. A removed entry keeps
 * its place (its key becomes undefined) until an insertion compacts the columns, so an entry
 * number is valid until the next `addLeaf`/`addNode` on the same table; undo records keep keys,
 * not entry numbers.
 *
 * @typeParam N - The node type (never a JSON value, so `val` tells nodes and leaves apart only
 * through `i`: a node entry has `i = -1`).
 */
export class Kids<N> {
  /** Per entry: its key, or undefined once removed. */
  key: (string | undefined)[] = [];
  /** Per entry: the child node, or the plain leaf's value. */
  val: (N | Json | undefined)[] = [];
  /** Per entry: the plain leaf's HLC (`""` for a node entry and for the initial state). */
  h: string[] = [];
  /** Per entry: the plain leaf's op index, or -1 for a node entry (grown by half when full). */
  i: Int32Array = new Int32Array(4);
  /** Live entries. */
  size = 0;
  /** Open addressing, linear probing: entry + 1, {@link EMPTY} or {@link TOMBSTONE}. */
  #index = new Int32Array(8);
  /** Index slots not empty (live or tombstone). */
  #used = 0;
  /** Key to entry, in place of `#index` once an insertion probed past {@link MAX_PROBE}. */
  #map: Map<string, number> | undefined;

  /** Whether the table gave up its own index for a `Map` (see {@link MAX_PROBE}). */
  get degraded(): boolean {
    return this.#map !== undefined;
  }

  /** Entries to loop over (removed ones included, their key undefined). */
  get end(): number {
    return this.key.length;
  }

  /** The entry of `key`, or -1. */
  find(key: string): number {
    if (this.#map !== undefined) return this.#map.get(key) ?? -1;
    const index = this.#index;
    const mask = index.length - 1;
    let p = hashKey(key) & mask;
    for (;;) {
      const x = index[p] as number;
      if (x === EMPTY) return -1;
      if (x !== TOMBSTONE && this.key[x - 1] === key) return x - 1;
      p = (p + 1) & mask;
    }
  }

  /** Whether entry `e` is a plain leaf. */
  isLeaf(e: number): boolean {
    return (this.i[e] as number) >= 0;
  }

  /** The child node at `key`, or undefined (absent, or a plain leaf). */
  nodeAt(key: string): N | undefined {
    const e = this.find(key);
    return e < 0 || this.isLeaf(e) ? undefined : (this.val[e] as N);
  }

  /** Adds a plain leaf under a key that is absent. */
  addLeaf(key: string, v: Json, h: string, i: number): number {
    const e = this.#append(key);
    this.val[e] = v;
    this.h[e] = h;
    this.i[e] = i;
    return e;
  }

  /** Adds a node under a key that is absent. */
  addNode(key: string, node: N): number {
    const e = this.#append(key);
    this.val[e] = node;
    this.h[e] = "";
    this.i[e] = -1;
    return e;
  }

  /** Makes entry `e` a plain leaf. */
  setLeaf(e: number, v: Json, h: string, i: number): void {
    this.val[e] = v;
    this.h[e] = h;
    this.i[e] = i;
  }

  /** Makes entry `e` a node. */
  setNode(e: number, node: N): void {
    this.val[e] = node;
    this.h[e] = "";
    this.i[e] = -1;
  }

  /** Removes entry `e` (it stays in the columns, keyless, until the next insertion compacts them). */
  remove(e: number): void {
    const key = this.key[e] as string;
    if (this.#map !== undefined) this.#map.delete(key);
    else {
      const index = this.#index;
      const mask = index.length - 1;
      let p = hashKey(key) & mask;
      while (index[p] !== e + 1) p = (p + 1) & mask;
      index[p] = TOMBSTONE;
    }
    this.key[e] = undefined;
    this.val[e] = undefined;
    this.h[e] = "";
    this.size--;
  }

  #append(key: string): number {
    if (this.#map !== undefined) {
      if (this.key.length - this.size > this.size + 8) this.#compact();
    } else if (this.#used + 1 > this.#index.length * MAX_LOAD) this.#rebuild(this.size + 1);
    const e = this.key.length;
    if (e === this.i.length) {
      const grown = new Int32Array(e + (e >> 1) + 4);
      grown.set(this.i);
      this.i = grown;
    }
    this.key.push(key);
    this.val.push(undefined);
    this.h.push("");
    this.size++;
    if (this.#map !== undefined) {
      this.#map.set(key, e);
      return e;
    }
    const index = this.#index;
    const mask = index.length - 1;
    let p = hashKey(key) & mask;
    let probes = 0;
    while (index[p] !== EMPTY) {
      p = (p + 1) & mask;
      if (++probes > MAX_PROBE) {
        this.#degrade(); // the new entry's key is in the columns already: the Map has it
        return e;
      }
    }
    index[p] = e + 1;
    this.#used++;
    return e;
  }

  /** Replaces the index by a `Map` of the live entries. */
  #degrade(): void {
    const map = new Map<string, number>();
    for (let e = 0; e < this.key.length; e++) {
      const k = this.key[e];
      if (k !== undefined) map.set(k, e);
    }
    this.#map = map;
    this.#index = new Int32Array(8);
    this.#used = 0;
  }

  /** Drops removed entries from the columns when they are many, and rebuilds the index for `want` keys. */
  #rebuild(want: number): void {
    if (this.key.length - this.size > this.size) this.#compact();
    let cap = 8;
    while (want > (cap * MAX_LOAD) / 1.5) cap *= 2;
    const index = new Int32Array(cap);
    const mask = cap - 1;
    for (let e = 0; e < this.key.length; e++) {
      const k = this.key[e];
      if (k === undefined) continue;
      let p = hashKey(k) & mask;
      while (index[p] !== EMPTY) p = (p + 1) & mask;
      index[p] = e + 1;
    }
    this.#index = index;
    this.#used = this.size;
  }

  /** Drops removed entries from the columns (entry numbers change; the `Map`, if any, follows). */
  #compact(): void {
    const key: (string | undefined)[] = [];
    const val: (N | Json | undefined)[] = [];
    const h: string[] = [];
    const i = new Int32Array(Math.max(4, this.size + (this.size >> 1)));
    for (let e = 0; e < this.key.length; e++) {
      if (this.key[e] === undefined) continue;
      i[key.length] = this.i[e] as number;
      key.push(this.key[e]);
      val.push(this.val[e]);
      h.push(this.h[e] as string);
    }
    this.key = key;
    this.val = val;
    this.h = h;
    this.i = i;
    if (this.#map !== undefined) {
      this.#map.clear();
      for (let e = 0; e < this.key.length; e++) this.#map.set(this.key[e] as string, e);
    }
  }
}
