import { describe, expect, it } from "vitest";
import { flush, harness } from "./store-helpers.js";

const who = { author: "ann", message: "canary" };

describe("config store staged rollout", () => {
  const setup = async () => {
    const h = harness();
    const backend = h.backend();
    const canary = h.store(backend, { node: "gw-1" });
    const rest = h.store(backend, { node: "gw-2" });
    await Promise.all([canary.store.start(), rest.store.start()]);
    await canary.store.put("limits", { rps: 5, burst: 0 }, { expectedVersion: 0, ...who });
    await flush();
    return { h, backend, canary, rest };
  };

  it("a staged version is seen by targeted nodes only while it bakes, then by every node once promoted", async () => {
    const { h, backend, canary, rest } = await setup();
    const checks: number[] = [];
    const done = canary.store.rollout(
      "limits",
      { rps: 9, burst: 0 },
      {
        nodes: ["gw-1"],
        bakeMs: 1000,
        check: async () => {
          checks.push(h.scheduler.now());
          return true;
        },
        ...who,
      },
    );
    await flush();
    expect(canary.store.get("limits").rps).toBe(9);
    expect(rest.store.get("limits").rps).toBe(5);
    expect(rest.store.version("limits")?.version).toBe(1);
    await h.advance(999);
    expect(rest.store.get("limits").rps).toBe(5);
    await h.advance(1);
    const result = await done;
    expect(result).toMatchObject({
      state: "promoted",
      version: { version: 2, rollout: { nodes: ["gw-1"] } },
    });
    // Checked every fifth of the bake time, on the injected scheduler.
    expect(checks.map((t) => t - checks[0]!)).toEqual([0, 200, 400, 600, 800]);
    await flush();
    expect(rest.store.get("limits").rps).toBe(9);
    expect((await backend.rollouts("prod")).map((r) => r.state)).toEqual(["promoted"]);
    await Promise.all([canary.store.close(), rest.store.close()]);
  });

  it("a failing check rolls the version back at once: hidden everywhere, a rolled-back event on every node", async () => {
    const { h, backend, canary, rest } = await setup();
    let calls = 0;
    const done = canary.store.rollout(
      "limits",
      { rps: 9, burst: 0 },
      {
        percent: 100,
        bakeMs: 1000,
        checkEveryMs: 100,
        check: async () => ++calls < 3,
        ...who,
      },
    );
    await flush();
    expect(canary.store.get("limits").rps).toBe(9);
    expect(rest.store.get("limits").rps).toBe(9);
    await h.advance(300);
    const result = await done;
    expect(result.state).toBe("rolled-back");
    expect(calls).toBe(3);
    await flush();
    for (const s of [canary, rest]) {
      expect(s.store.get("limits").rps).toBe(5);
      expect(s.store.version("limits")?.version).toBe(1);
      const rolled = s.events.filter((e) => e.type === "rolled-back");
      expect(rolled).toHaveLength(1);
      expect(rolled[0]).toEqual({
        type: "rolled-back",
        key: "limits",
        id: result.version.id,
        version: 2,
        reason: "the health check failed",
      });
    }
    // An export carries what every node runs, not the rolled-back head.
    const exported = await canary.store.exportEnv("json");
    expect(exported).toContain('"rps": 5');
    expect(exported).not.toContain('"rps": 9');
    // A node booting now finds the rolled-back head hidden, reads history, and serves version 1.
    const late = h.store(backend, { node: "gw-3" });
    await late.store.start();
    await flush();
    expect(late.store.version("limits")?.version).toBe(1);
    // A past rollback is not news to a node that boots after it.
    expect(late.events.filter((e) => e.type === "rolled-back")).toEqual([]);
    await late.store.close();
    // The next put is based on the head (the rolled-back version) and is seen by everyone.
    await rest.store.put("limits", { rps: 6, burst: 0 }, { expectedVersion: 2, ...who });
    await flush();
    expect(canary.store.get("limits").rps).toBe(6);
    await Promise.all([canary.store.close(), rest.store.close()]);
  });

  it("a check that throws counts as failing", async () => {
    const { h, canary } = await setup();
    const done = canary.store.rollout(
      "limits",
      { rps: 9, burst: 0 },
      {
        nodes: ["gw-1"],
        bakeMs: 100,
        check: async () => {
          throw new Error("probe down");
        },
        ...who,
      },
    );
    await h.advance(100);
    expect((await done).state).toBe("rolled-back");
    await flush();
    expect(canary.store.get("limits").rps).toBe(5);
    expect(canary.events.find((e) => e.type === "rolled-back")).toMatchObject({
      reason: "the health check threw: probe down",
    });
    await canary.store.close();
  });

  it("promote carries what every node of the source runs, never its staged canary", async () => {
    const { h, backend, canary } = await setup();
    const prod = h.store(backend, { env: "live", node: "gw-1" }).store;
    await prod.start();
    const done = canary.store.rollout(
      "limits",
      { rps: 9, burst: 0 },
      { nodes: ["gw-1"], bakeMs: 1000, check: async () => true, ...who },
    );
    await flush();
    const changes = await prod.promote({ from: "prod", ...who });
    expect(changes.find((c) => c.key === "limits")?.written?.version).toBe(1);
    expect(prod.get("limits").rps).toBe(5);
    await h.advance(1000);
    expect((await done).state).toBe("promoted");
    await prod.promote({ from: "prod", ...who });
    expect(prod.get("limits").rps).toBe(9);
    await Promise.all([canary.store.close(), prod.close()]);
  });
});
