import { describe, expect, it } from "vitest";
import { natsCompactorPermissions, natsGatewayPermissions } from "../../src/index.js";

describe("NATS permissions", () => {
  it("a gateway publishes packs and acks only under its own encoded origins, and no snapshot, purge or stream change", () => {
    const p = natsGatewayPermissions({ origins: ["n1.main", "n1.jobs"], prefix: "fleet" });
    const allow = p.publish.allow;
    expect(allow).toContain("fleet.changes.*.n1=2emain");
    expect(allow).toContain("fleet.changes.*.n1=2ejobs");
    expect(allow).toContain("$KV.FLEET_ACKS.ack.*.n1=2emain");
    // Every subject a pack or an ack may go to names one of its origins.
    for (const s of allow.filter((x) => x.startsWith("fleet.") || x.startsWith("$KV."))) {
      expect(s).toMatch(/\.n1=2e(main|jobs)$/);
    }
    for (const s of allow) {
      expect(s).not.toMatch(/^(>|fleet\.>|\$JS\.API\.>|\$KV\.FLEET_ACKS\.>)$/);
      expect(s).not.toMatch(/STREAM\.(PURGE|DELETE|UPDATE|CREATE)|snapshots/);
    }
    expect(p.subscribe.allow).toContain("_INBOX.>");
  });

  it("a compactor writes snapshots, any ack, leases and purges, and no pack", () => {
    const p = natsCompactorPermissions();
    expect(p.publish.allow).toEqual(
      expect.arrayContaining(["nxs.snapshots.*", "$KV.NXS_ACKS.>", "$JS.API.STREAM.PURGE.NXS_CHANGES"]),
    );
    expect(p.publish.allow.some((s) => s.startsWith("nxs.changes."))).toBe(false);
  });

  it("refuses an empty origin and a bad prefix with config/invalid", () => {
    expect(() => natsGatewayPermissions({ origins: [""] })).toThrow(
      expect.objectContaining({ code: "config/invalid" }),
    );
    expect(() => natsGatewayPermissions({ origins: ["a"], prefix: "A.B" })).toThrow(
      expect.objectContaining({ code: "config/invalid" }),
    );
  });
});
