/**
 * Validation of a config value against its key's zod schema, with every failing field named by a
 * dotted path: before a put (the writer's value) and on every read (a stored version may have been
 * written by an older schema, or straight into the collection).
 */
import type { z } from "zod";
import { type FieldIssue, InvalidConfigError } from "./errors.js";

/** The outcome of {@link checkValue}. */
export type CheckResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: InvalidConfigError };

/** The parts of a zod issue read here (a union's issue carries each option's issues). */
interface ZodIssueLike {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly code?: string;
  readonly errors?: readonly (readonly ZodIssueLike[])[];
}

/** Dotted path of a field (`providers.0.apiKey`), `""` for the value itself. */
function dotted(base: readonly PropertyKey[], path: readonly PropertyKey[]): string {
  return [...base, ...path].map((p) => String(p)).join(".");
}

/**
 * Turns zod issues into field issues. A union that no option matched names the fields of the
 * option that came closest (the fewest issues), so `kind: "b"` with a bad `url` says `url`.
 */
function fieldIssues(issues: readonly ZodIssueLike[], base: readonly PropertyKey[] = []): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of issues) {
    const options = issue.code === "invalid_union" ? (issue.errors ?? []) : [];
    const closest = options.reduce<readonly ZodIssueLike[] | undefined>(
      (best, option) => (best === undefined || option.length < best.length ? option : best),
      undefined,
    );
    if (closest !== undefined && closest.length > 0) {
      out.push(...fieldIssues(closest, [...base, ...issue.path]));
    } else out.push({ path: dotted(base, issue.path), message: issue.message });
  }
  return out;
}

/**
 * Checks a value against a key's schema without throwing.
 * @param key - The config key (named in the error).
 * @param schema - The key's schema.
 * @param value - Anything.
 * @returns `{ ok: true, value }` with the parsed value (defaults applied), or `{ ok: false, error }`
 *   with an {@link InvalidConfigError} (`config/invalid-value`) naming each failing field.
 * @example
 * ```ts
 * import { z } from "zod";
 * const r = checkValue("limits", z.object({ rps: z.number().int() }), { rps: 1.5 });
 * if (!r.ok) r.error.issues; // [{ path: "rps", message: "Invalid input: expected int, received number" }]
 * ```
 */
export function checkValue<T>(key: string, schema: z.ZodType<T>, value: unknown): CheckResult<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = fieldIssues(parsed.error.issues as readonly ZodIssueLike[]);
  return { ok: false, error: new InvalidConfigError(key, issues, { cause: parsed.error }) };
}

/**
 * Validates a value against a key's schema.
 * @param key - The config key (named in the error).
 * @param schema - The key's schema.
 * @param value - Anything.
 * @returns The parsed value (defaults applied).
 * @throws InvalidConfigError `config/invalid-value`, whose `issues` name each failing field with a dotted
 *   path (the ZodError is its `cause`).
 * @example
 * ```ts
 * import { z } from "zod";
 * validateValue("limits", z.object({ rps: z.number() }), { rps: "fast" });
 * // throws: config "limits" is invalid: rps: Invalid input: expected number, received string
 * ```
 */
export function validateValue<T>(key: string, schema: z.ZodType<T>, value: unknown): T {
  const result = checkValue(key, schema, value);
  if (!result.ok) throw result.error;
  return result.value;
}
