import { callGuarded } from "../errors/callback-guard.js";

/** A listener of one event of an event map (it may be async: a rejection is reported like a throw). */
export type Listener<P> = (payload: P) => void;

/** A small typed event emitter (events are kebab-case names mapped to a payload type). */
export interface Emitter<Events extends object> {
  /**
   * Registers `listener` for `event`.
   * @returns The function that unregisters it.
   */
  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void;
  /**
   * Calls every listener of `event`. A listener that throws, or whose promise rejects, is reported
   * to `onListenerError`, never rethrown; the other listeners are still called.
   */
  emit<E extends keyof Events>(event: E, payload: Events[E]): void;
  /** How many listeners `event` has. */
  listenerCount(event: keyof Events): number;
}

/**
 * Creates an {@link Emitter}.
 * @param onListenerError - Receives what a listener threw (or rejected with), with the event name;
 *   wrap it with `toListenerError` to report it as `listener/failed`. Whatever it throws itself
 *   is dropped.
 * @returns An emitter with no listeners.
 */
export function createEmitter<Events extends object>(
  onListenerError: (error: unknown, event: keyof Events) => void,
): Emitter<Events> {
  const listeners = new Map<keyof Events, Set<Listener<never>>>();
  return {
    on(event, listener) {
      let set = listeners.get(event);
      if (set === undefined) {
        set = new Set();
        listeners.set(event, set);
      }
      const entry = listener as Listener<never>;
      set.add(entry);
      return () => {
        set.delete(entry);
      };
    },
    emit(event, payload) {
      const set = listeners.get(event);
      if (set === undefined) return;
      for (const listener of [...set]) {
        callGuarded(
          `a listener of "${String(event)}"`,
          listener as Listener<typeof payload>,
          [payload],
          (e) => onListenerError(e.cause, event),
        );
      }
    },
    listenerCount: (event) => listeners.get(event)?.size ?? 0,
  };
}
