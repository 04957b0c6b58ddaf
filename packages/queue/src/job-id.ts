/**
 * Job ids: 15 characters of `[a-z0-9]` (a PocketBase record id), made from an injectable random
 * source, and the check of an id a producer chose.
 */
import { type Random, ValidationError } from "@nxs-sync/core";
import { JOB_ID_PATTERN, type JobId } from "./job.js";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A {@link Random} backed by the platform's cryptographic source (`crypto.getRandomValues`): the
 * default of job ids, so two producers never pick the same one.
 * @returns The random source.
 */
export function createCryptoRandom(): Random {
  const buffer = new Uint32Array(64);
  let left = 0;
  const next = (): number => {
    if (left === 0) {
      globalThis.crypto.getRandomValues(buffer);
      left = buffer.length;
    }
    left--;
    return (buffer[left] as number) / 4294967296;
  };
  return {
    next,
    int: (maxExclusive) => (maxExclusive <= 1 ? 0 : Math.floor(next() * maxExclusive)),
    chance: (p) => (p <= 0 ? false : p >= 1 ? true : next() < p),
  };
}

/**
 * Makes a new job id.
 * @param random - The source of its characters.
 * @returns 15 characters of `[a-z0-9]`.
 */
export function newJobId(random: Random): JobId {
  let id = "";
  for (let i = 0; i < 15; i++) id += ALPHABET[random.int(ALPHABET.length)];
  return id as JobId;
}

/**
 * Checks a job id a producer chose (for idempotent enqueue).
 * @param value - The id.
 * @param where - Where it came from, for the message (e.g. `options.id`).
 * @returns It, branded.
 * @throws ValidationError `schema/invalid` unless it is 15 characters of `[a-z0-9]`.
 */
export function toJobId(value: string, where = "id"): JobId {
  if (typeof value !== "string" || !JOB_ID_PATTERN.test(value)) {
    throw new ValidationError(
      `${where} ${JSON.stringify(value)} is not a job id: 15 characters of [a-z0-9]`,
      {
        issues: [{ path: where.split("."), message: "expected 15 characters of [a-z0-9]" }],
      },
    );
  }
  return value as JobId;
}
