/**
 * A pure string hash (cyrb53, two seeds) for deterministic record ids and content digests: no
 * crypto (none is needed: ids only have to be the same on every node and not collide by chance).
 */

/**
 * The 53-bit cyrb53 hash of a string.
 * @param text - The input.
 * @param seed - A seed (different seeds give independent hashes).
 * @returns An integer below 2^53.
 */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * A PocketBase record id (15 characters of `[a-z0-9]`) derived from `text`: the same text gives
 * the same id on every node, so two writers of one window write one record.
 * @param text - What identifies the record (e.g. `node|tier|start`).
 * @returns The id.
 */
export function deterministicId(text: string): string {
  const a = hash53(text, 1).toString(36).padStart(11, "0").slice(-8);
  const b = hash53(text, 2).toString(36).padStart(11, "0").slice(-7);
  return `${a}${b}`;
}
