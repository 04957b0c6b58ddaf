/**
 * The error-code model. A code is `area/name` (`transport/unavailable`: area `transport`), or one
 * word for the few that span areas (`aborted`, `conflict`, `closed`: each its own area), and has a
 * default retryability. Core's codes are {@link ErrorCode}; a package declares the codes of its area
 * (`queue/*`, `config/*`, `metrics/*`, `accounts/*`) with `defineErrorCodes` and makes them
 * throwable by augmenting {@link ErrorCodeRegistry}, without touching core. `docs/errors.md` lists
 * every code; a test compares it with {@link listErrorCodes}.
 */

/**
 * Core's error codes, as a const object (use `ErrorCode.X`) with a derived union type. Packages add
 * theirs by area with `defineErrorCodes` (see {@link ErrorCodeRegistry}).
 */
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

/** The union of core's error codes (every code any package declares: {@link NxsErrorCode}). */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The codes packages declare, by area. A package augments it with the constants `defineErrorCodes`
 * returned; {@link NxsErrorCode} (the type of `NxsError.code`) then includes them. Empty in core.
 * @example
 * ```ts
 * // In @nxs-sync/queue, a module its entry point loads (docs/errors.md has the whole example):
 * const QueueErrorCode = defineErrorCodes("queue", {
 *   LeaseLost: { name: "lease-lost", retryable: false },
 * });
 * // declare module "@nxs-sync/core" { interface ErrorCodeRegistry { queue: typeof QueueErrorCode } }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: packages add their areas by declaration merging.
export interface ErrorCodeRegistry {}

/** The codes declared through {@link ErrorCodeRegistry} (`never` while no package declares any). */
export type RegisteredErrorCode = {
  [A in keyof ErrorCodeRegistry]: Extract<ErrorCodeRegistry[A][keyof ErrorCodeRegistry[A]], string>;
}[keyof ErrorCodeRegistry];

/** Every code an {@link NxsError} can carry: core's and those of the registered areas. */
export type NxsErrorCode = ErrorCode | RegisteredErrorCode;

/** The area of a code: the part before its `/`, or the whole code when it has none. */
export type ErrorAreaOf<C extends string> = C extends `${infer A}/${string}` ? A : C;

/** Every area of {@link NxsErrorCode} (`schema`, `transport`, … and the registered ones). */
export type ErrorArea = ErrorAreaOf<NxsErrorCode>;

/** What is known of one code. */
export interface ErrorCodeInfo {
  /** The code, e.g. `transport/unavailable`. */
  readonly code: string;
  /** Its area, e.g. `transport` (see {@link ErrorAreaOf}). */
  readonly area: string;
  /** Whether an error with this code is retryable unless its thrower says otherwise. */
  readonly retryable: boolean;
}

/**
 * The area of a code.
 * @param code - A code such as `queue/lease-lost`.
 * @returns Its area (`queue`), or the code itself when it has no `/` (`aborted`).
 */
export function errorAreaOf<C extends string>(code: C): ErrorAreaOf<C> {
  const slash = code.indexOf("/");
  return (slash < 0 ? code : code.slice(0, slash)) as ErrorAreaOf<C>;
}

const RETRYABLE_CORE_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  ErrorCode.TransportUnavailable,
  ErrorCode.StorageIo,
  ErrorCode.Conflict,
]);

/** Every known code: core's, then those packages declared, in the order they were declared. */
const known = new Map<string, ErrorCodeInfo>(
  Object.values(ErrorCode).map((code) => [
    code,
    Object.freeze({ code, area: errorAreaOf(code), retryable: RETRYABLE_CORE_CODES.has(code) }),
  ]),
);

/**
 * What is known of `code`.
 * @param code - Any string.
 * @returns Its {@link ErrorCodeInfo}, or undefined when neither core nor a loaded package declares it.
 */
export function errorCodeInfo(code: string): ErrorCodeInfo | undefined {
  return known.get(code);
}

/**
 * Every code core and the loaded packages declare (a package declares its codes when it is
 * imported). `docs/errors.md` must list exactly these.
 * @returns Core's codes first, then each declared area's, in declaration order.
 */
export function listErrorCodes(): readonly ErrorCodeInfo[] {
  return [...known.values()];
}

/**
 * Adds a code to the known codes, unless it is known already (used by `defineErrorCodes`, which
 * checks it first).
 * @internal Not exported from the package: declare codes with `defineErrorCodes`.
 * @param info - The code, its area and its default retryability.
 */
export function addErrorCode(info: ErrorCodeInfo): void {
  if (!known.has(info.code)) known.set(info.code, Object.freeze({ ...info }));
}
