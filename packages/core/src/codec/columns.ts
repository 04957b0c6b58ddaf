/**
 * Helpers shared by the compact JSON codecs (state-codec, changes-codec): string columns joined by
 * a separator character that none of the strings contains, so that a column of keys costs one byte
 * of framing per key instead of three (`"k",`).
 */

/** Separators tried in order; the first one that no string of the column contains is used. */
const SEPARATORS = [",", "|", "/", ";", " ", "~", "^", "!", "#", "$", "*", "+", "=", "&", "@", "`", "'", "%"];

/** Per ASCII code: 1 when the character is no separator candidate (`[A-Za-z0-9_.:-]`). */
const PLAIN = new Uint8Array(128);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
  PLAIN[ch.charCodeAt(0)] = 1;

/** Whether `s` is made only of characters that are no separator candidate (the common case). */
function isPlain(s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 128 || PLAIN[c] === 0) return false;
  }
  return true;
}

/** Picks separators as strings are seen: the first candidate no string contains. */
export class SeparatorPicker {
  #alive: string[] = SEPARATORS.slice();

  /** Rules out the separators `s` contains. */
  see(s: string): void {
    if (isPlain(s)) return;
    const alive = this.#alive;
    for (let k = alive.length - 1; k >= 0; k--) if (s.includes(alive[k] as string)) alive.splice(k, 1);
  }

  /** The first separator still usable, or undefined when every candidate occurs in some string. */
  pick(): string | undefined {
    return this.#alive[0];
  }

  /** The first two usable separators (for two-level columns), or undefined. */
  pickTwo(): [string, string] | undefined {
    const a = this.#alive;
    return a.length >= 2 ? [a[0] as string, a[1] as string] : undefined;
  }
}

/** Whether `sep` is a separator this format allows (one of the candidates). */
export function isSeparator(sep: unknown): sep is string {
  return typeof sep === "string" && SEPARATORS.includes(sep);
}
