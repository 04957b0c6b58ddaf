import { createManualScheduler } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { createEndpointPool, type EndpointPoolEvents, type SwitchEvent } from "../../src/failover.js";
import { closedUrl, useFakeServers } from "./fake-servers.js";

// Switching logic only: request outcomes are reported by hand and time is a fake clock, so no
// server is involved (the pool is never started, hence never polls). Every endpoint has answered
// once (`answered`, the default): until then one failure marks an endpoint down.
function pool(failover: Parameters<typeof createEndpointPool>[0]["failover"] = {}, answered = true) {
  let t = 1_000;
  const p = createEndpointPool({
    endpoints: ["http://primary.invalid", "http://secondary.invalid", "http://third.invalid"],
    failover: { failureThreshold: 2, downAfterMs: 1000, failbackAfterMs: 5000, ...failover },
    now: () => t,
  });
  if (answered) for (const ep of p.endpoints) p.reportSuccess(ep);
  const events: (SwitchEvent & { kind: string })[] = [];
  p.on("failover", (e) => events.push({ ...e, kind: "failover" }));
  p.on("failback", (e) => events.push({ ...e, kind: "failback" }));
  return { p, events, advance: (ms: number) => (t += ms) };
}

describe("endpoint pool", () => {
  it("starts on the preferred endpoint and switches after `failureThreshold` failures", () => {
    const { p, events } = pool();
    const [a, b] = p.endpoints;
    expect(p.active()).toBe(a);
    p.reportFailure(a!, "x");
    expect(p.active()).toBe(a);
    p.reportFailure(a!, "x");
    expect(p.active()).toBe(b);
    expect(events).toEqual([{ kind: "failover", from: a!.url, to: b!.url, reason: "x" }]);
  });

  it("switches after `downAfterMs` of failures even below the count", () => {
    const { p, advance } = pool({ failureThreshold: 100 });
    const [a, b] = p.endpoints;
    p.reportFailure(a!, "x");
    advance(999);
    p.reportFailure(a!, "x");
    expect(p.active()).toBe(a);
    advance(1);
    p.reportFailure(a!, "x");
    expect(p.active()).toBe(b);
  });

  it("a success resets the count", () => {
    const { p } = pool();
    const [a] = p.endpoints;
    p.reportFailure(a!, "x");
    p.reportSuccess(a!);
    p.reportFailure(a!, "x");
    expect(p.active()).toBe(a);
  });

  it("skips unhealthy endpoints and stays put when none is healthy", () => {
    const { p } = pool();
    const [a, b, c] = p.endpoints;
    p.reportFailure(b!, "x");
    p.reportFailure(b!, "x");
    p.reportFailure(a!, "x");
    p.reportFailure(a!, "x");
    expect(p.active()).toBe(c);
    p.reportFailure(c!, "x");
    p.reportFailure(c!, "x");
    expect(p.active()).toBe(c);
    expect(p.health().map((h) => h.healthy)).toEqual([false, false, false]);
    expect(p.healthy().at(-1)).toBe(c);
  });

  it("fails back to the preferred endpoint once it has been healthy for `failbackAfterMs`", () => {
    const { p, events, advance } = pool();
    const [a, b] = p.endpoints;
    p.reportFailure(a!, "x");
    p.reportFailure(a!, "x");
    expect(p.active()).toBe(b);
    p.reportSuccess(a!);
    expect(p.active()).toBe(b);
    advance(4999);
    p.reportSuccess(b!);
    expect(p.active()).toBe(b);
    advance(1);
    p.reportSuccess(b!);
    expect(p.active()).toBe(a);
    expect(events.map((e) => e.kind)).toEqual(["failover", "failback"]);
  });

  it("never fails back with failbackAfterMs = Infinity; healthy() lists the active endpoint first", () => {
    const { p, advance } = pool({ failbackAfterMs: Number.POSITIVE_INFINITY });
    const [a, b, c] = p.endpoints;
    p.reportFailure(a!, "x");
    p.reportFailure(a!, "x");
    p.reportSuccess(a!);
    advance(1e9);
    p.reportSuccess(b!);
    expect(p.active()).toBe(b);
    expect(p.healthy()).toEqual([b, a, c]);
  });
});

describe("endpoint pool: before an endpoint has answered", () => {
  it("one failure marks an endpoint that never answered down, and the pool fails over", () => {
    const { p, events } = pool({}, false);
    const [a, b] = p.endpoints;
    p.reportFailure(a!, "connection refused");
    expect(p.health().map((h) => h.healthy)).toEqual([false, true, true]);
    expect(p.active()).toBe(b);
    expect(events).toEqual([{ kind: "failover", from: a!.url, to: b!.url, reason: "connection refused" }]);
  });

  it("once it has answered, it takes `failureThreshold` failures again, also after it was down and came back", () => {
    const { p } = pool({}, false);
    const [a] = p.endpoints;
    p.reportSuccess(a!);
    p.reportFailure(a!, "x");
    expect(p.health()[0]!.healthy).toBe(true);
    p.reportFailure(a!, "x");
    expect(p.health()[0]!.healthy).toBe(false);
    p.reportSuccess(a!);
    p.reportFailure(a!, "x");
    expect(p.health()[0]!.healthy).toBe(true);
  });

  it("runs its first health round at start(), not a health interval later: every refusing endpoint is down after it", async () => {
    const scheduler = createManualScheduler({ now: 5_000 });
    const urls = [await closedUrl(), await closedUrl()];
    const p = createEndpointPool({ endpoints: urls, scheduler, failover: { healthIntervalMs: 500 } });
    const down = new Set<string>();
    const allDown = new Promise<void>((resolve) =>
      p.on("health", (h) => {
        if (!h.healthy) down.add(h.url);
        if (down.size === urls.length) resolve();
      }),
    );
    p.start();
    try {
      scheduler.runNext();
      // The round ran without the clock moving: it was due at once.
      expect(scheduler.now()).toBe(5_000);
      await allDown;
      expect(p.health().map((h) => [h.healthy, h.failures])).toEqual([
        [false, 1],
        [false, 1],
      ]);
    } finally {
      p.stop();
    }
  });
});

describe("endpoint pool: health only (the replicator's)", () => {
  it("with switchEndpoints false it tracks health and tells each change, with the failure's reason, but never switches", () => {
    const { p, events, advance } = pool({ failureThreshold: 1, switchEndpoints: false });
    const [a, b] = p.endpoints;
    const health: EndpointPoolEvents["health"][] = [];
    p.on("health", (h) => health.push(h));
    p.reportFailure(a!, "no answer to GET /api/health");
    expect(p.health().map((h) => h.healthy)).toEqual([false, true, true]);
    expect(p.active()).toBe(a);
    p.reportFailure(b!, "realtime connection dropped");
    p.reportSuccess(a!);
    advance(1e9);
    p.reportSuccess(b!);
    expect(p.active()).toBe(a);
    expect(events).toEqual([]);
    expect(health).toEqual([
      { url: a!.url, healthy: false, reason: "no answer to GET /api/health" },
      { url: b!.url, healthy: false, reason: "realtime connection dropped" },
      { url: a!.url, healthy: true },
      { url: b!.url, healthy: true },
    ]);
  });

  const { refusing } = useFakeServers();

  it("an endpoint given as { url, auth } logs in with its own credentials, the others with the pool's", async () => {
    const [s1, s2] = [await refusing(), await refusing()];
    const p = createEndpointPool({
      endpoints: [{ url: s1.url, auth: { email: "one@nodes.test", password: "x" } }, s2.url],
      auth: { email: "pool@nodes.test", password: "x" },
    });
    for (const ep of p.endpoints) await ep.client.authenticate().catch(() => undefined);
    p.stop();
    expect(s1.identities).toEqual(["one@nodes.test"]);
    expect(s2.identities).toEqual(["pool@nodes.test"]);
  });
});

describe("endpoint validation", () => {
  it("refuses an endpoint without a scheme at construction, naming it and the fix", () => {
    expect(() => createEndpointPool({ endpoints: ["http://a.invalid:8090", "127.0.0.1:18092"] })).toThrow(
      expect.objectContaining({
        code: "config/invalid",
        message: expect.stringMatching(/endpoints\[1\] "127\.0\.0\.1:18092".*"http:\/\/127\.0\.0\.1:18092"/),
      }),
    );
  });

  it("refuses an empty list with config/invalid", () => {
    expect(() => createEndpointPool({ endpoints: [] })).toThrow(
      expect.objectContaining({ code: "config/invalid" }),
    );
  });
});
