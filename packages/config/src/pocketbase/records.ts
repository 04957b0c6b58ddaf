/**
 * The edge of the PocketBase backend: a version or rollout record as the server answers it (the
 * records API, realtime, the hook routes) decoded into the port's types with zod, and the routes'
 * answers. A record that does not decode is quarantined by the caller (never delivered as a
 * version).
 */
import type { Json } from "@nxs-sync/core";
import { z } from "zod";
import {
  type RolloutRecord,
  rolloutRecordSchema,
  type StoredVersion,
  storedVersionSchema,
} from "../version.js";

/** What decoding one record gives: the value, or why it is refused. */
export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string };

const issuesOf = (error: z.ZodError): string =>
  error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join(".") || "(record)"}: ${i.message}`)
    .join("; ");

const isObject = (raw: unknown): raw is Record<string, unknown> =>
  typeof raw === "object" && raw !== null && !Array.isArray(raw);

/**
 * `storedVersionSchema` for a record parsed from the server's JSON: its `value` is JSON by
 * construction (it came out of `JSON.parse`), so it is required present but not walked again (a
 * walk of a 1 KB value was most of a decode's time, and a put decodes its answer and its own
 * realtime event).
 */
const wireVersionSchema = storedVersionSchema.extend({
  value: z.custom<Json>((v) => v !== undefined, {
    message: "Invalid input: expected JSON, received undefined",
  }),
});

/**
 * Decodes a version record: PocketBase's empty values of the optional fields (`rollbackOf` 0,
 * `rollout` null) become absent, the storage fields (`compactedAt`, `created`, `updated`,
 * `collectionId`...) are dropped, and the rest must match `storedVersionSchema` (the value is taken
 * as the JSON it was parsed from: not walked again).
 * @param raw - A record as the server answered it (parsed from JSON).
 * @returns The version, or the reason it is malformed (the failing fields).
 */
export function decodeVersionRecord(raw: unknown): Decoded<StoredVersion> {
  if (!isObject(raw)) return { ok: false, reason: "not an object" };
  const { rollbackOf, rollout, ...rest } = raw;
  const candidate: Record<string, unknown> = { ...rest };
  if (rollbackOf !== 0 && rollbackOf !== null && rollbackOf !== undefined) candidate.rollbackOf = rollbackOf;
  if (rollout !== null && rollout !== undefined) candidate.rollout = rollout;
  const r = wireVersionSchema.safeParse(candidate);
  if (!r.success) return { ok: false, reason: `malformed version record: ${issuesOf(r.error)}` };
  if (r.data.compacted && r.data.value !== null) {
    return { ok: false, reason: "malformed version record: value: a compacted version holds no value" };
  }
  return { ok: true, value: r.data as StoredVersion };
}

/**
 * Decodes a rollout record (`rolloutRecordSchema`; `rev` and the storage fields dropped).
 * @param raw - A record as the server answered it.
 * @returns The rollout, or the reason it is malformed.
 */
export function decodeRolloutRecord(raw: unknown): Decoded<RolloutRecord> {
  if (!isObject(raw)) return { ok: false, reason: "not an object" };
  const r = rolloutRecordSchema.safeParse(raw);
  if (!r.success) return { ok: false, reason: `malformed rollout record: ${issuesOf(r.error)}` };
  return { ok: true, value: r.data };
}

/** A record as the routes and the records API carry it (decoded later, one by one). */
const rawRecord = z.record(z.string(), z.unknown());

export const putAnswer = z.object({ version: rawRecord });
export const headsAnswer = z.object({ versions: z.array(rawRecord) });
export const compactAnswer = z.object({ compacted: z.number().int().min(0) });
export const rolloutAnswer = z.object({ rollout: rawRecord });
export const originAnswer = z.object({ origin: z.string().min(1) });

/** The body of a refused route call: 400 `config/invalid-value` (naming the field), 409 `config/conflict`. */
export const refusalSchema = z.object({
  code: z.string(),
  message: z.string(),
  field: z.string().optional(),
  /** With `config/conflict`: the head the put lost to (null: the key has no version). */
  current: rawRecord.nullable().optional(),
});
