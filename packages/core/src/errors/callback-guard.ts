/**
 * Guards for the callbacks users hand to nxs-sync (event listeners, `onError`, loggers): whatever
 * one of them throws or rejects with is reported as `listener/failed`, never rethrown into the
 * engine and never left as an unhandled rejection.
 */
import { ErrorCode } from "./error-codes.js";
import { isNxsError, NxsError } from "./errors.js";
import type { Logger } from "./logger.js";

/**
 * Wraps what one of the user's callbacks threw as a `listener/failed` error (not retryable).
 * @param error - What the callback threw or rejected with (kept as `cause`).
 * @param what - Which callback, e.g. `a listener of "sync"` or `onError`.
 * @returns The `listener/failed` error (`error` itself when it is one already).
 */
export function toListenerError(error: unknown, what: string): NxsError {
  if (isNxsError(error) && error.code === ErrorCode.ListenerFailed) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new NxsError(ErrorCode.ListenerFailed, `${what} threw: ${detail}`, {
    cause: error,
    retryable: false,
  });
}

/** Whether `value` looks like a promise (an async callback's result). */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/**
 * Calls one of the user's callbacks so that nothing it does reaches the caller: a throw, or the
 * rejection of the promise an async callback returns, goes to `onFailure` as `listener/failed`.
 * When `onFailure` itself throws, that is dropped (there is nowhere left to report it).
 * @param what - Which callback, for the message (e.g. `onError`).
 * @param callback - The user's callback; nothing happens when it is undefined.
 * @param args - Its arguments.
 * @param onFailure - Receives the `listener/failed` error (its `cause` is what the callback threw).
 * @example
 * ```ts
 * const onError = (e: Error) => { throw new Error(`cannot handle ${e.message}`) };
 * callGuarded("onError", onError, [new Error("boom")], (failure) => logger.error(failure.message));
 * ```
 */
export function callGuarded<A extends readonly unknown[]>(
  what: string,
  callback: ((...args: A) => unknown) | undefined,
  args: A,
  onFailure: (error: NxsError) => void,
): void {
  if (callback === undefined) return;
  try {
    const result = callback(...args);
    // The reporter is made only for a promise or a throw: a plain call allocates nothing here.
    if (isThenable(result)) result.then(undefined, (error: unknown) => reportFailure(error, what, onFailure));
  } catch (error) {
    reportFailure(error, what, onFailure);
  }
}

function reportFailure(error: unknown, what: string, onFailure: (error: NxsError) => void): void {
  try {
    onFailure(toListenerError(error, what));
  } catch {
    // The reporter failed too: dropping it keeps the engine (and the process) running.
  }
}

/**
 * A logger whose methods never throw: a user's logger that throws (a closed stream, a bug) is
 * ignored rather than failing the request or loop that logged.
 * @param logger - The user's logger.
 * @returns A logger that calls `logger` and drops what it throws.
 */
export function guardLogger(logger: Logger): Logger {
  const level =
    (name: keyof Logger) =>
    (message: string, ...args: unknown[]): void => {
      try {
        logger[name](message, ...args);
      } catch {
        // Nowhere to report a failing logger.
      }
    };
  return Object.freeze({
    debug: level("debug"),
    info: level("info"),
    warn: level("warn"),
    error: level("error"),
  });
}
