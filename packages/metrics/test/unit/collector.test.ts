import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createManualScheduler } from "@nxs-sync/core";
import {
  createCollector,
  createRecorder,
  nodeSystemReader,
  parseMeminfo,
  parseProcCgroup,
  parseProcStat,
  queueDepthProbe,
  readCgroup,
  type SystemReader,
  timeJobs,
} from "@nxs-sync/metrics";
import { describe, expect, it } from "vitest";

const FIXTURES = join(import.meta.dirname, "../fixtures");
/** Reads `/sys/fs/cgroup/...` and `/proc/...` from a fixture dir (a map of overrides first). */
const fixtureReader =
  (dir: string, overrides: Record<string, string> = {}) =>
  (path: string) => {
    if (path in overrides) return overrides[path];
    const rel = path.startsWith("/sys/fs/cgroup/")
      ? join(dir, path.slice("/sys/fs/cgroup/".length))
      : undefined;
    try {
      return rel === undefined ? undefined : readFileSync(rel, "utf8");
    } catch {
      return undefined;
    }
  };

describe("cgroup", () => {
  it("reads v2 (fixture files): memory minus inactive file cache against memory.max, CPU quota in cores", () => {
    const f = readCgroup(fixtureReader(join(FIXTURES, "cgroup-v2"), { "/proc/self/cgroup": "0::/\n" }));
    expect(f).toEqual({
      version: 2,
      memoryBytes: 805306368 - 105306368,
      memoryLimitBytes: 1073741824,
      cpuUsageSeconds: 90,
      cpuLimitCores: 1.5,
    });
  });

  it("reads v2 limits set to max as no limit", () => {
    const f = readCgroup(
      fixtureReader(join(FIXTURES, "cgroup-v2"), {
        "/proc/self/cgroup": "0::/\n",
        "/sys/fs/cgroup/memory.max": "max\n",
        "/sys/fs/cgroup/cpu.max": "max 100000\n",
      }),
    );
    expect(f?.memoryLimitBytes).toBeUndefined();
    expect(f?.cpuLimitCores).toBeUndefined();
  });

  it("reads v1 (files as on this machine): an unlimited limit is none, a quota of -1 is none", () => {
    const proc = "4:memory:/process_api/x\n2:cpuacct:/\n1:cpu:/\n";
    const f = readCgroup(fixtureReader(join(FIXTURES, "cgroup-v1"), { "/proc/self/cgroup": proc }));
    expect(f).toEqual({
      version: 1,
      memoryBytes: 3615211520 - 1436471296,
      memoryLimitBytes: undefined,
      cpuUsageSeconds: 36834303448315 / 1e9,
      cpuLimitCores: undefined,
    });
    expect(parseProcCgroup(proc).get("memory")).toBe("/process_api/x");
  });

  it("reads the real machine without throwing", () => {
    const f = readCgroup(nodeSystemReader().readText);
    if (f !== undefined) expect([1, 2]).toContain(f.version);
  });

  it("parses /proc/stat and /proc/meminfo", () => {
    expect(parseProcStat(readFileSync(join(FIXTURES, "proc-stat"), "utf8"))).toEqual({
      busySeconds: (4705 + 150 + 1120 + 20 + 5) / 100,
      totalSeconds: (4705 + 150 + 1120 + 16250 + 520 + 20 + 5) / 100,
    });
    expect(parseMeminfo(readFileSync(join(FIXTURES, "proc-meminfo"), "utf8"))).toEqual({
      usedBytes: 6000000 * 1024,
      totalBytes: 8000000 * 1024,
    });
  });
});

/** A machine of fixture files whose cgroup CPU time the test moves. */
function fakeSystem(
  dir: string,
  state: { cpuUsec: number; overrides?: Record<string, string> },
): SystemReader {
  const base = fixtureReader(dir);
  return {
    readText: (p) => {
      if (p === "/proc/self/cgroup") return "0::/\n";
      if (p === "/sys/fs/cgroup/cpu.stat") return `usage_usec ${state.cpuUsec}\n`;
      if (state.overrides?.[p] !== undefined) return state.overrides[p];
      if (p === "/proc/stat") return readFileSync(join(FIXTURES, "proc-stat"), "utf8");
      if (p === "/proc/meminfo") return readFileSync(join(FIXTURES, "proc-meminfo"), "utf8");
      return base(p);
    },
    disk: () => ({ totalBytes: 100, freeBytes: 20 }),
    cores: () => 2,
    process: () => ({ rssBytes: 50e6, heapUsedBytes: 10e6, cpuSeconds: 1 }),
  };
}

describe("collector", () => {
  it("applies the 75% rule against the cgroup's limits, CPU averaged over a minute", async () => {
    const scheduler = createManualScheduler({ now: 1_000_000 });
    const state = { cpuUsec: 0 };
    const m = createRecorder();
    const c = createCollector({
      metrics: m,
      scheduler,
      system: fakeSystem(join(FIXTURES, "cgroup-v2"), state),
      eventLoop: false,
    });
    await c.collect();
    // 30 s at 1.2 cores of a 1.5-core quota (80%), then 30 s idle: the minute's average is 40%.
    scheduler.advance(30_000);
    state.cpuUsec += 36e6;
    const busy = await c.collect();
    expect(busy.cpuBasis).toBe("cgroup");
    expect(busy.cpuPercent).toBeCloseTo(80, 6);
    expect(busy.overCap).toEqual(expect.arrayContaining(["cpu", "disk"]));
    scheduler.advance(30_000);
    const avg = await c.collect();
    expect(avg.cpuPercent).toBeCloseTo(40, 6);
    expect(avg.overCap).not.toContain("cpu");
    // Memory: 700 MiB of 1 GiB.
    expect(avg.memoryBasis).toBe("cgroup");
    expect(avg.memoryPercent).toBeCloseTo((700000000 / 1073741824) * 100, 6);
    expect(avg.diskPercent).toBe(80);
    const w = m.takeWindow().s;
    expect(w['node_over_cap{resource="disk"}']?.[5]).toBe(1);
    expect(w['node_over_cap{resource="memory"}']?.[5]).toBe(0);
    expect(w['node_memory_percent{basis="cgroup"}']).toBeDefined();
    expect(w.process_rss_bytes?.[5]).toBe(50e6);
  });

  it("falls back to the host without a cgroup limit", async () => {
    const scheduler = createManualScheduler({ now: 0 });
    const state = {
      cpuUsec: 0,
      overrides: { "/sys/fs/cgroup/memory.max": "max\n", "/sys/fs/cgroup/cpu.max": "max 100000\n" },
    };
    const c = createCollector({
      metrics: createRecorder(),
      scheduler,
      system: fakeSystem(join(FIXTURES, "cgroup-v2"), state),
      eventLoop: false,
    });
    const f = await c.collect();
    expect(f.memoryBasis).toBe("host");
    expect(f.memoryPercent).toBe(75);
    expect(f.overCap).not.toContain("memory"); // 75% is the cap, not above it
    expect(f.cpuBasis).toBe("host");
  });

  it("probes PocketBase health and runs the given probes; a failing probe does not stop the others", async () => {
    const m = createRecorder();
    const errors: unknown[] = [];
    const fakeFetch = (async (url: string) =>
      url.startsWith("http://up")
        ? new Response("{}", { status: 200 })
        : Promise.reject(new Error("refused"))) as typeof fetch;
    const c = createCollector({
      metrics: m,
      scheduler: createManualScheduler(),
      system: fakeSystem(join(FIXTURES, "cgroup-v2"), { cpuUsec: 0 }),
      eventLoop: false,
      fetch: fakeFetch,
      healthUrls: ["http://up:8090", "http://down:8090"],
      probes: [
        () => {
          throw new Error("boom");
        },
        (r) => r.gauge("custom").set(3),
      ],
      onError: (e) => errors.push(e),
    });
    await c.collect();
    const w = m.takeWindow().s;
    expect(w['pocketbase_up{server="http://up:8090"}']?.[5]).toBe(1);
    expect(w['pocketbase_up{server="http://down:8090"}']?.[5]).toBe(0);
    expect(w.custom?.[5]).toBe(3);
    expect(errors).toHaveLength(1);
  });

  it("collects on the real machine (this one runs cgroup v1)", async () => {
    const c = createCollector({
      metrics: createRecorder(),
      scheduler: createManualScheduler(),
      eventLoop: false,
    });
    const f = await c.collect();
    expect(f.memoryPercent).toBeGreaterThan(0);
    expect(f.rssBytes).toBeGreaterThan(0);
  });

  it("times queue jobs: wait from runAt, run by outcome", async () => {
    const m = createRecorder();
    let t = 1_000;
    const handler = timeJobs(
      m,
      async (ctx: { job: { queue: string; runAt: number }; fail?: boolean }) => {
        t += 40;
        if (ctx.fail) throw new Error("x");
        return "ok";
      },
      () => t,
    );
    await handler({ job: { queue: "mail", runAt: 900 } });
    await expect(handler({ job: { queue: "mail", runAt: 1_040 }, fail: true })).rejects.toThrow("x");
    const w = m.takeWindow().s;
    expect(w['nxs_queue_wait_ms{queue="mail"}']?.slice(0, 3)).toEqual(["h", 2, 100]);
    expect(w['nxs_queue_run_ms{queue="mail",outcome="ok"}']?.slice(0, 3)).toEqual(["h", 1, 40]);
    expect(w['nxs_queue_run_ms{queue="mail",outcome="error"}']?.slice(0, 3)).toEqual(["h", 1, 40]);
  });

  it("counts a queue's jobs per state at most once per everyMs; a failed count keeps the last values", async () => {
    const m = createRecorder();
    let calls = 0;
    let fail = false;
    const probe = queueDepthProbe(
      {
        name: "mail",
        counts: async () => {
          calls += 1;
          if (fail) throw new Error("no server");
          return { waiting: 7, delayed: 2, active: 1, completed: 40, failed: 3 };
        },
      },
      { everyMs: 60_000, onError: () => {} },
    );
    await probe(m, 0);
    await probe(m, 10_000); // within everyMs: no count
    expect(calls).toBe(1);
    const w = m.takeWindow().s;
    expect(w['nxs_queue_jobs{queue="mail",state="waiting"}']?.[5]).toBe(7);
    expect(w['nxs_queue_jobs{queue="mail",state="failed"}']?.[5]).toBe(3);
    expect(w['nxs_queue_jobs{queue="mail",state="completed"}']).toBeUndefined();
    fail = true;
    await probe(m, 60_000);
    expect(calls).toBe(2);
    expect(m.takeWindow().s['nxs_queue_jobs{queue="mail",state="waiting"}']?.[5]).toBe(7);
  });
});
