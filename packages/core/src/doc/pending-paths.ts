import type { Path } from "../model/change.js";

const EMPTY_PATH: Path = Object.freeze([]);

interface TrieNode {
  /** A pending path ends here (everything below is pending too). */
  end: boolean;
  kids: Map<string, TrieNode> | undefined;
}

/**
 * The paths of a document written since its materialized view was last built: what the next full
 * read rebuilds, and what a path read must not take from that view. Past `max` paths it holds
 * "everything" instead (the next full read rebuilds the whole view; a writer that never reads
 * retains no paths).
 *
 * {@link overlaps} answers in the depth of the path asked about: the paths are indexed in a trie,
 * built on the first question after they were added (a writer that never reads by path pays
 * nothing for it).
 */
export class PendingPaths {
  readonly #max: number;
  #paths: Path[] = [];
  #all = false;
  #trie: TrieNode | undefined;
  /** How many of `#paths` are in `#trie`. */
  #indexed = 0;

  /** @param max - Most paths held before the set becomes "everything". */
  constructor(max: number) {
    this.#max = max;
  }

  /** Whether no path is pending. */
  get isEmpty(): boolean {
    return !this.#all && this.#paths.length === 0;
  }

  /** Whether everything is pending (the whole view must be rebuilt). */
  get all(): boolean {
    return this.#all;
  }

  /** Adds a written path (the empty path: everything). */
  add(path: Path): void {
    if (this.#all) return;
    if (path.length === 0 || this.#paths.length >= this.#max) {
      this.markAll();
      return;
    }
    this.#paths.push(path);
  }

  /** Makes everything pending. */
  markAll(): void {
    this.#all = true;
    this.#paths = [];
    this.#trie = undefined;
    this.#indexed = 0;
  }

  /** Empties the set (after the view was rebuilt). */
  clear(): void {
    this.#all = false;
    this.#paths = [];
    this.#trie = undefined;
    this.#indexed = 0;
  }

  /**
   * The pending paths, in the order they were added.
   * @returns `[[]]` when everything is pending.
   */
  paths(): Path[] {
    return this.#all ? [EMPTY_PATH] : this.#paths;
  }

  /**
   * Whether a pending path is `path`, above it or below it: whether the view's value at `path` may
   * be stale.
   * @param path - Object keys from the root.
   * @returns True when the value at `path` may have changed since the view was built.
   */
  overlaps(path: Path): boolean {
    if (this.#all) return true;
    if (this.#paths.length === 0) return false;
    const root = this.#index();
    let node = root;
    for (const seg of path) {
      if (node.end) return true;
      const next = node.kids?.get(seg);
      if (next === undefined) return false;
      node = next;
    }
    return true;
  }

  /** The trie of every pending path (indexing those added since the last call). */
  #index(): TrieNode {
    if (this.#trie === undefined) this.#trie = { end: false, kids: undefined };
    const root = this.#trie;
    for (; this.#indexed < this.#paths.length; this.#indexed++) {
      let node = root;
      for (const seg of this.#paths[this.#indexed] as Path) {
        if (node.end) break;
        if (node.kids === undefined) node.kids = new Map();
        let next = node.kids.get(seg);
        if (next === undefined) {
          next = { end: false, kids: undefined };
          node.kids.set(seg, next);
        }
        node = next;
      }
      node.end = true;
    }
    return root;
  }
}
