/**
 * What keeps a script's process alive while it awaits a store: the store's own timers are unref'd
 * (core's `createTimerScheduler` default), so an idle started store never holds a process; but a
 * `start()` waiting for servers that refuse, or a rollout's bake, is awaited by its caller, and Node
 * would exit with that await unsettled. Such a call holds the process (a ref'd handle) until it
 * settles.
 */

/** The longest interval a Node timer takes (ms): the handle never fires in practice. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Keeps the process alive until released.
 * @returns The release (idempotent).
 */
export function holdProcess(): () => void {
  let handle: ReturnType<typeof setInterval> | undefined = setInterval(() => {}, MAX_TIMER_MS);
  return () => {
    if (handle === undefined) return;
    clearInterval(handle);
    handle = undefined;
  };
}
