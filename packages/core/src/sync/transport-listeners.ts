import type { Logger } from "../errors/logger.js";
import type { Change } from "../model/change.js";
import type { TransportListener, TransportState } from "./transport.js";

/**
 * The subscribers of one transport and how a transport adapter calls them: every call is guarded
 * (a listener that throws is logged and the others are still called), and realtime changes are
 * handed over in one batch per microtask, so that a burst of events (one SSE message or a pull of
 * consumer messages) reaches a replica as one `onChanges` call.
 */
export interface TransportListeners {
  /** Adds `listener`; returns the function that removes it. */
  add(listener: TransportListener): () => void;
  /** Whether `listener` is still subscribed. */
  has(listener: TransportListener): boolean;
  /** Removes every listener (a closed transport). */
  clear(): void;
  /** Queues realtime changes; they are delivered with the others of this microtask, unless closed by then. */
  deliver(changes: readonly Change[]): void;
  /** Calls every listener's `onResync`. */
  resync(): void;
  /** Calls every listener's `onState`. */
  state(next: TransportState): void;
  /**
   * Calls every listener's `onError`.
   * @returns Whether any listener handles errors (then the transport need not log it itself).
   */
  error(error: Error): boolean;
}

/** Options of {@link createTransportListeners}. */
export interface TransportListenersOptions {
  /** Prefix of the log lines, such as `[nxs-pocketbase]`. */
  readonly tag: string;
  /** Where a listener's throw is logged. */
  readonly logger: Logger;
  /** Whether the transport is closed: queued changes are then dropped. */
  readonly isClosed: () => boolean;
}

/**
 * Creates the {@link TransportListeners} of a transport adapter.
 * @param options - The log tag, the logger and the transport's closed flag.
 * @returns An empty listener set.
 */
export function createTransportListeners(options: TransportListenersOptions): TransportListeners {
  const { tag, logger, isClosed } = options;
  const listeners = new Set<TransportListener>();
  let pending: Change[] = [];
  let flushScheduled = false;

  function each(what: string, call: (listener: TransportListener) => void): void {
    for (const listener of listeners) {
      try {
        call(listener);
      } catch (e) {
        logger.error(`${tag} ${what} threw`, e);
      }
    }
  }

  function flush(): void {
    flushScheduled = false;
    const batch = pending;
    pending = [];
    if (batch.length === 0 || isClosed()) return;
    each("onChanges", (l) => l.onChanges(batch));
  }

  return {
    add(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    has: (listener) => listeners.has(listener),
    clear: () => listeners.clear(),
    deliver(changes) {
      for (const c of changes) pending.push(c);
      if (flushScheduled) return;
      flushScheduled = true;
      queueMicrotask(flush);
    },
    resync: () => each("onResync", (l) => l.onResync()),
    state: (next) => each("onState", (l) => l.onState?.(next)),
    error(error) {
      let handled = false;
      each("subscriber onError", (l) => {
        if (l.onError === undefined) return;
        handled = true;
        l.onError(error);
      });
      return handled;
    },
  };
}
