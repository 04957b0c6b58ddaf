/**
 * Every error nxs-sync throws or reports is an {@link NxsError} with a stable `code`.
 * Callers branch on `code` (and `retryable`), never on message text. `docs/errors.md` lists every code.
 * The codes themselves (core's, and the areas packages declare) are in `error-codes.ts`.
 */
import { ErrorCode, errorCodeInfo, type NxsErrorCode } from "./error-codes.js";

// Core's modules (and older imports) take ErrorCode from here.
export { ErrorCode };

/** Options common to every {@link NxsError}. */
export interface NxsErrorOptions {
  /** The underlying error, kept as is (a ZodError, a ClientResponseError, a Node system error). */
  readonly cause?: unknown;
  /** Overrides the default retryability of the code. */
  readonly retryable?: boolean;
}

/**
 * Base class of every nxs-sync error.
 * @example
 * ```ts
 * try { doc.change((d) => { d.port = -1 }) }
 * catch (e) { if (isNxsError(e) && e.code === "schema/invalid") console.log(e.message) }
 * ```
 */
export class NxsError extends Error {
  /** Stable machine-readable code: one of core's ({@link ErrorCode}) or of a registered area. */
  readonly code: NxsErrorCode;
  /** Whether retrying the same call later may succeed. */
  readonly retryable: boolean;

  /**
   * @param code - The code (its area's default retryability applies unless `options.retryable`).
   * @param message - What happened and how to fix it.
   * @param options - `cause` and `retryable`.
   */
  constructor(code: NxsErrorCode, message: string, options: NxsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NxsError";
    this.code = code;
    this.retryable = options.retryable ?? errorCodeInfo(code)?.retryable ?? false;
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

  constructor(code: NxsErrorCode, message: string, options: NxsErrorOptions & { status?: number } = {}) {
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
