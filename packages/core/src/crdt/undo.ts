/**
 * An undo log: closures that revert in-place edits, run in reverse order. Applying a change
 * records one entry per edit so that a change that turns out invalid is rolled back whole.
 */
export type Undo = (() => void)[];

/**
 * Runs an undo log backwards and empties it.
 * @param undo - The log.
 */
export function rollback(undo: Undo): void {
  for (let k = undo.length - 1; k >= 0; k--) (undo[k] as () => void)();
  undo.length = 0;
}
