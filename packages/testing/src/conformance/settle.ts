/**
 * The waits the conformance suites share: `settle()` lets pending deliveries happen once (the
 * context's own, or 10 ms of real time), and `eventually(what, condition)` calls it in a loop, at
 * most `maxSettleRounds` times (default 300), until the condition holds; a poll interval, never a
 * bound that decides a check.
 */
import { expect } from "vitest";

/** What the waits read from a suite's context. */
export interface SettleContext {
  /** Lets pending deliveries happen once (default: 10 ms of real time). */
  settle?(): Promise<void>;
  /** How many `settle()` rounds a wait may take (default 300). */
  readonly maxSettleRounds?: number;
}

const realSettle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));

/** The waits of a suite (see the module's summary). */
export interface SettleWaits {
  /** Lets pending deliveries happen once. */
  settle(): Promise<void>;
  /**
   * Waits until `condition` holds, settling between looks.
   * @throws The failed expectation `timed out waiting for: <what>` after the last round.
   */
  eventually(what: string, condition: () => boolean): Promise<void>;
}

/**
 * Makes the waits of a suite over its current context (read at each call: a suite sets it up per
 * test).
 * @param current - The context of the running test, or undefined before the first.
 * @returns `settle` and `eventually`.
 */
export function createSettleWaits(current: () => SettleContext | undefined): SettleWaits {
  const settle = async (): Promise<void> => (current()?.settle ?? realSettle)();
  return {
    settle,
    async eventually(what, condition) {
      const rounds = current()?.maxSettleRounds ?? 300;
      for (let i = 0; i < rounds; i++) {
        if (condition()) return;
        await settle();
      }
      expect(condition(), `timed out waiting for: ${what}`).toBe(true);
    },
  };
}
