import {
  ChaosOpKind,
  createChaosModel,
  FaultKind,
  formatChaosReport,
  generateFaultSchedule,
  type PocketBaseServer,
} from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { beforeAll, describe, expect, it } from "vitest";
import { runChaosSeed } from "./chaos-fleet.js";

/**
 * Fixed seeds, each drawing every fault kind (server SIGKILL and SIGSTOP, gateway SIGKILL with a
 * restart from its storage and from empty storage, gateway SIGSTOP, link reset, close and hold,
 * replicator links included). Rerun one: `npm run chaos -- --seed N --seconds 55`.
 */
// One seed of 40 s (it still draws every fault kind, replicator links included) keeps npm test in
// its CI budget; more seeds, 300 s each, run in npm run test:long (seed 55 was the second CI seed).
const SEEDS = [11] as const;
const SECONDS = 40;

const servers = usePocketBaseServers();
let pair: readonly [PocketBaseServer, PocketBaseServer];
beforeAll(async () => {
  const cluster = await servers.startCluster({ nodes: 2, batch: false });
  pair = [cluster.primary, cluster.nodes[1] ?? cluster.primary];
});

describe("chaos engine (no servers)", () => {
  const targets = {
    servers: ["primary", "secondary"],
    gateways: ["g1", "g2", "g3"],
    links: [
      "g1>primary",
      "g1>secondary",
      "g2>secondary",
      "g2>primary",
      "g3>primary",
      "g3>secondary",
      "repl>primary",
      "repl>secondary",
    ],
  };

  it("a seed gives one schedule; the CI seeds draw every fault kind, replicator links included", () => {
    for (const seed of SEEDS) {
      const faults = generateFaultSchedule({ seed, durationMs: SECONDS * 1000, targets });
      expect(generateFaultSchedule({ seed, durationMs: SECONDS * 1000, targets })).toEqual(faults);
      expect(new Set(faults.map((f) => f.kind))).toEqual(new Set(Object.values(FaultKind)));
      expect(faults.some((f) => f.target.startsWith("repl>"))).toBe(true);
      expect(faults.every((f) => f.atMs + f.durationMs <= SECONDS * 1000)).toBe(true);
    }
    const without = generateFaultSchedule({ seed: 5, durationMs: 55_000, targets, emptyRestarts: false });
    expect(without.some((f) => f.kind === FaultKind.GatewayKillEmpty)).toBe(false);
  });

  it("the model counts an acknowledged write as lost, and an unacknowledged one as optional", () => {
    const model = createChaosModel(["g1", "g2"]);
    const hlc = (ms: number, node: string) => `${ms.toString(16).padStart(12, "0")}000000${node}`;
    model.wrote("g1", 0, { kind: ChaosOpKind.Add, id: "g1-1" }, 1, hlc(1, "g1"));
    model.wrote("g1", 0, { kind: ChaosOpKind.Increment, id: "g1-2", counter: "g1" }, 2, hlc(2, "g1"));
    model.wrote("g1", 0, { kind: ChaosOpKind.Set, id: "g1-3", key: "k0" }, 3, hlc(3, "g1"));
    model.wrote("g1", 0, { kind: ChaosOpKind.Add, id: "g1-4" }, 4, hlc(4, "g1"));
    model.acked("g1", 0, [1, 2, 3]);
    // A restart on empty storage reuses seq 1: a lineage of its own.
    model.wrote("g1", 1, { kind: ChaosOpKind.Set, id: "g1-5", key: "k0" }, 1, hlc(0, "g1"));
    model.acked("g1", 1, [1]);
    expect(model.counts()).toEqual({ written: 5, acked: 4, unknownAcks: 0 });

    const complete = { kv: { k0: "g1-3" }, counters: { g1: 1, g2: 0 }, tags: ["g1-1"] };
    expect(model.check(complete)).toEqual({ lost: [], counterDeficits: {}, phantoms: [] });
    const bad = model.check({ kv: { k0: "g1-5" }, counters: { g1: 0, g2: 0 }, tags: ["g1-4", "zz-1"] });
    expect(bad.lost.map((l) => l.write.op.id).sort()).toEqual(["g1-1", "g1-2", "g1-3"]);
    expect(bad.counterDeficits).toEqual({ g1: 1 });
    expect(bad.phantoms).toEqual(["set element zz-1 was never written"]);
  });
});

describe("chaos", () => {
  for (const seed of SEEDS) {
    it(
      `seed ${seed}: ${SECONDS} s of seeded faults, then no acknowledged write lost and equal state hashes everywhere within 30 s of the heal`,
      async () => {
        const lines: string[] = [];
        const report = await runChaosSeed({
          seed,
          seconds: SECONDS,
          servers: pair,
          log: (l) => lines.push(l),
        });
        const text = formatChaosReport(report, { schedule: !report.passed });
        console.info(report.passed ? text : `${lines.join("\n")}\n${text}`);
        expect(report.lost, text).toBe(0);
        expect(report.phantoms, text).toEqual([]);
        expect(report.converged, text).toBe(true);
        expect(report.passed, text).toBe(true);
      },
      // The run, the 30 s convergence bound and the fleet's start and stop.
      (SECONDS + 30 + 45) * 1000,
    );
  }
});
