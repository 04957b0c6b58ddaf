import { createManualScheduler, NxsError, silentLogger } from "@nxs-sync/core";
import { describe, expect, it, vi } from "vitest";
import { createReplicator, type Replicator, type ReplicatorEvents } from "../../src/index.js";
import { closedUrl, useFakeServers } from "./fake-servers.js";

const auth = { email: "repl@nodes.test", password: "secret" };

const { refusing, cleanups } = useFakeServers();

function replicator(urls: readonly string[], lostAllAfterMs = 60_000) {
  const scheduler = createManualScheduler({ now: 1_000_000 });
  const errors: Error[] = [];
  const fatal: ReplicatorEvents["fatal"][] = [];
  const r: Replicator = createReplicator({
    servers: urls.map((url) => ({ url, auth })),
    scheduler,
    lostAllAfterMs,
    requestTimeoutMs: 1000,
    logger: silentLogger,
    onError: (e) => errors.push(e),
  });
  r.on("fatal", (f) => fatal.push(f));
  cleanups.push(() => r.stop());
  return { r, scheduler, errors, fatal };
}

describe("replicator: when it cannot work", () => {
  it("reports every server lost once lostAllAfterMs has passed on the scheduler's clock, not before", async () => {
    const [a, b] = [await closedUrl(), await closedUrl()];
    const { r, scheduler, errors, fatal } = replicator([a, b]);
    await r.start();
    expect(r.status()).toMatchObject({
      state: "lost",
      lostSince: 1_000_000,
      lastError: undefined,
      servers: [
        { url: a, state: "unreachable" },
        { url: b, state: "unreachable" },
      ],
    });
    scheduler.advance(59_999);
    expect(fatal).toEqual([]);
    expect(r.status().lastError).toBeUndefined();
    scheduler.advance(1);
    expect(fatal).toHaveLength(1);
    const error = fatal[0]!.error;
    expect(fatal[0]!.reason).toBe("lost-all");
    expect(error.code).toBe("transport/unavailable");
    expect(error.message).toContain("lostAllAfterMs 60000");
    expect(error.message).toContain(`${a} unreachable`);
    expect(error.message).toContain(`${b} unreachable`);
    expect(error.message).toContain("ECONNREFUSED");
    expect(r.status().lastError).toBe(error);
    expect(errors.filter((e) => e === error)).toHaveLength(1);
    // Once per episode.
    scheduler.advance(120_000);
    expect(fatal).toHaveLength(1);
  });

  it("start() rejects with transport/unauthorized naming each server and the auth collection when every login is refused", async () => {
    const [a, b] = [await refusing(), await refusing()];
    const { r, errors } = replicator([a.url, b.url]);
    const error = await r.start().then(
      () => undefined,
      (e: NxsError) => e,
    );
    expect(error?.code).toBe("transport/unauthorized");
    for (const url of [a.url, b.url]) {
      expect(error?.message).toContain(`${url} refused the login to nxs_replicators`);
    }
    expect(error?.message).not.toContain("unreachable");
    expect(r.status().state).toBe("stopped");
    // The rejection is the report: nothing else was reported.
    expect(errors).toEqual([]);
    expect(a.identities).toEqual([auth.email]);
  });

  it("a refusing server is 'refused', a down one 'unreachable'; with no usable server the bound names both", async () => {
    const [a, b] = [await refusing(), await closedUrl()];
    const { r, scheduler, errors, fatal } = replicator([a.url, b], 30_000);
    await r.start();
    expect(r.status().servers.map((s) => s.state)).toEqual(["refused", "unreachable"]);
    expect(r.status().servers[0]!.lastError?.code).toBe("transport/unauthorized");
    const stats = await r.sync();
    expect(stats.refused).toEqual([a.url]);
    expect(stats.unreachable).toEqual([b]);
    // The refusal was reported once, as a refusal (a refused login is tried again after intervalMs / 2).
    const refusals = errors.filter((e) => e.message.includes(`${a.url}`));
    expect(refusals).toHaveLength(1);
    expect((refusals[0] as NxsError).code).toBe("transport/unauthorized");
    expect(refusals[0]!.message).toContain("nxs_replicators");
    scheduler.advance(30_000);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.error.code).toBe("transport/unavailable");
    expect(fatal[0]!.error.message).toContain(`${a.url} refused the login to nxs_replicators`);
    expect(fatal[0]!.error.message).toContain(`${b} unreachable`);
  });

  it("repeated identical failures are reported once per window, then once with the count held back", async () => {
    const [a, b] = [await closedUrl(), await closedUrl()];
    const { r, scheduler, errors } = replicator([a, b], 10 * 60_000);
    await r.start();
    const loginFailures = () =>
      errors.filter((e) => e.message.startsWith(`login to nxs_replicators at ${a}`));
    expect(loginFailures()).toHaveLength(1);
    for (let i = 0; i < 5; i++) await r.sync();
    // Five more rounds, five more identical failures: held back.
    expect(loginFailures()).toHaveLength(1);
    scheduler.advance(60_000);
    expect(loginFailures()).toHaveLength(2);
    expect(loginFailures()[1]!.message).toMatch(/\(and 5 more like it in the last 60 s\)$/);
    expect((loginFailures()[1] as NxsError).code).toBe("transport/unavailable");
  });
});

describe("replicator: timers", () => {
  it("retries a subscription on its scheduler (no hidden timer), and stop() cancels every task", async () => {
    const [a, b] = [await closedUrl(), await closedUrl()];
    const { r, scheduler } = replicator([a, b]);
    await r.start();
    // The anti-entropy and health loops, the lostAllAfterMs bound, and one subscribe backoff per server.
    await vi.waitFor(() => expect(scheduler.pending()).toBe(5));
    await r.stop();
    expect(scheduler.pending()).toBe(0);
  });
});

describe("replicator: options", () => {
  it("fewer than two servers is an NxsError config/invalid, not a RangeError", () => {
    let error: unknown;
    try {
      createReplicator({ servers: [{ url: "http://127.0.0.1:1", auth }], logger: silentLogger });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NxsError);
    expect((error as NxsError).code).toBe("config/invalid");
    expect((error as NxsError).message).toContain("at least two servers");
  });

  it.each([
    ["intervalMs", 0],
    ["concurrency", 1.5],
    ["requestTimeoutMs", Number.NaN],
    ["fullSweepEvery", 0],
  ] as const)("%s %s is config/invalid naming the option", (name, value) => {
    const servers = [
      { url: "http://127.0.0.1:1", auth },
      { url: "http://127.0.0.1:2", auth },
    ];
    expect(() => createReplicator({ servers, logger: silentLogger, [name]: value })).toThrow(
      expect.objectContaining({ code: "config/invalid", message: expect.stringContaining(name) }),
    );
  });
});
