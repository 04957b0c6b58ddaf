/**
 * Checks of what scheduling adds to a job (priority, dedupe key) and to a schedule, shared by the
 * queue and both backends, and the deterministic job id of one cron tick.
 */
import { ValidationError } from "@nxs-sync/core";
import { Cron } from "croner";
import type { ScheduleSpec } from "./backend.js";
import { type DedupeMode, type JobId, type JobKey, MAX_PRIORITY } from "./job.js";

/** Every dedupe mode, in the order the docs list them. */
export const DEDUPE_MODES: readonly DedupeMode[] = Object.freeze([
  "simple",
  "throttle",
  "debounce",
  "singleton",
]);
/** The form of a schedule id. */
export const SCHEDULE_ID_PATTERN: RegExp = /^[A-Za-z0-9_.:-]{1,100}$/;

const invalid = (where: string, message: string): never => {
  throw new ValidationError(`${where} ${message}`, { issues: [{ path: where.split("."), message }] });
};

/**
 * Checks a job's priority.
 * @param value - The priority, or undefined.
 * @param where - Where it came from, for the message.
 * @throws ValidationError `schema/invalid` unless an integer from 0 to {@link MAX_PRIORITY}.
 */
export function checkPriority(value: number | undefined, where = "priority"): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 0 || value > MAX_PRIORITY) {
    invalid(where, `must be an integer from 0 to ${MAX_PRIORITY} (got ${String(value)})`);
  }
}

/**
 * Checks a dedupe key.
 * @param key - The key and its mode.
 * @param where - Where it came from, for the message.
 * @throws ValidationError `schema/invalid` for an empty or long key, an unknown mode, or a
 *   `throttle`/`debounce` without a `ttlMs` of at least 1.
 */
export function checkJobKey(key: JobKey, where = "key"): void {
  if (typeof key?.key !== "string" || key.key.length === 0 || key.key.length > 200) {
    invalid(`${where}.key`, "must be a string of 1-200 characters");
  }
  if (!DEDUPE_MODES.includes(key.mode)) invalid(`${where}.mode`, `must be one of ${DEDUPE_MODES.join(", ")}`);
  if (key.mode === "throttle" || key.mode === "debounce") {
    if (typeof key.ttlMs !== "number" || !Number.isFinite(key.ttlMs) || key.ttlMs < 1) {
      invalid(`${where}.ttlMs`, `must be a number >= 1 for ${key.mode}`);
    }
  }
}

/**
 * Parses a cron expression in a time zone (croner), paused: it computes ticks, it runs nothing.
 * @param cron - The expression.
 * @param tz - An IANA time zone (default UTC).
 * @returns The parsed pattern.
 * @throws ValidationError `schema/invalid` for a bad expression or time zone.
 */
export function parseCron(cron: string, tz?: string): Cron {
  try {
    // croner takes an unknown zone without a word (and fails at its first tick): Intl checks it.
    if (tz !== undefined) new Intl.DateTimeFormat("en", { timeZone: tz });
    return new Cron(cron, { timezone: tz ?? "UTC", paused: true });
  } catch (err) {
    return invalid("cron", `${JSON.stringify(cron)}${tz ? ` (${tz})` : ""}: ${(err as Error).message}`);
  }
}

/**
 * Checks a schedule before it is stored.
 * @param spec - The schedule.
 * @throws ValidationError `schema/invalid` for a bad id, expression, time zone, limit or end date.
 */
export function checkScheduleSpec(spec: ScheduleSpec): void {
  if (typeof spec.id !== "string" || !SCHEDULE_ID_PATTERN.test(spec.id)) {
    invalid("id", "must be 1-100 characters of [A-Za-z0-9_.:-]");
  }
  if (typeof spec.queue !== "string" || spec.queue === "") invalid("queue", "must be a non-empty string");
  parseCron(spec.cron, spec.tz);
  if (spec.limit !== undefined && (!Number.isInteger(spec.limit) || spec.limit < 1)) {
    invalid("limit", "must be an integer >= 1");
  }
  if (spec.endDate !== undefined && (!Number.isFinite(spec.endDate) || spec.endDate < 0)) {
    invalid("endDate", "must be a time in ms since the epoch");
  }
  if (!Number.isInteger(spec.job?.maxAttempts) || spec.job.maxAttempts < 1) {
    invalid("job.maxAttempts", "must be an integer >= 1");
  }
  checkPriority(spec.job.priority, "job.priority");
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * The job id of one tick of one schedule: the same on every process and server (a hash of queue,
 * schedule id and tick time), so schedulers that fire the same tick converge to one job.
 * @param queue - The queue's name.
 * @param scheduleId - The schedule's id.
 * @param tick - The tick's time (ms since the epoch).
 * @returns 15 characters of `[a-z0-9]`.
 * @example
 * ```ts
 * const a = await tickJobId("reports", "nightly", Date.UTC(2026, 0, 1));
 * const b = await tickJobId("reports", "nightly", Date.UTC(2026, 0, 1));
 * if (a !== b) throw new Error("not deterministic");
 * ```
 */
export async function tickJobId(queue: string, scheduleId: string, tick: number): Promise<JobId> {
  return hashId(`nxs-cron\n${queue}\n${scheduleId}\n${tick}`);
}

/**
 * The record id of a schedule on a PocketBase server: a hash of queue and schedule id, the same on
 * every server, so the replicator merges two servers' copies into one record.
 * @param queue - The queue's name.
 * @param scheduleId - The schedule's id.
 * @returns 15 characters of `[a-z0-9]`.
 */
export async function scheduleRecordId(queue: string, scheduleId: string): Promise<string> {
  return hashId(`nxs-schedule\n${queue}\n${scheduleId}`);
}

async function hashId(text: string): Promise<JobId> {
  const data = new TextEncoder().encode(text);
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", data));
  let id = "";
  // 2 bytes per character: the bias of `% 36` is below 0.06%.
  for (let i = 0; i < 15; i++)
    id += ALPHABET[((digest[2 * i] as number) * 256 + (digest[2 * i + 1] as number)) % 36];
  return id as JobId;
}
