import { EventSource as EventSourcePolyfill } from "eventsource";

/**
 * Makes `globalThis.EventSource` available in Node (which has none by default) so the PocketBase SDK's
 * realtime service works. Idempotent; never runs at import time: call it from a factory.
 *
 * @returns true when the polyfill was installed by this call, false when an EventSource already existed
 * @example
 * ```ts
 * installEventSource();
 * await pb.collection("notes").subscribe("*", (e) => console.log(e.action));
 * ```
 */
export function installEventSource(): boolean {
  const g = globalThis as { EventSource?: unknown };
  if (typeof g.EventSource === "function") return false;
  g.EventSource = EventSourcePolyfill;
  return true;
}
