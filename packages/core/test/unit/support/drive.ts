import type { MemoryHub } from "../../../src/memory/memory-transport.js";
import type { ManualScheduler } from "../../../src/sync/scheduler.js";
import type { Storage } from "../../../src/sync/storage.js";

/** Lets pending promise callbacks run (one macrotask turn; no real-time wait). */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Real asynchronous work of a simulated world (file I/O: an fsync runs in the libuv thread pool and
 * may take any number of event-loop turns). `drive` waits for it before it moves the world.
 */
export interface IoTracker {
  /** How many tracked operations are in flight. */
  pending(): number;
  /** Resolves once no tracked operation is in flight. */
  idle(): Promise<void>;
  /** Wraps a storage so that each of its operations is tracked. */
  storage(storage: Storage): Storage;
}

/** Creates an {@link IoTracker}. */
export function createIoTracker(): IoTracker {
  let inFlight = 0;
  const waiters: (() => void)[] = [];
  const track = <T>(op: Promise<T>): Promise<T> => {
    inFlight++;
    return op.finally(() => {
      inFlight--;
      if (inFlight === 0) for (const w of waiters.splice(0)) w();
    });
  };
  return {
    pending: () => inFlight,
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    storage: (s) => ({
      load: () => track(s.load()),
      appendOutbox: (changes) => track(s.appendOutbox(changes)),
      ackOutbox: (seq) => track(s.ackOutbox(seq)),
      saveSnapshot: (snapshot) => track(s.saveSnapshot(snapshot)),
      close: () => track(s.close()),
    }),
  };
}

/** A simulated world: a hub, a manual scheduler, and the real I/O it waits for. */
export interface World {
  readonly hub?: MemoryHub;
  readonly scheduler?: ManualScheduler;
  readonly io?: IoTracker;
}

/**
 * Settles the world: runs pending promise callbacks and waits for tracked real I/O (and what its
 * completion starts), so that fake time never passes while a write is in flight and `drive`'s
 * rounds count simulated events, not event-loop turns.
 */
export async function settle(world: World): Promise<void> {
  await tick();
  while (world.io !== undefined && world.io.pending() > 0) {
    await world.io.idle();
    await tick();
  }
}

/**
 * Runs the simulated world until `until()` holds: settles (promises and tracked I/O), then delivers
 * one hub message, else fires the next scheduler task (advancing fake time). Throws if it never holds.
 */
export async function drive(world: World, until: () => boolean, maxRounds = 20_000): Promise<void> {
  for (let i = 0; i < maxRounds; i++) {
    await settle(world);
    if (until()) return;
    if (world.hub?.step()) continue;
    world.scheduler?.runNext();
  }
  throw new Error("drive: condition never held");
}

/** Drives the world until `promise` settles, and returns its outcome. */
export async function driveUntilSettled<T>(world: World, promise: Promise<T>): Promise<T> {
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
