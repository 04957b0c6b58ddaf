/**
 * How a package declares the error codes of its area (`queue/*`, `config/*`, …) without touching
 * core: {@link defineErrorCodes}.
 */
import { addErrorCode, ErrorCode, errorCodeInfo } from "./error-codes.js";
import { NxsError } from "./errors.js";

/** One code of an area: its name within the area and its default retryability. */
export interface ErrorCodeDefinition {
  /** Kebab-case name, e.g. `lease-lost` (the code is then `<area>/lease-lost`). */
  readonly name: string;
  /** Whether an error with this code is retryable unless its thrower says otherwise. */
  readonly retryable: boolean;
}

/** The constants {@link defineErrorCodes} returns: each key mapped to its `area/name` code. */
export type DefinedErrorCodes<A extends string, D extends Readonly<Record<string, ErrorCodeDefinition>>> = {
  readonly [K in keyof D]: `${A}/${D[K]["name"]}`;
};

const KEBAB = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/**
 * Declares the error codes of one area, each with its default retryability, and returns them as
 * typed constants (use `QueueErrorCode.LeaseLost` as core code uses `ErrorCode.Closed`). Declaring
 * a code again with the same retryability is a no-op (a package loaded twice); any code core
 * already has keeps core's meaning, so it may only be declared with the same retryability. Make the
 * codes throwable by augmenting `ErrorCodeRegistry` with the returned object's type, and list each
 * code in `docs/errors.md` (a test compares the two).
 * @param area - Kebab-case area, e.g. `queue`.
 * @param definitions - Each constant's name and retryability.
 * @returns A frozen object of the codes, typed as literals.
 * @throws NxsError `config/invalid` for an area or name that is not kebab-case, or a code already
 *   declared with another retryability.
 * @example
 * ```ts
 * const QueueErrorCode = defineErrorCodes("queue", {
 *   LeaseLost: { name: "lease-lost", retryable: false },
 *   Busy: { name: "busy", retryable: true },
 * });
 * const code: "queue/lease-lost" = QueueErrorCode.LeaseLost;
 * ```
 */
export function defineErrorCodes<
  const A extends string,
  const D extends Readonly<Record<string, ErrorCodeDefinition>>,
>(area: A, definitions: D): DefinedErrorCodes<A, D> {
  if (!KEBAB.test(area)) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `error area ${JSON.stringify(area)} is not kebab-case (e.g. "queue")`,
    );
  }
  const out: Record<string, string> = {};
  // Every definition is checked before any is added: a refused call declares nothing.
  for (const [key, def] of Object.entries(definitions)) {
    if (!KEBAB.test(def.name)) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `error code ${area}.${key}: name ${JSON.stringify(def.name)} is not kebab-case (e.g. "lease-lost")`,
      );
    }
    const code = `${area}/${def.name}`;
    const existing = errorCodeInfo(code);
    if (existing !== undefined && existing.retryable !== def.retryable) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `error code ${code} is already declared with retryable ${existing.retryable}: a code keeps one meaning`,
      );
    }
    out[key] = code;
  }
  for (const [key, code] of Object.entries(out)) {
    addErrorCode({ code, area, retryable: (definitions[key] as ErrorCodeDefinition).retryable });
  }
  return Object.freeze(out) as DefinedErrorCodes<A, D>;
}
