/**
 * Helpers shared by the compact JSON codecs (state-codec, changes-codec): string columns joined by
 * a separator character that none of the strings contains, so that a column of keys costs one byte
 * of framing per key instead of three (`"k",`).
 */

/** Separators tried in order; the first one that no string of the column contains is used. */
const SEPARATORS = [",", "|", "/", ";", " ", "~", "^", "!", "#", "$", "*", "+", "=", "&", "@", "`", "'", "%"];

/** Strings made only of these characters contain no separator candidate (the common case). */
const PLAIN = /^[A-Za-z0-9_.:-]*$/;

/** Picks separators as strings are seen: the first candidate no string contains. */
export class SeparatorPicker {
  #alive: string[] = SEPARATORS.slice();

  /** Rules out the separators `s` contains. */
  see(s: string): void {
    if (PLAIN.test(s)) return;
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
