/**
 * The result of a chaos run and its text form: what was written, acknowledged and lost, whether
 * and when the fleet converged after the heal, the schedule, and how to run the seed again.
 * @module
 */
import { describeFault, type Fault } from "./schedule.js";

/** An acknowledged write missing from a final state. */
export interface ReportedLoss {
  /** The op id (`<gateway>-<n>`). */
  readonly op: string;
  /** Where it went missing (a gateway or a server's rebuild). */
  readonly where: readonly string[];
  readonly why: string;
  /** The write's gateway, storage lineage, seq and HLC. */
  readonly gateway: string;
  readonly lineage: number;
  readonly seq: number;
  readonly hlc: string;
}

/** The outcome of one chaos run. */
export interface ChaosReport {
  readonly seed: number;
  readonly durationMs: number;
  readonly emptyRestarts: boolean;
  readonly schedule: readonly Fault[];
  /** Fault actions that failed (a restart that did not come back, …). */
  readonly actionErrors: readonly string[];
  /** Writes the gateways reported applying. */
  readonly written: number;
  /** Of those, the ones a `pushed` event acknowledged. */
  readonly acked: number;
  /** Acknowledged writes missing from some final state (0 to pass). */
  readonly lost: number;
  readonly losses: readonly ReportedLoss[];
  /** Values no write made (0 to pass). */
  readonly phantoms: readonly string[];
  /** Acks of seqs no reported write had (0 to pass). */
  readonly unknownAcks: number;
  /** Every gateway and every server's rebuild reached the same state hash in time. */
  readonly converged: boolean;
  /** From the end of the heal to convergence. */
  readonly convergeMs: number | undefined;
  /** The last state hash seen per gateway and per server rebuild. */
  readonly hashes: Readonly<Record<string, string>>;
  /** The last status seen per gateway: replica state, pending changes, gaps. */
  readonly gatewayStatus: Readonly<Record<string, string>>;
  /** Counts of reported events (`<who> <kind> <code>`), e.g. rejected changes. */
  readonly events: Readonly<Record<string, number>>;
  /** A few example event texts. */
  readonly eventSamples: readonly string[];
  /** The command that runs this seed again. */
  readonly rerun: string;
  /** converged, nothing lost, no phantom, no unknown ack. */
  readonly passed: boolean;
}

/** A tally of events by key, with the first few texts kept as samples. */
export interface EventTally {
  add(key: string, text: string): void;
  counts(): Readonly<Record<string, number>>;
  samples(): readonly string[];
}

/**
 * Creates an empty {@link EventTally}.
 * @param maxSamples - How many texts to keep per key (default 2).
 * @returns The tally.
 */
export function createEventTally(maxSamples = 2): EventTally {
  const counts: Record<string, number> = {};
  const samples: string[] = [];
  return {
    add(key, text) {
      counts[key] = (counts[key] ?? 0) + 1;
      if ((counts[key] ?? 0) <= maxSamples) samples.push(`${key}: ${text.slice(0, 300)}`);
    },
    counts: () => ({ ...counts }),
    samples: () => [...samples],
  };
}

/**
 * Groups losses by writer (gateway and storage lineage) and by where they are missing: one line
 * per group with the count and the seq range, e.g. `g1 lineage 1: 20 lost (seqs 3..71) in g1, g2`.
 * @param losses - A report's losses.
 * @returns One line per group, largest first.
 */
export function summarizeLosses(losses: readonly ReportedLoss[]): string[] {
  const groups = new Map<string, { n: number; min: number; max: number }>();
  for (const loss of losses) {
    const key = `${loss.gateway} lineage ${loss.lineage}: missing in ${loss.where.join(", ")}`;
    const g = groups.get(key) ?? { n: 0, min: loss.seq, max: loss.seq };
    groups.set(key, { n: g.n + 1, min: Math.min(g.min, loss.seq), max: Math.max(g.max, loss.seq) });
  }
  return [...groups]
    .sort(([, a], [, b]) => b.n - a.n)
    .map(([key, g]) => `${g.n} lost, seqs ${g.min}..${g.max}, ${key}`);
}

/**
 * The text of a report: a summary line, then losses, phantoms, hashes, events and the schedule.
 * @param report - A chaos run's report.
 * @param options - `schedule: false` leaves the schedule out.
 * @returns Lines joined with `\n`.
 */
export function formatChaosReport(
  report: ChaosReport,
  options: { readonly schedule?: boolean } = {},
): string {
  const converge = report.converged ? `${report.convergeMs} ms` : "NOT converged";
  const lines = [
    `[chaos] seed ${report.seed} (${report.durationMs / 1000} s, ${report.schedule.length} faults, empty restarts ${report.emptyRestarts ? "on" : "off"}): ` +
      `written ${report.written}, acked ${report.acked}, lost ${report.lost}, converged ${converge}` +
      ` → ${report.passed ? "PASS" : "FAIL"}`,
  ];
  for (const line of summarizeLosses(report.losses)) lines.push(`  ${line}`);
  for (const loss of report.losses.slice(0, 20)) {
    lines.push(
      `  lost ${loss.op} (${loss.gateway} lineage ${loss.lineage} seq ${loss.seq} hlc ${loss.hlc}) in ${loss.where.join(", ")}: ${loss.why}`,
    );
  }
  if (report.losses.length > 20) lines.push(`  … ${report.losses.length - 20} more losses`);
  for (const p of report.phantoms.slice(0, 10)) lines.push(`  phantom: ${p}`);
  if (report.unknownAcks > 0) lines.push(`  acks of unknown seqs: ${report.unknownAcks}`);
  for (const e of report.actionErrors) lines.push(`  fault action failed: ${e}`);
  if (!report.passed || !report.converged) {
    for (const [g, status] of Object.entries(report.gatewayStatus)) lines.push(`  ${g}: ${status}`);
    lines.push(
      `  hashes: ${Object.entries(report.hashes)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
  }
  const events = Object.entries(report.events);
  if (events.length > 0) lines.push(`  events: ${events.map(([k, n]) => `${k} ×${n}`).join(", ")}`);
  if (!report.passed) for (const s of report.eventSamples) lines.push(`    ${s}`);
  if (options.schedule !== false) {
    lines.push("  schedule:");
    for (const f of report.schedule) lines.push(`    ${describeFault(f)}`);
  }
  if (!report.passed) lines.push(`  rerun: ${report.rerun}`);
  return lines.join("\n");
}
