/**
 * Write stamps. Every op of a change is stamped `(hlc, index)`: the change's HLC and the op's index
 * in the change. Stamps order writes: by HLC string, then by index (later ops of a change win over
 * earlier ones). The initial state of a document is stamped `("", index)`, before every HLC.
 */

/** The most ops one change may carry (the op index must fit in a stamp). */
export const MAX_OPS_PER_CHANGE = 2 ** 20;

/**
 * Whether stamp `(ah, ai)` is after stamp `(bh, bi)`.
 * @returns True when `a` is strictly newer.
 */
export function isNewer(ah: string, ai: number, bh: string, bi: number): boolean {
  return ah > bh || (ah === bh && ai > bi);
}
