/**
 * A seeded pseudo-random source (mulberry32). Core never calls `Math.random`: everything that needs
 * randomness (backoff jitter, the simulated network of the memory hub) takes one of these, so a
 * seed reproduces a run exactly.
 */
export interface Random {
  /** The next float in [0, 1). */
  next(): number;
  /** The next integer in [0, `maxExclusive`); 0 when `maxExclusive` <= 1. */
  int(maxExclusive: number): number;
  /** True with probability `p` (0 never, 1 always). */
  chance(p: number): boolean;
}

/**
 * Creates a deterministic {@link Random} from a 32-bit seed (mulberry32: fast, small, good enough for
 * jitter and fault injection; not for cryptography).
 * @param seed - Any number; only its low 32 bits are used.
 * @returns A random source; the same seed yields the same sequence.
 * @example
 * ```ts
 * const rnd = createSeededRandom(42);
 * rnd.int(6); // the same die roll on every run
 * ```
 */
export function createSeededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (maxExclusive) => (maxExclusive <= 1 ? 0 : Math.floor(next() * maxExclusive)),
    chance: (p) => (p <= 0 ? false : p >= 1 ? true : next() < p),
  };
}

/**
 * Hashes a string to a 32-bit seed (FNV-1a), e.g. to derive a per-replica jitter seed from its id.
 * @param value - Any string.
 * @returns An unsigned 32-bit integer.
 */
export function seedFromString(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
