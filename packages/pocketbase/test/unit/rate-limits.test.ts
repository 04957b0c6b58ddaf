import { describe, expect, it } from "vitest";
import { fleetRateLimitRules, mergeRateLimits, type RateLimitRule } from "../../src/schema.js";

const stock: RateLimitRule[] = [
  { label: "*:auth", audience: "", duration: 3, maxRequests: 2 },
  { label: "*:create", audience: "", duration: 5, maxRequests: 20 },
  { label: "/api/batch", audience: "", duration: 1, maxRequests: 3 },
  { label: "/api/", audience: "", duration: 10, maxRequests: 300 },
];

describe("mergeRateLimits", () => {
  it("on a new server (limits off, PocketBase's stock rules) sets the fleet's rules and turns them on", () => {
    const merged = mergeRateLimits({ enabled: false, rules: stock, excludedIPs: [] });
    expect(merged).toEqual({ enabled: true, rules: fleetRateLimitRules(), excludedIPs: [] });
    // Idempotent.
    expect(mergeRateLimits(merged)).toEqual(merged);
  });

  it("keeps every rule in force: same label and audience, the existing one stays first; stock rules too", () => {
    const mine: RateLimitRule = { label: "nxs_nodes:auth", audience: "", duration: 60, maxRequests: 5 };
    const merged = mergeRateLimits({ enabled: true, rules: [...stock, mine], excludedIPs: ["10.0.0.0/8"] });
    expect(merged.rules.slice(0, 5)).toEqual([...stock, mine]);
    expect(merged.rules.filter((r) => r.label === "nxs_nodes:auth")).toEqual([mine]);
    expect(merged.excludedIPs).toEqual(["10.0.0.0/8"]);
    for (const w of fleetRateLimitRules()) {
      expect(merged.rules.some((r) => r.label === w.label && r.audience === w.audience)).toBe(true);
    }
  });

  it("keeps a user's own rules when the limits were off", () => {
    const own: RateLimitRule = { label: "users:auth", audience: "", duration: 60, maxRequests: 3 };
    expect(mergeRateLimits({ enabled: false, rules: [...stock, own] }).rules[0]).toEqual(own);
  });

  it("gives authenticated fleet traffic collection-specific ceilings and guests PocketBase's defaults", () => {
    const rules = fleetRateLimitRules();
    const find = (label: string, audience: string) =>
      rules.find((r) => r.label === label && r.audience === audience);
    expect(find("nxs_changes:create", "@auth")?.maxRequests).toBeGreaterThanOrEqual(10_000);
    expect(find("*:create", "@guest")).toEqual({
      label: "*:create",
      audience: "@guest",
      duration: 5,
      maxRequests: 20,
    });
    expect(find("nxs_nodes:auth", "")).toMatchObject({ duration: 60 });
  });
});
