/**
 * The fault schedule of a chaos run, drawn from a seed: what fails, when, and for how long.
 * The same seed and targets give the same schedule (only the timing of the writes around it
 * depends on the machine).
 * @module
 */
import { createSeededRandom, type Random, seedFromString } from "@nxs-sync/core";

/** The kinds of faults, as a const object plus a derived union. */
export const FaultKind = {
  /** SIGKILL of a server; restarted on its data at the end of the fault. */
  ServerKill: "server-kill",
  /** SIGSTOP of a server (it hangs instead of failing); SIGCONT at the end. */
  ServerFreeze: "server-freeze",
  /** SIGKILL of a gateway (no `stop()`); restarted from its file storage at the end. */
  GatewayKill: "gateway-kill",
  /** SIGKILL of a gateway; restarted with the same replica id on EMPTY storage at the end. */
  GatewayKillEmpty: "gateway-kill-empty",
  /** SIGSTOP of a gateway; SIGCONT at the end. */
  GatewayFreeze: "gateway-freeze",
  /** A link cut with RST to both sides; new connections refused until the end. */
  LinkReset: "link-reset",
  /** A link cut with FIN to both sides; new connections refused until the end. */
  LinkClose: "link-close",
  /** A link that silently stops carrying bytes (nothing closed) until the end. */
  LinkHold: "link-hold",
} as const;
/** The union of fault kinds. */
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

/** One scheduled fault. */
export interface Fault {
  /** Start, in ms after the run's start. */
  readonly atMs: number;
  /** How long it lasts before its end action (restart, resume, heal). */
  readonly durationMs: number;
  readonly kind: FaultKind;
  /** The name of the server, gateway or link it hits. */
  readonly target: string;
}

/** The targets a schedule can hit, by name. */
export interface ChaosTargets {
  readonly servers: readonly string[];
  readonly gateways: readonly string[];
  /** Links (TCP proxies): gateway → server and replicator → server. */
  readonly links: readonly string[];
}

/** Options of {@link generateFaultSchedule}. */
export interface FaultScheduleOptions {
  readonly seed: number;
  /** Length of the run; every fault ends by then. */
  readonly durationMs: number;
  readonly targets: ChaosTargets;
  /** Include {@link FaultKind.GatewayKillEmpty} (default true). */
  readonly emptyRestarts?: boolean;
  /** Fault kinds never to draw (to isolate a finding: e.g. a run without gateway kills). */
  readonly exclude?: readonly FaultKind[];
  /** Mean time between two fault starts (default 2500 ms). */
  readonly meanGapMs?: number;
  /** Shortest and longest fault (default 1000 and 5000 ms). */
  readonly minFaultMs?: number;
  readonly maxFaultMs?: number;
  /** No fault starts before this (default 2000 ms: the fleet writes undisturbed first). */
  readonly quietStartMs?: number;
}

const WEIGHTS: readonly (readonly [FaultKind, number])[] = [
  [FaultKind.ServerKill, 2],
  [FaultKind.ServerFreeze, 2],
  [FaultKind.GatewayKill, 2],
  [FaultKind.GatewayKillEmpty, 1],
  [FaultKind.GatewayFreeze, 1],
  [FaultKind.LinkReset, 1],
  [FaultKind.LinkClose, 1],
  [FaultKind.LinkHold, 2],
];

/** A gateway restart takes a while (a new process): keep its next fault clear of it. */
const TARGET_REST_MS = 1500;

/**
 * The kind of target a fault kind hits.
 * @param kind - A fault kind.
 * @returns `server`, `gateway` or `link`.
 */
export function faultTargetType(kind: FaultKind): "server" | "gateway" | "link" {
  if (kind === FaultKind.ServerKill || kind === FaultKind.ServerFreeze) return "server";
  if (kind === FaultKind.LinkReset || kind === FaultKind.LinkClose || kind === FaultKind.LinkHold) {
    return "link";
  }
  return "gateway";
}

const between = (rnd: Random, min: number, max: number): number =>
  min + Math.floor(rnd.next() * (max - min + 1));

/** The kind whose cumulative weight first exceeds `roll` (a number in [0, total weight)). */
function pickWeighted(kinds: readonly (readonly [FaultKind, number])[], roll: number): FaultKind | undefined {
  let left = roll;
  for (const [kind, weight] of kinds) {
    left -= weight;
    if (left < 0) return kind;
  }
  return kinds[kinds.length - 1]?.[0];
}

/**
 * Draws a fault schedule from a seed. Faults overlap freely across targets (a server frozen while a
 * gateway is dead and a link is held), never on one target; every fault ends by `durationMs`.
 * @param options - Seed, run length, targets, fault mix and timings.
 * @returns The faults, by start time.
 * @example
 * ```ts
 * const faults = generateFaultSchedule({
 *   seed: 1,
 *   durationMs: 60_000,
 *   targets: { servers: ["primary", "secondary"], gateways: ["g1", "g2"], links: ["g1>primary"] },
 * });
 * ```
 */
export function generateFaultSchedule(options: FaultScheduleOptions): Fault[] {
  const rnd = createSeededRandom(seedFromString(`${options.seed}/schedule`));
  const meanGap = options.meanGapMs ?? 2500;
  const minFault = options.minFaultMs ?? 1000;
  const maxFault = options.maxFaultMs ?? 5000;
  const kinds = WEIGHTS.filter(([kind]) => {
    if (kind === FaultKind.GatewayKillEmpty && options.emptyRestarts === false) return false;
    if (options.exclude?.includes(kind)) return false;
    const type = faultTargetType(kind);
    return (
      (type === "server"
        ? options.targets.servers
        : type === "gateway"
          ? options.targets.gateways
          : options.targets.links
      ).length > 0
    );
  });
  const total = kinds.reduce((sum, [, w]) => sum + w, 0);
  const busyUntil = new Map<string, number>();
  const faults: Fault[] = [];
  let at = options.quietStartMs ?? 2000;
  for (;;) {
    at += between(rnd, Math.round(meanGap / 2), Math.round((meanGap * 3) / 2));
    const durationMs = between(rnd, minFault, maxFault);
    if (at + minFault > options.durationMs) break;
    if (at + durationMs > options.durationMs) continue;
    const kind = pickWeighted(kinds, rnd.next() * total);
    if (kind === undefined) break;
    const type = faultTargetType(kind);
    const pool =
      type === "server"
        ? options.targets.servers
        : type === "gateway"
          ? options.targets.gateways
          : options.targets.links;
    const free = pool.filter((t) => (busyUntil.get(t) ?? 0) <= at);
    const target = free[rnd.int(free.length)];
    if (target === undefined) continue;
    busyUntil.set(target, at + durationMs + TARGET_REST_MS);
    faults.push({ atMs: at, durationMs, kind, target });
  }
  return faults;
}

/**
 * One line for a fault, for reports and logs.
 * @param fault - A scheduled fault.
 * @returns e.g. `12.3s +2.1s server-freeze primary`.
 */
export function describeFault(fault: Fault): string {
  return `${(fault.atMs / 1000).toFixed(1)}s +${(fault.durationMs / 1000).toFixed(1)}s ${fault.kind} ${fault.target}`;
}
