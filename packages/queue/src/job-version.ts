/**
 * The version of a job record: how two copies of one job on two servers reconcile. A copy with the
 * greater version wins whole (the replicator's `lww` rule on the stored `version` field). The order
 * is lexicographic over
 *
 *   generation (redrive) > attempt (claims) > epoch (claim authority) > phase > rev (writes)
 *
 * so a later attempt beats an earlier one whatever their states, an attempt claimed under a newer
 * authority epoch fences the deposed authority's copy of the same attempt, and within one attempt a
 * settled copy (`completed`, `failed`, `waiting` for a retry) beats the `active` one: `active` never
 * overwrites `completed`. Pure functions; property-tested in test/unit/job-version.test.ts.
 */
import { canonicalJson, type Json } from "@nxs-sync/core";
import { type JobRecord, JobState } from "./job.js";

/** Phases of one attempt, in the order they happen. */
export const JobPhase = {
  /** Enqueued, not claimed yet in this generation (attempt 0). */
  New: 0,
  /** Claimed: a worker holds the lease. */
  Active: 1,
  /** The attempt ended: waiting for a retry, or terminal. */
  Settled: 2,
  /** Cancelled by an operator while waiting: beats the settled copy of the same attempt. */
  Cancelled: 3,
} as const;
/** A phase of one attempt. */
export type JobPhase = (typeof JobPhase)[keyof typeof JobPhase];

/** The parts of a job's version. */
export interface JobVersionParts {
  readonly generation: number;
  readonly attempt: number;
  readonly epoch: number;
  readonly phase: JobPhase;
  readonly rev: number;
}

const WIDTHS = [4, 6, 8, 1, 9] as const;
const MAXES = WIDTHS.map((w) => 10 ** w - 1);

/**
 * The phase a stored job is in.
 * @param job - State and attempt of a job.
 * @returns Its phase.
 */
export function phaseOf(job: Pick<JobRecord, "state" | "attempt">): JobPhase {
  switch (job.state) {
    case JobState.Active:
      return JobPhase.Active;
    case JobState.Cancelled:
      return JobPhase.Cancelled;
    case JobState.Waiting:
      return job.attempt === 0 ? JobPhase.New : JobPhase.Settled;
    default:
      return JobPhase.Settled;
  }
}

/**
 * Encodes a version as a fixed-width string whose string order is the version order.
 * @param parts - The parts; each a non-negative integer within its width (generation < 10^4,
 *   attempt < 10^6, epoch < 10^8, rev < 10^9).
 * @returns E.g. `0000.000002.00000001.1.000000007`.
 */
export function encodeJobVersion(parts: JobVersionParts): string {
  const values = [parts.generation, parts.attempt, parts.epoch, parts.phase, parts.rev];
  return values
    .map((v, i) => {
      const n = Math.min(MAXES[i] as number, Math.max(0, Math.trunc(v)));
      return String(n).padStart(WIDTHS[i] as number, "0");
    })
    .join(".");
}

/**
 * Decodes a version string.
 * @param version - What {@link encodeJobVersion} made.
 * @returns The parts, or undefined when the string has another form.
 */
export function decodeJobVersion(version: string): JobVersionParts | undefined {
  const m = /^(\d{4})\.(\d{6})\.(\d{8})\.([0-3])\.(\d{9})$/.exec(version);
  if (m === null) return undefined;
  return {
    generation: Number(m[1]),
    attempt: Number(m[2]),
    epoch: Number(m[3]),
    phase: Number(m[4]) as JobPhase,
    rev: Number(m[5]),
  };
}

/**
 * The version of a stored job.
 * @param job - The job.
 * @returns Its encoded version.
 */
export function jobVersion(
  job: Pick<JobRecord, "generation" | "attempt" | "epoch" | "state" | "rev">,
): string {
  return encodeJobVersion({
    generation: job.generation,
    attempt: job.attempt,
    epoch: job.epoch,
    phase: phaseOf(job),
    rev: job.rev,
  });
}

/**
 * Which of two copies of one job wins: the greater version; on a tie (two writers of one epoch,
 * which a healthy fleet never has) the greater canonical JSON, so every server picks the same.
 * Commutative, associative and idempotent.
 * @param a - One copy.
 * @param b - The other.
 * @returns The winner.
 */
export function mergeJobCopies<
  J extends Pick<JobRecord, "generation" | "attempt" | "epoch" | "state" | "rev">,
>(a: J, b: J): J {
  const va = jobVersion(a);
  const vb = jobVersion(b);
  if (va !== vb) return vb > va ? b : a;
  return canonicalJson(b as unknown as Json) > canonicalJson(a as unknown as Json) ? b : a;
}
