import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { effectiveVersion, isHiddenFrom, isTargeted, rolloutBucket } from "../../src/rollout-target.js";
import type { RolloutRecord, RolloutState, RolloutTarget, StoredVersion } from "../../src/version.js";

const params = { seed: 20261207, numRuns: 100 };

function version(n: number, extra: Partial<StoredVersion> = {}): StoredVersion {
  return {
    id: `v${String(n).padStart(14, "0")}`,
    env: "production",
    key: "routes",
    version: n,
    hlc: `hlc-${n}`,
    origin: "a",
    node: "n",
    author: "ann",
    message: "",
    createdAt: 0,
    value: { n },
    compacted: false,
    ...extra,
  };
}
function record(v: StoredVersion, state: RolloutState): RolloutRecord {
  return { id: v.id, env: v.env, key: v.key, version: v.version, state, reason: "", updatedAt: 0 };
}
const nodes = (count: number) => Array.from({ length: count }, (_, i) => `gw-${i}`);

describe("isTargeted", () => {
  it("no target is everyone; named nodes; {} is nobody; 0 and 100 percent", () => {
    expect(isTargeted("gw-1", "v1", undefined)).toBe(true);
    expect(isTargeted("gw-1", "v1", { nodes: ["gw-1", "gw-2"] })).toBe(true);
    expect(isTargeted("gw-3", "v1", { nodes: ["gw-1", "gw-2"] })).toBe(false);
    expect(isTargeted("gw-3", "v1", {})).toBe(false);
    expect(nodes(200).some((n) => isTargeted(n, "v1", { percent: 0 }))).toBe(false);
    expect(nodes(200).every((n) => isTargeted(n, "v1", { percent: 100 }))).toBe(true);
    // named nodes and a share add up
    const both: RolloutTarget = { nodes: ["gw-x"], percent: 50 };
    expect(isTargeted("gw-x", "v1", both)).toBe(true);
  });

  it("is stable, and a greater percent keeps every node a smaller one had", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (node, id, p, q) => {
          const [lo, hi] = p <= q ? [p, q] : [q, p];
          expect(isTargeted(node, id, { percent: lo })).toBe(isTargeted(node, id, { percent: lo }));
          if (isTargeted(node, id, { percent: lo })) expect(isTargeted(node, id, { percent: hi })).toBe(true);
          const b = rolloutBucket(node, id);
          expect(b).toBeGreaterThanOrEqual(0);
          expect(b).toBeLessThan(100);
        },
      ),
      params,
    );
  });

  it("property: the share of targeted nodes is close to percent, and each version picks its own", () => {
    const many = nodes(4000);
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]{15}$/), fc.integer({ min: 1, max: 99 }), (id, percent) => {
        const share = (many.filter((n) => isTargeted(n, id, { percent })).length / many.length) * 100;
        // 4000 draws: the standard deviation is at most 0.8 points; allow 4 of them
        expect(Math.abs(share - percent)).toBeLessThan(3.2);
      }),
      { seed: 20261207, numRuns: 40 },
    );
    const a = many.filter((n) => isTargeted(n, "aaaaaaaaaaaaaaa", { percent: 20 }));
    const b = new Set(many.filter((n) => isTargeted(n, "bbbbbbbbbbbbbbb", { percent: 20 })));
    const overlap = a.filter((n) => b.has(n)).length / a.length;
    // independent picks overlap by about 20%, the same pick would by 100%
    expect(overlap).toBeLessThan(0.35);
  });

  it("a fractional percent is honoured", () => {
    const many = nodes(20_000);
    const share = many.filter((n) => isTargeted(n, "v1", { percent: 2.5 })).length / many.length;
    expect(share).toBeGreaterThan(0.02);
    expect(share).toBeLessThan(0.03);
  });
});

describe("effectiveVersion", () => {
  const v1 = version(1);
  const v2 = version(2);
  const staged = version(3, { rollout: { nodes: ["canary"] } });

  it("is the greatest version, in any order", () => {
    expect(effectiveVersion([v2, v1], new Map(), "gw")).toBe(v2);
    expect(effectiveVersion([], new Map(), "gw")).toBeUndefined();
    // same number: ordered by hlc then id
    const rival = version(2, { id: "z00000000000002", hlc: "hlc-2" });
    expect(effectiveVersion([rival, v2, v1], new Map(), "gw")).toBe(rival);
  });

  it("skips compacted versions", () => {
    const gone = version(2, { compacted: true, value: null });
    expect(effectiveVersion([v1, gone], new Map(), "gw")).toBe(v1);
    expect(effectiveVersion([gone], new Map(), "gw")).toBeUndefined();
  });

  it("a staged version shows only to its targets (record staged or missing)", () => {
    for (const rollouts of [new Map(), new Map([[staged.id, record(staged, "staged")]])]) {
      expect(effectiveVersion([v1, v2, staged], rollouts, "canary")).toBe(staged);
      expect(effectiveVersion([v1, v2, staged], rollouts, "gw")).toBe(v2);
    }
  });

  it("promoted shows it to all; rolled-back hides it from all", () => {
    const promoted = new Map([[staged.id, record(staged, "promoted")]]);
    expect(effectiveVersion([v1, v2, staged], promoted, "gw")).toBe(staged);
    const back = new Map([[staged.id, record(staged, "rolled-back")]]);
    expect(effectiveVersion([v1, v2, staged], back, "canary")).toBe(v2);
    expect(effectiveVersion([v1, v2, staged], back, "gw")).toBe(v2);
    // a later plain version is effective everywhere
    const v4 = version(4);
    expect(effectiveVersion([staged, v4, v1], new Map(), "gw")).toBe(v4);
  });

  it("isHiddenFrom: a version without a target is never hidden", () => {
    expect(isHiddenFrom(v1, record(v1, "rolled-back"), "gw")).toBe(false);
    expect(isHiddenFrom(staged, undefined, "gw")).toBe(true);
  });
});
