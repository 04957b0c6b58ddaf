/**
 * Checks of options at construction: a bad option is an `NxsError` `config/invalid` whose message
 * names the option and says what it takes, never a `RangeError` or `TypeError`.
 */
import { ErrorCode } from "./error-codes.js";
import { NxsError } from "./errors.js";

/**
 * Throws `config/invalid` with `message` unless `ok`.
 * @param ok - Whether the option is usable.
 * @param message - What is wrong and how to write it (built only when `ok` is false).
 * @throws NxsError `config/invalid` (not retryable) unless `ok`.
 * @example
 * ```ts
 * checkOption(endpoints.length >= 2, () => `servers lists ${endpoints.length}: give at least two`);
 * ```
 */
export function checkOption(ok: boolean, message: () => string): asserts ok {
  if (!ok) throw new NxsError(ErrorCode.ConfigInvalid, message(), { retryable: false });
}

/** Bounds of {@link checkNumberOption}. */
export interface NumberOptionBounds {
  /** Smallest value taken (inclusive). */
  readonly min?: number;
  /** Largest value taken (inclusive). */
  readonly max?: number;
  /** Whether only integers are taken. */
  readonly integer?: boolean;
}

/**
 * Checks a numeric option: a finite number within `bounds` (an integer when asked), or undefined
 * (the default applies).
 * @param name - The option's name as the caller wrote it (e.g. `retry.retries`).
 * @param value - Its value.
 * @param bounds - `min`, `max` and `integer`.
 * @returns `value`.
 * @throws NxsError `config/invalid` naming the option, its value and what it takes.
 */
export function checkNumberOption<V extends number | undefined>(
  name: string,
  value: V,
  bounds: NumberOptionBounds = {},
): V {
  if (value === undefined) return value;
  const { min, max, integer = false } = bounds;
  const ok =
    typeof value === "number" &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (min === undefined || value >= min) &&
    (max === undefined || value <= max);
  checkOption(ok, () => {
    const range = [min === undefined ? "" : `>= ${min}`, max === undefined ? "" : `<= ${max}`]
      .filter((s) => s !== "")
      .join(" and ");
    return `${name} ${String(value)} must be ${integer ? "an integer" : "a finite number"}${range === "" ? "" : ` ${range}`}`;
  });
  return value;
}
