import type { Json, Path } from "./change.js";
import { isPlainObject } from "./json.js";

/** The most path segments an op may have. */
export const MAX_PATH_DEPTH = 64;

/**
 * Why a path is unusable, or undefined when it is fine: non-empty, at most {@link MAX_PATH_DEPTH}
 * string segments, none of them `"__proto__"`.
 * @param path - A candidate path.
 * @returns A message, or undefined.
 */
export function checkPath(path: unknown): string | undefined {
  if (!Array.isArray(path)) return "path is not an array";
  if (path.length === 0) return "path is empty (the root cannot be written)";
  if (path.length > MAX_PATH_DEPTH) return `path is deeper than ${MAX_PATH_DEPTH}`;
  for (const seg of path) {
    if (typeof seg !== "string") return `path segment ${JSON.stringify(seg)} is not a string`;
    if (seg === "__proto__") return 'path segment "__proto__" is not allowed';
  }
  return undefined;
}

/**
 * Reads the value at `path` inside a JSON value.
 * @param root - A JSON value (usually a document state).
 * @param path - Object keys from the root.
 * @returns The value, or undefined when a segment is missing or crosses a non-object.
 */
export function getAtPath(root: unknown, path: Path): Json | undefined {
  let cur: unknown = root;
  for (const seg of path) {
    if (!isPlainObject(cur) || !Object.hasOwn(cur, seg)) return undefined;
    cur = cur[seg];
  }
  return cur as Json | undefined;
}

/**
 * Whether `prefix` is a prefix of `path` (equal paths included).
 * @param prefix - The candidate prefix.
 * @param path - The path.
 * @returns True when every segment of `prefix` starts `path`.
 */
export function isPathPrefix(prefix: Path, path: Path): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== path[i]) return false;
  return true;
}

/**
 * Keeps only the paths that no other path of the list is a prefix of, without duplicates.
 * @param paths - Paths in any order.
 * @returns The topmost paths, shortest first.
 */
export function topmostPaths(paths: readonly Path[]): Path[] {
  if (paths.length <= 1) return paths.slice();
  let flat = true;
  for (const p of paths) {
    if (p.length === 0) return [p]; // the root covers everything
    if (p.length !== 1) flat = false;
  }
  if (flat) {
    const seen = new Set<string>();
    const out: Path[] = [];
    for (const p of paths) {
      const k = p[0] as string;
      if (!seen.has(k)) {
        seen.add(k);
        out.push(p);
      }
    }
    return out;
  }
  const sorted = paths.slice().sort((a, b) => a.length - b.length);
  // A trie of kept paths: `true` marks the end of a kept path.
  const trie = new Map<string, unknown>();
  const out: Path[] = [];
  outer: for (const p of sorted) {
    let level = trie;
    for (let i = 0; i < p.length; i++) {
      const seg = p[i] as string;
      let next = level.get(seg);
      if (next === true) continue outer;
      if (i === p.length - 1) {
        if (next !== undefined) continue outer; // same path already kept (it has no children yet)
        level.set(seg, true);
        out.push(p);
        continue outer;
      }
      if (next === undefined) {
        next = new Map<string, unknown>();
        level.set(seg, next);
      }
      level = next as Map<string, unknown>;
    }
  }
  return out;
}
