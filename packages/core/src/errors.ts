/**
 * Every error nxs-sync throws or reports is an {@link NxsError} with a stable `code`.
 * Callers branch on `code` (and `retryable`), never on message text. `docs/errors.md` lists every code.
 */

/** All error codes, as a const object (use `ErrorCode.X`) with a derived union type. */
export const ErrorCode = {
  /** A value does not match its zod schema (local change, remote op, record, option). */
  SchemaInvalid: "schema/invalid",
  /** A remote change is malformed or cannot apply (bad path, wrong kind for the target, wrong doc). */
  OpInvalid: "op/invalid",
  /** A remote HLC is further ahead of the local wall clock than `maxDriftMs`. */
  HlcDrift: "hlc/drift",
  /** An HLC string cannot be decoded. */
  HlcInvalid: "hlc/invalid",
  /** The local counter of an HLC overflowed within one millisecond. */
  HlcOverflow: "hlc/overflow",
  /** No server could be reached (network error, 5xx, timeout). Retryable. */
  TransportUnavailable: "transport/unavailable",
  /** A server refused the request (4xx other than auth). Not retryable. */
  TransportRejected: "transport/rejected",
  /** Credentials are missing, wrong or lack the right. Not retryable. */
  TransportUnauthorized: "transport/unauthorized",
  /** The operation was cancelled (closed replica, aborted request). */
  Aborted: "aborted",
  /** Durable storage could not be read or written. */
  StorageIo: "storage/io",
  /** Durable storage holds data that does not decode. */
  StorageCorrupt: "storage/corrupt",
  /** A compare-and-swap or uniqueness guard failed. */
  Conflict: "conflict",
  /** A replica or transport was used after `close()`. */
  Closed: "closed",
  /** A callback of yours (event listener, subscriber) threw; reported, never rethrown into the engine. */
  ListenerFailed: "listener/failed",
  /** An option is unusable as given (an endpoint without `http(s)://`, a malformed node id). Not retryable. */
  ConfigInvalid: "config/invalid",
  /**
   * A server is not set up for nxs-sync: its schema is missing, or its `pb_hooks` bundle is missing or
   * of another version. Not retryable until an operator fixes the server.
   */
  ServerIncompatible: "server/incompatible",
  /**
   * A snapshot claims changes its server does not hold (a claim above that server's highest seq of
   * the origin): it is not adopted, compacted against or trusted by the replicator. Not retryable.
   */
  SnapshotUnbacked: "snapshot/unbacked",
} as const;

/** The union of all error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options common to every {@link NxsError}. */
export interface NxsErrorOptions {
  /** The underlying error, kept as is (a ZodError, a ClientResponseError, a Node system error). */
  readonly cause?: unknown;
  /** Overrides the default retryability of the code. */
  readonly retryable?: boolean;
}

const RETRYABLE_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.TransportUnavailable,
  ErrorCode.StorageIo,
  ErrorCode.Conflict,
]);

/**
 * Base class of every nxs-sync error.
 * @example
 * ```ts
 * try { doc.change((d) => { d.port = -1 }) }
 * catch (e) { if (isNxsError(e) && e.code === "schema/invalid") console.log(e.message) }
 * ```
 */
export class NxsError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Whether retrying the same call later may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: NxsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NxsError";
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(code);
  }
}

/** A value failed validation. `issues` holds the zod issues when zod found them. */
export class ValidationError extends NxsError {
  /** Each problem found: a path into the value and a message. */
  readonly issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[];

  constructor(
    message: string,
    options: NxsErrorOptions & {
      code?: typeof ErrorCode.SchemaInvalid | typeof ErrorCode.OpInvalid | typeof ErrorCode.SnapshotUnbacked;
      issues?: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[];
    } = {},
  ) {
    super(options.code ?? ErrorCode.SchemaInvalid, message, options);
    this.name = "ValidationError";
    this.issues = options.issues ?? [];
  }
}

/** A clock problem: `hlc/drift`, `hlc/invalid` or `hlc/overflow`. */
export class ClockError extends NxsError {
  constructor(
    code: typeof ErrorCode.HlcDrift | typeof ErrorCode.HlcInvalid | typeof ErrorCode.HlcOverflow,
    message: string,
    options: NxsErrorOptions = {},
  ) {
    super(code, message, options);
    this.name = "ClockError";
  }
}

/** A transport problem: `transport/*` or `aborted`. */
export class TransportError extends NxsError {
  /** HTTP status when a server answered, else undefined. */
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, options: NxsErrorOptions & { status?: number } = {}) {
    super(code, message, options);
    this.name = "TransportError";
    this.status = options.status;
  }
}

/** A storage problem: `storage/io` or `storage/corrupt`. */
export class StorageError extends NxsError {
  constructor(
    code: typeof ErrorCode.StorageIo | typeof ErrorCode.StorageCorrupt,
    message: string,
    options: NxsErrorOptions = {},
  ) {
    super(code, message, options);
    this.name = "StorageError";
  }
}

/** A guarded write lost a race (`conflict`): a compare-and-swap, or a unique index (`fields`). */
export class ConflictError extends NxsError {
  /** The fields of the unique index the write violated (as the server named them); empty otherwise. */
  readonly fields: readonly string[];

  constructor(message: string, options: NxsErrorOptions & { readonly fields?: readonly string[] } = {}) {
    super(ErrorCode.Conflict, message, options);
    this.name = "ConflictError";
    this.fields = options.fields ?? [];
  }
}

/**
 * Narrows an unknown value to {@link NxsError}.
 * @param value - Anything caught.
 * @returns True when `value` is an nxs-sync error (also across duplicated package copies).
 */
export function isNxsError(value: unknown): value is NxsError {
  return (
    value instanceof NxsError ||
    (value instanceof Error &&
      typeof (value as { code?: unknown }).code === "string" &&
      typeof (value as { retryable?: unknown }).retryable === "boolean")
  );
}
