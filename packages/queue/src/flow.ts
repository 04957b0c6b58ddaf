/**
 * Flow control (issue 22 items 4-6), shared by the queue and the memory backend: the checks of a
 * group, a weight and limits, and the gate a claim passes each ready job through. The PocketBase
 * backend's claim route holds the same rules in JavaScript (pb_hooks/nxs-queue.pb.js, `flowGate`):
 * a change here is a change there, and the conformance suite runs both.
 */
import { ValidationError } from "@nxs-sync/core";
import { EACH_GROUP, type FlowLimits, type FlowRecord } from "./backend.js";

/** The longest rate window: one day. */
export const MAX_RATE_INTERVAL_MS = 86_400_000;

/** Claims in a rate window: when (ms, the backend's clock) and their weight. */
export type RateEntry = readonly [at: number, weight: number];

/**
 * A rate window keeps at most about this many entries: a claim within `intervalMs / RATE_BUCKETS`
 * of the window's last entry joins it, and the entry takes the later time (it leaves the window
 * later, so the window over-counts, never under-counts: the limit still holds).
 */
export const RATE_BUCKETS = 200;

const invalid = (where: string, message: string): never => {
  throw new ValidationError(`${where} ${message}`, { issues: [{ path: where.split("."), message }] });
};

/**
 * Checks a job's group key.
 * @param group - The group, or undefined.
 * @param where - Where it came from, for the message.
 * @throws ValidationError `schema/invalid` unless 1-200 characters and not `*`.
 */
export function checkJobGroup(group: string | undefined, where = "group"): void {
  if (group === undefined) return;
  if (typeof group !== "string" || group === "" || group.length > 200 || group === EACH_GROUP) {
    invalid(where, `must be a string of 1-200 characters other than "${EACH_GROUP}"`);
  }
}

/**
 * Checks the group of a flow record: `""` (the queue), `"*"` (each group, limits only) or a group.
 * @param group - The group.
 * @param each - Whether `"*"` is allowed (limits: yes; pause: no).
 * @throws ValidationError `schema/invalid` otherwise.
 */
export function checkFlowGroup(group: string, each: boolean): void {
  if (group === "" || (each && group === EACH_GROUP)) return;
  if (group === EACH_GROUP) invalid("group", `"${EACH_GROUP}" has limits only: pause the queue ("") instead`);
  checkJobGroup(group);
}

/**
 * Checks a job's weight.
 * @param weight - The weight, or undefined (1).
 * @param where - Where it came from, for the message.
 * @throws ValidationError `schema/invalid` unless a finite number > 0.
 */
export function checkWeight(weight: number | undefined, where = "weight"): void {
  if (weight === undefined) return;
  if (typeof weight !== "number" || !Number.isFinite(weight) || weight <= 0) {
    invalid(where, `must be a finite number > 0 (got ${String(weight)})`);
  }
}

/**
 * Checks limits before they are stored.
 * @param limits - The limits.
 * @throws ValidationError `schema/invalid` for a concurrency that is not an integer >= 1, a rate
 *   `max` that is not a finite number > 0, or an `intervalMs` outside 1 to 86 400 000.
 */
export function checkFlowLimits(limits: FlowLimits): void {
  if (limits === null || typeof limits !== "object") invalid("limits", "must be an object");
  const c = limits.concurrency;
  if (c !== undefined && (!Number.isInteger(c) || c < 1)) invalid("concurrency", "must be an integer >= 1");
  const r = limits.rate;
  if (r === undefined) return;
  if (typeof r.max !== "number" || !Number.isFinite(r.max) || r.max <= 0) {
    invalid("rate.max", "must be a finite number > 0");
  }
  if (!Number.isInteger(r.intervalMs) || r.intervalMs < 1 || r.intervalMs > MAX_RATE_INTERVAL_MS) {
    invalid("rate.intervalMs", `must be an integer from 1 to ${MAX_RATE_INTERVAL_MS}`);
  }
}

/**
 * Checks a timed pause.
 * @param forMs - The pause's length, or undefined (until resumed).
 * @throws ValidationError `schema/invalid` unless a finite number >= 1.
 */
export function checkPauseMs(forMs: number | undefined): void {
  if (forMs === undefined) return;
  if (typeof forMs !== "number" || !Number.isFinite(forMs) || forMs < 1)
    invalid("forMs", "must be a number >= 1");
}

/** Whether a flow record pauses its queue or group at `now`. */
export const isPaused = (r: FlowRecord | undefined, now: number): boolean =>
  r !== undefined && (r.paused || r.pausedUntil > now);

/** What the gate says of one job. */
export type FlowVerdict =
  /** It may be claimed now. */
  | "ok"
  /** A pause or limit holds it back (it stays where it is). */
  | "held"
  /** Its weight is above its rate limit's whole window: it could never be claimed. */
  | "over-limit";

/** What a claim knows when it starts: the queue's flow records and what is running. */
export interface FlowGateInput {
  /** The backend's clock. */
  readonly now: number;
  /** The queue's flow records (any order). */
  readonly records: readonly FlowRecord[];
  /** Jobs of the queue active under a live lease now, and per group. */
  readonly active: { readonly total: number; readonly byGroup: ReadonlyMap<string, number> };
  /**
   * The rate windows by group (`""`: the queue's), entries oldest first. The gate prunes them and
   * appends to them in place: the caller keeps them (the memory backend) or writes the ones in
   * {@link FlowGate.touched} back (a server's table).
   */
  readonly windows: Map<string, RateEntry[]>;
}

/** The gate of one claim: admits or holds each ready job, and counts the ones it takes. */
export interface FlowGate {
  /** The groups that are held now (for a query to leave their jobs out); the queue's own hold is {@link FlowGate.closed}. */
  heldGroups(): string[];
  /** True when the queue itself admits nothing now (paused, or at its concurrency). */
  closed(): boolean;
  /** Whether a job of `group` and `weight` may be claimed now. */
  admit(group: string | undefined, weight: number): FlowVerdict;
  /** Counts a claimed job (call after `admit` said `ok`). */
  take(group: string | undefined, weight: number): void;
  /** The windows `take` appended to or pruned (by group), to store. */
  readonly touched: Set<string>;
  /** When a held job could be admitted at the earliest (ms from now), when a hold has a known end. */
  waitMs(): number | undefined;
}

/**
 * Creates the gate of one claim.
 * @param input - Records, live counts and rate windows.
 * @returns The gate.
 */
export function createFlowGate(input: FlowGateInput): FlowGate {
  const { now, windows } = input;
  const byGroup = new Map<string, FlowRecord>();
  for (const r of input.records) byGroup.set(r.group, r);
  const queueRecord = byGroup.get("");
  const each = byGroup.get(EACH_GROUP);
  const active = new Map(input.active.byGroup);
  let total = input.active.total;
  const touched = new Set<string>();
  let wait: number | undefined;
  const waitFor = (ms: number): void => {
    const m = Math.max(1, Math.ceil(ms));
    if (wait === undefined || m < wait) wait = m;
  };
  const recordOf = (group: string): FlowRecord | undefined => byGroup.get(group) ?? each;

  /** The window of `key`, pruned to the rate's interval. */
  const windowOf = (key: string, intervalMs: number): RateEntry[] => {
    const w = windows.get(key) ?? [];
    let drop = 0;
    while (drop < w.length && (w[drop] as RateEntry)[0] <= now - intervalMs) drop++;
    if (drop > 0) {
      w.splice(0, drop);
      touched.add(key);
    }
    if (!windows.has(key)) windows.set(key, w);
    return w;
  };

  /** One record's verdict for a job of `weight`, counted under `key` (`""` or the group). */
  const check = (r: FlowRecord | undefined, key: string, weight: number): FlowVerdict => {
    if (r === undefined) return "ok";
    if (r.paused) return "held";
    if (r.pausedUntil > now) {
      waitFor(r.pausedUntil - now);
      return "held";
    }
    if (r.concurrency !== undefined && (key === "" ? total : (active.get(key) ?? 0)) >= r.concurrency)
      return "held";
    const rate = r.rate;
    if (rate === undefined) return "ok";
    if (weight > rate.max) return "over-limit";
    const w = windowOf(key, rate.intervalMs);
    let sum = 0;
    for (const e of w) sum += e[1];
    if (sum + weight <= rate.max) return "ok";
    // The first time enough of the window has left it for this weight.
    let freed = 0;
    for (const e of w) {
      freed += e[1];
      if (sum - freed + weight <= rate.max) {
        waitFor(e[0] + rate.intervalMs - now);
        break;
      }
    }
    return "held";
  };

  /** Counts a claim in the window of `key` (joining the last entry when it is recent: {@link RATE_BUCKETS}). */
  const append = (key: string, intervalMs: number, weight: number): void => {
    const w = windowOf(key, intervalMs);
    const last = w[w.length - 1];
    if (last !== undefined && last[0] >= now - intervalMs / RATE_BUCKETS)
      w[w.length - 1] = [now, last[1] + weight];
    else w.push([now, weight]);
    touched.add(key);
  };

  const admit = (group: string | undefined, weight: number): FlowVerdict => {
    const q = check(queueRecord, "", weight);
    if (q !== "ok" || group === undefined) return q;
    return check(recordOf(group), group, weight);
  };

  return {
    touched,
    closed: () => admit(undefined, Number.MIN_VALUE) === "held",
    heldGroups() {
      const groups = new Set<string>();
      for (const g of byGroup.keys()) if (g !== "" && g !== EACH_GROUP) groups.add(g);
      if (each !== undefined) {
        for (const g of active.keys()) groups.add(g);
        for (const g of windows.keys()) if (g !== "") groups.add(g);
      }
      return [...groups].filter((g) => check(recordOf(g), g, Number.MIN_VALUE) !== "ok");
    },
    admit,
    take(group, weight) {
      total++;
      const rq = queueRecord?.rate;
      if (rq !== undefined) append("", rq.intervalMs, weight);
      if (group === undefined) return;
      active.set(group, (active.get(group) ?? 0) + 1);
      const rg = recordOf(group)?.rate;
      if (rg !== undefined) append(group, rg.intervalMs, weight);
    },
    waitMs: () => wait,
  };
}
