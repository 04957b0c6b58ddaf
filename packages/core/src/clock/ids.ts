import { ValidationError } from "../errors/errors.js";

/**
 * Branded identifiers. A brand is a compile-time tag only: at run time every id is a plain string,
 * so ids cross the wire and storage as-is.
 */
declare const brand: unique symbol;

/** A nominal type tag (compile time only). */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Identifies one replica (one writer: a gateway instance, a replicator). Unique across the fleet. */
export type ReplicaId = Brand<string, "ReplicaId">;
/** Identifies one replicated document. */
export type DocId = Brand<string, "DocId">;
/** An encoded hybrid logical clock timestamp; compares correctly as a plain string. */
export type Hlc = Brand<string, "Hlc">;

/** Allowed characters of replica and document ids: they are embedded in HLC strings and filters. */
export const ID_PATTERN: RegExp = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Brands a string as a {@link ReplicaId} after checking its form.
 * @param value - 1 to 64 characters of `[A-Za-z0-9_.:-]`.
 * @returns The same string, branded.
 * @throws {@link ValidationError} `schema/invalid` when the form is wrong.
 */
export function toReplicaId(value: string): ReplicaId {
  assertId(value, "replica id");
  return value as ReplicaId;
}

/**
 * Brands a string as a {@link DocId} after checking its form.
 * @param value - 1 to 64 characters of `[A-Za-z0-9_.:-]`.
 * @returns The same string, branded.
 * @throws {@link ValidationError} `schema/invalid` when the form is wrong.
 */
export function toDocId(value: string): DocId {
  assertId(value, "doc id");
  return value as DocId;
}

function assertId(value: string, what: string): void {
  if (typeof value !== "string" || !ID_PATTERN.test(value)) {
    throw new ValidationError(`invalid ${what} ${JSON.stringify(value)}: expected ${ID_PATTERN}`);
  }
}
