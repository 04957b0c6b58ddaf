/**
 * Runs a fault schedule against a fleet of real processes while its gateways write, heals
 * everything, waits for convergence, and checks the final states against the model.
 * @module
 */
import { createHash } from "node:crypto";
import { canonicalJson, type Json } from "@nxs-sync/core";
import type { TcpProxy } from "../tcp-proxy.js";
import type { ChaosGateway } from "./gateway-process.js";
import type { ChaosModel } from "./model.js";
import type { ChaosReport, EventTally, ReportedLoss } from "./report.js";
import { type Fault, FaultKind, generateFaultSchedule } from "./schedule.js";
import { type ChaosDocState, createChaosWorkload } from "./workload.js";

/** A server the schedule can kill and freeze (a `PocketBaseServer` is one). */
export interface ChaosServer {
  readonly name: string;
  readonly stopped: boolean;
  kill(): Promise<void>;
  restart(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
}

/** A link the schedule can cut and hold. */
export interface ChaosLink {
  readonly name: string;
  readonly proxy: TcpProxy;
}

/** A final state and where it was read. */
export interface ObservedState {
  readonly name: string;
  readonly state: ChaosDocState;
}

/** What a chaos run drives: the targets, and a way to read the doc as each server holds it. */
export interface ChaosFleet {
  readonly servers: readonly ChaosServer[];
  readonly gateways: readonly ChaosGateway[];
  readonly links: readonly ChaosLink[];
  /** The doc rebuilt from each server alone (a fresh replica that pulls everything), named by server. */
  rebuild(): Promise<readonly ObservedState[]>;
}

/** Options of {@link runChaos}. */
export interface RunChaosOptions {
  readonly fleet: ChaosFleet;
  /** Fed by the fleet's gateways. */
  readonly model: ChaosModel;
  /** Fed by the fleet (gateway events, replicator errors). */
  readonly events: EventTally;
  readonly seed: number;
  /** How long the gateways write under faults. */
  readonly durationMs: number;
  /** Schedule restarts on empty storage (default true). */
  readonly emptyRestarts?: boolean;
  /** Fault kinds never to draw (default none). */
  readonly exclude?: readonly FaultKind[];
  /** Each gateway writes one op every this many ms (default 100). */
  readonly writeIntervalMs?: number;
  /** How long after the heal the fleet may take to converge (default 30 000 ms). */
  readonly convergeTimeoutMs?: number;
  /** The command that reruns this seed, for the report. */
  readonly rerun: string;
  /** Progress lines (fault starts and ends, heal, convergence). */
  readonly log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * A short hash of a state (SHA-256 of its canonical JSON).
 * @param state - A doc state.
 * @returns 12 hex chars.
 */
export function hashChaosState(state: unknown): string {
  return createHash("sha256")
    .update(canonicalJson(state as Json))
    .digest("hex")
    .slice(0, 12);
}

/** The start and end actions of a fault. */
function faultActions(fleet: ChaosFleet, fault: Fault): { begin(): Promise<void>; end(): Promise<void> } {
  const find = <T extends { readonly name: string }>(list: readonly T[]): T => {
    const found = list.find((x) => x.name === fault.target);
    if (!found) throw new Error(`no target ${fault.target} for ${fault.kind}`);
    return found;
  };
  switch (fault.kind) {
    case FaultKind.ServerKill: {
      const s = find(fleet.servers);
      return { begin: () => s.kill(), end: () => s.restart() };
    }
    case FaultKind.ServerFreeze: {
      const s = find(fleet.servers);
      return { begin: () => s.pause(), end: () => s.resume() };
    }
    case FaultKind.GatewayKill:
    case FaultKind.GatewayKillEmpty: {
      const g = find(fleet.gateways);
      const empty = fault.kind === FaultKind.GatewayKillEmpty;
      return { begin: () => g.kill(), end: () => g.restart({ empty }) };
    }
    case FaultKind.GatewayFreeze: {
      const g = find(fleet.gateways);
      return { begin: async () => g.pause(), end: async () => g.resume() };
    }
    case FaultKind.LinkReset:
    case FaultKind.LinkClose: {
      const l = find(fleet.links);
      const mode = fault.kind === FaultKind.LinkReset ? "reset" : "close";
      return { begin: async () => l.proxy.cut(mode), end: async () => l.proxy.heal() };
    }
    case FaultKind.LinkHold: {
      const l = find(fleet.links);
      return { begin: async () => l.proxy.hold(), end: async () => l.proxy.heal() };
    }
  }
}

/** Ends every fault, whatever state the schedule left: servers up, links open, gateways running. */
async function healAll(fleet: ChaosFleet): Promise<void> {
  for (const l of fleet.links) l.proxy.heal();
  await Promise.all(fleet.servers.map((s) => (s.stopped ? s.restart() : s.resume())));
  await Promise.all(
    fleet.gateways.map(async (g) => {
      if (g.alive) g.resume();
      else await g.restart({ empty: false });
    }),
  );
}

/**
 * Runs one seed: the gateways write at a steady rate while the seeded schedule's faults start and
 * end; then writes stop, everything is healed, and the run waits (bounded) until every gateway has
 * nothing pending and every gateway and every server's rebuild has the same state hash. Every final
 * state is checked against the model.
 * @param options - Fleet, model, seed, durations.
 * @returns The report; `passed` is the verdict.
 */
export async function runChaos(options: RunChaosOptions): Promise<ChaosReport> {
  const { fleet, model, seed } = options;
  const log = options.log ?? (() => {});
  const emptyRestarts = options.emptyRestarts ?? true;
  const schedule = generateFaultSchedule({
    seed,
    durationMs: options.durationMs,
    emptyRestarts,
    ...(options.exclude === undefined ? {} : { exclude: options.exclude }),
    targets: {
      servers: fleet.servers.map((s) => s.name),
      gateways: fleet.gateways.map((g) => g.name),
      links: fleet.links.map((l) => l.name),
    },
  });
  const actionErrors: string[] = [];
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;

  // Writes: one op per gateway per tick, skipped while a gateway has no process.
  const workloads = fleet.gateways.map((g) => ({ g, ops: createChaosWorkload(seed, g.name) }));
  const writer = setInterval(() => {
    for (const { g, ops } of workloads) if (g.alive) g.write(ops.next());
  }, options.writeIntervalMs ?? 100);

  // Faults: each in its own chain; one target's actions never overlap (the schedule keeps them apart
  // in time, and a per-target lock covers actions that take longer than planned).
  const locks = new Map<string, Promise<void>>();
  const act = (fault: Fault, what: "begin" | "end", action: () => Promise<void>): Promise<void> => {
    const prev = locks.get(fault.target) ?? Promise.resolve();
    const next = prev.then(async () => {
      log(`${elapsed()} ${what} ${fault.kind} ${fault.target}`);
      try {
        await action();
      } catch (error) {
        actionErrors.push(`${fault.kind} ${fault.target} ${what}: ${(error as Error).message}`);
      }
    });
    locks.set(fault.target, next);
    return next;
  };
  const chains = schedule.map(async (fault) => {
    const actions = faultActions(fleet, fault);
    await sleep(started + fault.atMs - performance.now());
    await act(fault, "begin", actions.begin);
    await sleep(started + fault.atMs + fault.durationMs - performance.now());
    await act(fault, "end", actions.end);
  });
  await sleep(started + options.durationMs - performance.now());
  clearInterval(writer);
  await Promise.all(chains);
  log(`${elapsed()} schedule done; healing everything`);
  await healAll(fleet);
  const healedAt = performance.now();
  log(`${elapsed()} healed; waiting for convergence`);

  const convergeTimeoutMs = options.convergeTimeoutMs ?? 30_000;
  const deadline = healedAt + convergeTimeoutMs;
  let converged = false;
  let convergeMs: number | undefined;
  let observed: ObservedState[] = [];
  const statuses: Record<string, string> = {};
  for (;;) {
    observed = [];
    try {
      const states = await Promise.all(fleet.gateways.map((g) => g.state()));
      for (const [i, s] of states.entries()) {
        const gaps = Object.entries(s.gaps).map(([origin, seq]) => `${origin}@${seq}`);
        statuses[fleet.gateways[i]?.name ?? `${i}`] =
          `${s.replica}, ${s.pending} pending${gaps.length > 0 ? `, gaps ${gaps.join(" ")}` : ""}`;
      }
      observed = states.map((s, i) => ({
        name: fleet.gateways[i]?.name ?? `${i}`,
        state: s.state as ChaosDocState,
      }));
      const first = hashChaosState(states[0]?.state);
      if (states.every((s) => s.pending === 0 && hashChaosState(s.state) === first)) {
        const rebuilt = await fleet.rebuild();
        observed.push(...rebuilt);
        if (rebuilt.every((r) => hashChaosState(r.state) === first)) {
          convergeMs = Math.round(performance.now() - healedAt);
          // A check that began in time but ended late does not count as in time.
          converged = convergeMs <= convergeTimeoutMs;
          break;
        }
      }
    } catch (error) {
      log(`${elapsed()} not converged yet: ${(error as Error).message}`);
    }
    if (performance.now() >= deadline) break;
    await sleep(500);
  }
  if (!converged && !observed.some((o) => fleet.servers.some((s) => s.name === o.name))) {
    observed.push(...(await fleet.rebuild().catch(() => [])));
  }
  log(`${elapsed()} ${converged ? `converged ${convergeMs} ms after the heal` : "did not converge"}`);

  // The verdict: every observed state against the model.
  const losses = new Map<string, ReportedLoss>();
  const phantoms = new Set<string>();
  const hashes: Record<string, string> = {};
  for (const o of observed) {
    hashes[o.name] = hashChaosState(o.state);
    const check = model.check(o.state);
    for (const p of check.phantoms) phantoms.add(`${o.name}: ${p}`);
    for (const { write, why } of check.lost) {
      const prev = losses.get(write.op.id);
      losses.set(write.op.id, {
        op: write.op.id,
        where: [...(prev?.where ?? []), o.name],
        why,
        gateway: write.gateway,
        lineage: write.lineage,
        seq: write.seq,
        hlc: write.hlc,
      });
    }
  }
  const counts = model.counts();
  const lost = losses.size;
  return {
    seed,
    durationMs: options.durationMs,
    emptyRestarts,
    schedule,
    actionErrors,
    written: counts.written,
    acked: counts.acked,
    lost,
    losses: [...losses.values()],
    phantoms: [...phantoms],
    unknownAcks: counts.unknownAcks,
    converged,
    convergeMs,
    hashes,
    gatewayStatus: statuses,
    events: options.events.counts(),
    eventSamples: options.events.samples(),
    rerun: options.rerun,
    passed:
      converged && lost === 0 && phantoms.size === 0 && counts.unknownAcks === 0 && actionErrors.length === 0,
  };
}
