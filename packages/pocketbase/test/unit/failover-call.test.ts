import { ConflictError, createManualScheduler, ErrorCode, TransportError } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { createEndpointPool, type Endpoint, type PoolCallOptions } from "../../src/failover.js";

// `pool.call` on a fake clock: the pool is never started (no health polling), request outcomes
// come from the `fn` under test, and the backoff has no jitter (random.next() = 1: the full delay).
function setup(failureThreshold = 2) {
  const scheduler = createManualScheduler({ now: 10_000 });
  const pool = createEndpointPool({
    endpoints: ["http://primary.invalid", "http://secondary.invalid"],
    failover: { failureThreshold, downAfterMs: 60_000, failbackAfterMs: 60_000 },
    scheduler,
    random: { next: () => 1, int: () => 0, chance: () => false },
  });
  // Both have answered once (before that, one failure marks an endpoint down).
  for (const ep of pool.endpoints) pool.reportSuccess(ep);
  const attempts: { at: number; url: string }[] = [];
  const unavailable = () => new TransportError(ErrorCode.TransportUnavailable, "connection refused");
  /** Runs the call to its end, moving the clock from one scheduled backoff to the next. */
  async function run<T>(call: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    let done = false;
    const outcome = call.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    void outcome.then(() => (done = true));
    for (let i = 0; i < 1000 && !done; i++) {
      await new Promise((r) => setImmediate(r));
      if (!done) scheduler.runNext();
    }
    return outcome;
  }
  const record = (ep: Endpoint) => attempts.push({ at: scheduler.now() - 10_000, url: ep.url });
  /** A call whose every attempt is recorded and throws `thrown()`. */
  const failing = (thrown: () => unknown, options: PoolCallOptions) =>
    run(
      pool.call(
        "op",
        async (ep) => {
          record(ep);
          throw thrown();
        },
        options,
      ),
    );
  return { scheduler, pool, attempts, unavailable, run, record, failing };
}

describe("EndpointPool.call", () => {
  it("retries `transport/unavailable` until exactly `timeoutMs` after the first attempt, then throws it", async () => {
    const { scheduler, pool, attempts, unavailable, failing } = setup(100);
    const out = await failing(unavailable, { timeoutMs: 1000, retry: { minMs: 300, maxMs: 300, factor: 1 } });
    // 0, 300, 600, 900, then the last backoff cut to the bound: 1000.
    expect(attempts.map((a) => a.at)).toEqual([0, 300, 600, 900, 1000]);
    expect(out).toMatchObject({ ok: false, error: { code: "transport/unavailable" } });
    expect(scheduler.now()).toBe(11_000);
    expect(scheduler.pending()).toBe(0);
    expect(pool.health()[0]!.failures).toBe(5);
  });

  it("makes one attempt when `timeoutMs` is 0", async () => {
    const { attempts, unavailable, failing } = setup();
    const out = await failing(unavailable, { timeoutMs: 0 });
    expect(attempts).toHaveLength(1);
    expect(out).toMatchObject({ ok: false, error: { code: "transport/unavailable" } });
  });

  it("throws any other error at once, without retrying or counting it as a failure", async () => {
    const { pool, attempts, failing } = setup();
    for (const thrown of [
      new ConflictError("duplicate key", { fields: ["key"] }),
      new TransportError(ErrorCode.TransportRejected, "bad request"),
      new Error("a bug"),
    ]) {
      const out = await failing(() => thrown, { timeoutMs: 10_000 });
      expect(out).toEqual({ ok: false, error: thrown });
    }
    expect(attempts).toHaveLength(3);
    expect(pool.health().map((h) => h.failures)).toEqual([0, 0]);
  });

  it("moves to the other endpoint when the pool fails over mid-call, and reports the success", async () => {
    const { pool, attempts, unavailable, run, record } = setup(2);
    const [primary, secondary] = pool.endpoints;
    const out = await run(
      pool.call(
        "op",
        async (ep) => {
          record(ep);
          if (ep === primary) throw unavailable();
          return "written";
        },
        { timeoutMs: 10_000, retry: { minMs: 50, maxMs: 50 } },
      ),
    );
    expect(out).toEqual({ ok: true, value: "written" });
    expect(attempts.map((a) => a.url)).toEqual([primary!.url, primary!.url, secondary!.url]);
    expect(attempts.map((a) => a.at)).toEqual([0, 50, 100]);
    expect(pool.active()).toBe(secondary);
    expect(pool.health()).toMatchObject([
      { healthy: false, failures: 2 },
      { healthy: true, failures: 0, active: true },
    ]);
  });

  it("gives up with `closed` when the pool stops during a backoff", async () => {
    const { scheduler, pool, unavailable } = setup();
    const call = pool.call(
      "op",
      async () => {
        throw unavailable();
      },
      { timeoutMs: 10_000 },
    );
    await new Promise((r) => setImmediate(r));
    expect(scheduler.pending()).toBe(1);
    pool.stop();
    await expect(call).rejects.toMatchObject({ code: "closed" });
    expect(scheduler.pending()).toBe(0);
  });

  it("retries what `retryIf` accepts (a retryable conflict), and counts only unavailable servers as failures", async () => {
    const { attempts, failing, pool } = setup();
    const conflict = () => new ConflictError("lease held by another process", { retryable: true });
    const out = await failing(conflict, {
      timeoutMs: 500,
      retry: { minMs: 200, maxMs: 200, factor: 1 },
      retryIf: (e) => e.retryable,
    });
    expect(attempts.map((a) => a.at)).toEqual([0, 200, 400, 500]);
    expect(out).toMatchObject({ ok: false, error: { code: "conflict" } });
    expect(pool.health()[0]!.failures).toBe(0);
  });

  it("ends a backoff at once when its `signal` aborts, rejecting with the signal's reason", async () => {
    const { scheduler, pool, unavailable } = setup();
    const cancel = new AbortController();
    let attempts = 0;
    const call = pool.call(
      "op",
      async () => {
        attempts++;
        throw unavailable();
      },
      { timeoutMs: 10_000, signal: cancel.signal },
    );
    await new Promise((r) => setImmediate(r));
    expect(scheduler.pending()).toBe(1);
    const reason = new TransportError(ErrorCode.Closed, "writer closed");
    cancel.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(scheduler.pending()).toBe(0);
    expect(attempts).toBe(1);
    // An aborted signal: no attempt at all.
    await expect(pool.call("op", async () => 1, { timeoutMs: 0, signal: cancel.signal })).rejects.toBe(
      reason,
    );
  });
});
