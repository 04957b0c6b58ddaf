/**
 * The NATS package's error codes (area `nats/*`), each listed in docs/errors.md, and the mapping of
 * the NATS client's errors to core's `transport/*` codes at the edge.
 */
import {
  defineErrorCodes,
  ErrorCode,
  isNxsError,
  NxsError,
  type NxsErrorOptions,
  TransportError,
} from "@nxs-sync/core";

/** Error codes of `@nxs-sync/nats`. */
export const NatsErrorCode = defineErrorCodes("nats", {
  /**
   * A stream or bucket of the given name exists with a configuration nxs-sync cannot use (other
   * subjects, retention, or fewer replicas than asked).
   */
  StreamMismatch: { name: "stream-mismatch", retryable: false },
  /** Another compactor holds the compaction lease of the doc: try again after the lease runs out. */
  LeaseHeld: { name: "lease-held", retryable: true },
});

declare module "@nxs-sync/core" {
  interface ErrorCodeRegistry {
    nats: typeof NatsErrorCode;
  }
}

/** The union of the NATS codes. */
export type NatsErrorCode = (typeof NatsErrorCode)[keyof typeof NatsErrorCode];

/**
 * An error of the NATS package with a `nats/*` code.
 * @example
 * ```ts
 * const e = new NatsError(NatsErrorCode.LeaseHeld, "compaction of doc d is running elsewhere");
 * console.log(e.code, e.retryable); // "nats/lease-held" true
 * ```
 */
export class NatsError extends NxsError {
  /**
   * @param code - A `nats/*` code.
   * @param message - What happened and how to fix it.
   * @param options - `cause`, `retryable`.
   */
  constructor(code: NatsErrorCode, message: string, options: NxsErrorOptions = {}) {
    super(code, message, options);
    this.name = "NatsError";
  }
}

/**
 * Maps what the NATS client threw to a typed transport error, keeping it as `cause`: permission
 * errors are `transport/unauthorized`, JetStream API refusals (a 4xx status from the server other
 * than 408) `transport/rejected`, everything else (timeouts, no responders, 503 while a stream has
 * no leader, a closed connection) `transport/unavailable` (retryable).
 * @param error - What the client threw.
 * @param what - What was being done, for the message (e.g. `publish to nxs.changes.d.a`).
 * @returns The typed error (`error` itself when it is an nxs error already).
 */
export function toNatsTransportError(error: unknown, what: string): NxsError {
  if (isNxsError(error)) return error;
  const e = error as { name?: string; message?: string; status?: unknown } | undefined;
  const message = `${what}: ${e?.message ?? String(error)}`;
  if (e?.name === "PermissionViolationError" || /authori[sz]ation|permission/i.test(e?.message ?? "")) {
    return new TransportError(ErrorCode.TransportUnauthorized, message, { cause: error });
  }
  const status = typeof e?.status === "number" ? e.status : undefined;
  // A retry that reaches the leader while the first attempt of the same message id is still being
  // stored: the outcome is not known yet, so it is retryable (the next attempt is a duplicate or not).
  // A cluster whose peers are not all up yet (just started, or one restarting) cannot place an R3
  // stream or bucket: that passes once they are, so it is retryable too.
  const inProcess = /duplicate message id is in process|no suitable peers|peer offline/i.test(
    e?.message ?? "",
  );
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && !inProcess) {
    return new TransportError(ErrorCode.TransportRejected, message, { cause: error, status });
  }
  return new TransportError(ErrorCode.TransportUnavailable, message, {
    cause: error,
    ...(status === undefined ? {} : { status }),
  });
}
