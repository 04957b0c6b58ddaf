import type { ReplicaId } from "./ids.js";

/**
 * For each origin, the highest change seq applied with no gap below it. A missing origin means 0.
 * Plain frozen objects: they are JSON on the wire as is.
 */
export type VersionVector = Readonly<Record<string, number>>;

/** The empty version vector. */
export const EMPTY_VERSION_VECTOR: VersionVector = Object.freeze({});

/**
 * Reads one origin's entry.
 * @param vv - A version vector.
 * @param origin - The origin.
 * @returns The highest contiguous seq seen from `origin`, or 0.
 */
export function getVersion(vv: VersionVector, origin: ReplicaId | string): number {
  return Object.hasOwn(vv, origin) ? (vv[origin] ?? 0) : 0;
}

/**
 * The pointwise maximum of two version vectors (what is known after both).
 * @returns A new frozen vector; commutative, associative and idempotent.
 */
export function mergeVersionVectors(a: VersionVector, b: VersionVector): VersionVector {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) if (v > (out[k] ?? 0)) out[k] = v;
  return Object.freeze(out);
}

/**
 * The pointwise minimum over several vectors (what all of them have): the causal-stability frontier
 * when given the vectors acknowledged by every live node. An origin missing from any vector is 0.
 * @param vvs - At least one vector.
 * @returns A new frozen vector; empty when `vvs` is empty.
 */
export function intersectVersionVectors(vvs: readonly VersionVector[]): VersionVector {
  const [first, ...rest] = vvs;
  if (first === undefined) return EMPTY_VERSION_VECTOR;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(first)) {
    let m = v;
    for (const o of rest) m = Math.min(m, getVersion(o, k));
    if (m > 0) out[k] = m;
  }
  return Object.freeze(out);
}

/**
 * Whether `a` has seen everything `b` has (a ≥ b pointwise).
 */
export function dominatesVersionVector(a: VersionVector, b: VersionVector): boolean {
  for (const [k, v] of Object.entries(b)) if (getVersion(a, k) < v) return false;
  return true;
}
