import type { MemoryHub } from "../../../src/memory-transport.js";
import type { ManualScheduler } from "../../../src/scheduler.js";

/** Lets pending promise callbacks and finished I/O run (one macrotask turn; no real-time wait). */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs the simulated world until `until()` holds: settles promises, then delivers one hub message,
 * else fires the next scheduler task (advancing fake time). Throws if it never holds.
 */
export async function drive(
  world: { hub?: MemoryHub; scheduler?: ManualScheduler },
  until: () => boolean,
  maxRounds = 20_000,
): Promise<void> {
  for (let i = 0; i < maxRounds; i++) {
    await tick();
    if (until()) return;
    if (world.hub?.step()) continue;
    world.scheduler?.runNext();
  }
  throw new Error("drive: condition never held");
}

/** Drives the world until `promise` settles, and returns its outcome. */
export async function driveUntilSettled<T>(
  world: { hub?: MemoryHub; scheduler?: ManualScheduler },
  promise: Promise<T>,
): Promise<T> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await drive(world, () => done);
  return promise;
}
