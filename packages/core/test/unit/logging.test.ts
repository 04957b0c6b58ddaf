import { describe, expect, it } from "vitest";
import {
  createLineLogger,
  createReportThrottle,
  NxsError,
  TransportError,
  throttleKey,
} from "../../src/index.js";

describe("createLineLogger", () => {
  it("prints warnings and errors by default, one line each, with the error's code and cause", () => {
    const lines: string[] = [];
    const logger = createLineLogger({ write: (l) => lines.push(l) });
    logger.debug("not printed");
    logger.info("not printed either");
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
    logger.warn("push failed\nsecond line", new TransportError("transport/unavailable", "down", { cause }));
    logger.error("boom", { a: 1 });
    expect(lines).toEqual([
      "nxs-sync WARN push failed ⏎ second line | transport/unavailable: down (cause: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9)",
      'nxs-sync ERROR boom | {"a":1}',
    ]);
  });

  it("honours the level, and silent prints nothing", () => {
    const lines: string[] = [];
    createLineLogger({ level: "debug", write: (l) => lines.push(l) }).debug("d");
    createLineLogger({ level: "silent", write: (l) => lines.push(l) }).error("e");
    expect(lines).toEqual(["nxs-sync DEBUG d"]);
  });
});

describe("createReportThrottle", () => {
  it("reports the first occurrence, then once per window with the count held back", () => {
    let now = 0;
    const t = createReportThrottle({ now: () => now, windowMs: 1000 });
    expect(t.admit("a")).toEqual({ report: true, suppressed: 0 });
    now = 10;
    expect(t.admit("a").report).toBe(false);
    expect(t.admit("a").report).toBe(false);
    expect(t.admit("b")).toEqual({ report: true, suppressed: 0 });
    now = 1000;
    expect(t.admit("a")).toEqual({ report: true, suppressed: 2 });
    now = 1500;
    expect(t.admit("a")).toEqual({ report: false, suppressed: 0 });
  });

  it("forgets the oldest keys past maxKeys", () => {
    const t = createReportThrottle({ now: () => 0, maxKeys: 2 });
    t.admit("a");
    t.admit("b");
    t.admit("c");
    expect(t.admit("a").report).toBe(true);
    expect(t.admit("c").report).toBe(false);
  });

  it("keys an error by code and message, numbers masked but ports kept", () => {
    const e1 = new NxsError("transport/unavailable", "push to http://127.0.0.1:8090 failed after 3 tries");
    const e2 = new NxsError("transport/unavailable", "push to http://127.0.0.1:8090 failed after 4 tries");
    const e3 = new NxsError("transport/unavailable", "push to http://127.0.0.1:8091 failed after 4 tries");
    expect(throttleKey(e1)).toBe(throttleKey(e2));
    expect(throttleKey(e1)).not.toBe(throttleKey(e3));
  });
});
