/**
 * Alert records: one per check, node, series and start (its id derived from the four, so every
 * evaluator writes the same record), `firing` until resolved; `resolved` wins everywhere.
 */
import { deterministicId } from "../hash.js";

/** An alert's states, in the order they move (const object + union). */
export const AlertState = { Firing: "firing", Resolved: "resolved" } as const;
/** An alert's state. */
export type AlertState = (typeof AlertState)[keyof typeof AlertState];

/** One alert. */
export interface Alert {
  /** Derived from check, node, series and start ({@link alertId}). */
  readonly id: string;
  readonly check: string;
  readonly node: string;
  /** The series key (`node_over_cap{resource="memory"}`), or `""` for an absence. */
  readonly series: string;
  readonly state: AlertState;
  readonly severity: string;
  /** Start of the first window of the breach (ms): the same for every evaluator. */
  readonly startedAt: number;
  /** Start of the first window of the recovery (ms), 0 while firing. */
  readonly endedAt: number;
  /** The value that fired it (the breach run's last), NaN for an absence. */
  readonly value: number;
  readonly message: string;
}

/**
 * The id of an alert.
 * @param check - Check name.
 * @param node - Node.
 * @param series - Series key (`""` for an absence).
 * @param startedAt - Start of the breach.
 * @returns A 15-character PocketBase id.
 */
export function alertId(check: string, node: string, series: string, startedAt: number): string {
  return deterministicId(`alert|${check}|${node}|${series}|${startedAt}`);
}

const STATES = new Set<string>(Object.values(AlertState));

/**
 * The order of two versions of an alert, the greater wins everywhere: a resolution over the firing
 * alert, and of two resolutions the earlier end (an evaluator missing windows can only see the
 * recovery start later: a gap breaks a run).
 * @param alert - The alert.
 * @returns 1 while firing; `2^51 - endedAt` once resolved.
 */
export function alertRev(alert: Pick<Alert, "state" | "endedAt">): number {
  return alert.state === AlertState.Resolved ? 2 ** 51 - alert.endedAt : 1;
}

/**
 * Decodes a stored alert (extra fields ignored).
 * @param raw - The record.
 * @returns The alert, or undefined when it is malformed or its id is not its own.
 */
export function decodeAlert(raw: unknown): Alert | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const str = (k: string) => (typeof r[k] === "string" ? (r[k] as string) : undefined);
  const num = (k: string) =>
    typeof r[k] === "number" && Number.isFinite(r[k]) ? (r[k] as number) : undefined;
  const id = str("id");
  const check = str("check");
  const node = str("node");
  const series = str("series");
  const state = str("state");
  const startedAt = num("startedAt");
  const endedAt = num("endedAt");
  if (
    id === undefined ||
    check === undefined ||
    node === undefined ||
    series === undefined ||
    state === undefined ||
    !STATES.has(state) ||
    startedAt === undefined ||
    endedAt === undefined
  ) {
    return undefined;
  }
  if (id !== alertId(check, node, series, startedAt)) return undefined;
  if ((state === AlertState.Firing) !== (endedAt === 0)) return undefined;
  // A stored record carries its rev: it must be the one of its state and end (lww orders by it).
  if (r.rev !== undefined && r.rev !== alertRev({ state: state as AlertState, endedAt })) return undefined;
  return {
    id,
    check,
    node,
    series,
    state: state as AlertState,
    severity: str("severity") ?? "warning",
    startedAt,
    endedAt,
    value: num("value") ?? Number.NaN,
    message: str("message") ?? "",
  };
}
