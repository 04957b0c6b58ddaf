import { ClientResponseError } from "pocketbase";

/**
 * The codes of {@link FleetError}, as a const object (use `FleetErrorCode.X`) with a derived union
 * type. Area `client`, named like the project's other codes (`area/name`).
 */
export const FleetErrorCode = {
  /**
   * No endpoint answered a request the client retries (a GET or an auth refresh): every endpoint
   * failed with a network error, a timeout or a 5xx. Retryable (later, once a server is back).
   */
  Unavailable: "client/unavailable",
  /**
   * A request the client does not retry (a POST, PATCH or DELETE other than an auth refresh) got no
   * answer or a 5xx. The client has moved to the next endpoint; the caller decides whether to send
   * it again there. `maybeApplied` says whether the first server may have applied it.
   */
  WriteUnconfirmed: "client/write-unconfirmed",
  /** The client was used after `close()`. Not retryable. */
  Closed: "client/closed",
  /** An option is unusable (no endpoints, an endpoint that is not an http(s) URL). Not retryable. */
  ConfigInvalid: "client/config-invalid",
} as const;

/** The union of {@link FleetErrorCode}'s values. */
export type FleetErrorCode = (typeof FleetErrorCode)[keyof typeof FleetErrorCode];

/** What {@link FleetError}'s constructor takes besides code and message. */
export interface FleetErrorOptions {
  /** The failure behind it (the SDK's `ClientResponseError` of the last attempt). */
  readonly cause?: unknown;
  /** Base URL of the endpoint of the last attempt. */
  readonly endpoint?: string;
  /** HTTP status of the last attempt; 0 when no answer came (network error, timeout). */
  readonly status?: number;
  /** Whether the request may have been applied by a server (only meaningful for writes). */
  readonly maybeApplied?: boolean;
}

const RETRYABLE: ReadonlySet<string> = new Set<FleetErrorCode>([
  FleetErrorCode.Unavailable,
  FleetErrorCode.WriteUnconfirmed,
]);

/**
 * The error of a fleet client. It extends the SDK's `ClientResponseError`, so code written for the
 * plain SDK (`err.status`, `err.isAbort`, `err.response`) keeps working; branch on {@link code}.
 * An answer of a server (a 400, 401, 403, 404…) is never wrapped: it leaves as the SDK's own
 * `ClientResponseError`.
 */
export class FleetError extends ClientResponseError {
  /** What went wrong, one of {@link FleetErrorCode}. */
  readonly code: FleetErrorCode;
  /** Whether sending the request again may succeed. */
  readonly retryable: boolean;
  /** Base URL of the endpoint of the last attempt (absent for `config-invalid` and `closed`). */
  readonly endpoint: string | undefined;
  /**
   * For `client/write-unconfirmed`: false when the server certainly did not apply the write (it
   * answered 503, as a fenced server does); true when it may have (no answer, a timeout, another
   * 5xx). Read before writing again, or write with an id of your own so that a second create fails
   * with 400 instead of creating a duplicate. False for the other codes.
   */
  readonly maybeApplied: boolean;

  /**
   * @param code - One of {@link FleetErrorCode}.
   * @param message - What happened and what to do.
   * @param options - Cause, endpoint, status and `maybeApplied`.
   */
  constructor(code: FleetErrorCode, message: string, options: FleetErrorOptions = {}) {
    super({
      url: options.endpoint ?? "",
      status: options.status ?? 0,
      response: { message },
      originalError: options.cause,
    });
    // ClientResponseError pins its own prototype; restore the subclass's.
    Object.setPrototypeOf(this, new.target.prototype);
    this.name = "FleetError";
    this.message = message;
    this.code = code;
    this.retryable = RETRYABLE.has(code);
    this.endpoint = options.endpoint;
    this.maybeApplied = options.maybeApplied ?? false;
  }
}

/**
 * Whether `error` is a {@link FleetError} (optionally of one code).
 * @param error - Anything caught.
 * @param code - When given, the code it must carry.
 * @returns True for a fleet client's error (of that code).
 * @example
 * ```ts
 * import { createFleetClient, FleetErrorCode, isFleetError } from "@nxs-sync/client";
 * const fleet = createFleetClient({ endpoints: ["https://a.example.com", "https://b.example.com"] });
 * try {
 *   await fleet.pb.collection("notes").create({ text: "hi" });
 * } catch (error) {
 *   if (isFleetError(error, FleetErrorCode.WriteUnconfirmed) && !error.maybeApplied) {
 *     await fleet.pb.collection("notes").create({ text: "hi" }); // not applied: safe to send again
 *   }
 * }
 * ```
 */
export function isFleetError(error: unknown, code?: FleetErrorCode): error is FleetError {
  return error instanceof FleetError && (code === undefined || error.code === code);
}
