/**
 * Error codes raised by the test harness. Callers branch on `code`, never on the message.
 *
 * - `harness/binary-not-found`: no PocketBase binary could be resolved (every attempt is in the message).
 * - `harness/binary-invalid`: a binary was found but `--version` failed or reported another version.
 * - `harness/start-failed`: a server did not become healthy (its log is in the message).
 * - `harness/docker-unavailable`: no Docker engine answers.
 * - `harness/request-failed`: an admin request to a server (settings, collections) failed.
 * - `harness/timeout`: a bounded wait ran out.
 */
export type HarnessErrorCode =
  | "harness/binary-not-found"
  | "harness/binary-invalid"
  | "harness/start-failed"
  | "harness/docker-unavailable"
  | "harness/request-failed"
  | "harness/timeout";

/**
 * The one error class of `@nxs-sync/testing`.
 *
 * @example
 * ```ts
 * try {
 *   await ensurePocketBaseBinary();
 * } catch (e) {
 *   if (isHarnessError(e) && e.code === "harness/binary-not-found") console.error(e.message); // lists each attempt
 *   else throw e;
 * }
 * ```
 */
export class HarnessError extends Error {
  /** Machine-readable reason. */
  readonly code: HarnessErrorCode;
  /** Whether retrying the same call may succeed (e.g. a timeout). */
  readonly retryable: boolean;

  /**
   * @param code - the error code
   * @param message - a human explanation, including what was tried and how to fix it
   * @param options - `cause` (the underlying error) and `retryable` (default false)
   */
  constructor(
    code: HarnessErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HarnessError";
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/**
 * Type guard for {@link HarnessError}.
 *
 * @param error - any thrown value
 * @returns true when `error` is a HarnessError
 */
export function isHarnessError(error: unknown): error is HarnessError {
  return error instanceof HarnessError;
}
