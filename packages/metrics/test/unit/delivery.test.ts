import { createManualScheduler, type ManualScheduler, silentLogger } from "@nxs-sync/core";
import {
  type AlertEvent,
  type AlertSink,
  createDelivery,
  type Delivery,
  MetricsError,
  MetricsErrorCode,
  webhookSink,
} from "@nxs-sync/metrics";
import { describe, expect, it } from "vitest";

const event: AlertEvent = {
  change: "fired",
  alert: {
    id: "aaaaaaaaaaaaaaa",
    check: "mem-high",
    node: "gw-1",
    series: "mem",
    state: "firing",
    severity: "warning",
    startedAt: 0,
    endedAt: 0,
    value: 80,
    message: "",
  },
};
/** Moves the clock `steps` times by `ms`, letting the delivery's promise chains run, then waits for it. */
const drive = async (d: Delivery, scheduler: ManualScheduler, steps: number, ms: number) => {
  for (let i = 0; i < steps; i++) {
    await settle();
    scheduler.advance(ms);
  }
  await d.idle();
};
/** Lets the promise chains of the delivery run. */
const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe("alert delivery", () => {
  it("retries a failing sink with doubling delays up to the bound, then gives up", async () => {
    const scheduler = createManualScheduler({ now: 0 });
    const tries: number[] = [];
    const sink: AlertSink = {
      name: "flaky",
      send: async () => {
        tries.push(scheduler.now());
        throw new Error("down");
      },
    };
    const errors: MetricsError[] = [];
    const d = createDelivery({
      sinks: [sink],
      scheduler,
      retry: { attempts: 4, baseDelayMs: 1_000, maxDelayMs: 3_000 },
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    d.deliver(event);
    await drive(d, scheduler, 20, 500);
    expect(tries).toEqual([0, 1_000, 3_000, 6_000]); // waits 1 s, 2 s, then 3 s (the cap)
    expect(errors.map((e) => [e.code, e.retryable])).toEqual([
      [MetricsErrorCode.AlertUndelivered, true],
      [MetricsErrorCode.AlertUndelivered, true],
      [MetricsErrorCode.AlertUndelivered, true],
      [MetricsErrorCode.AlertUndelivered, false],
    ]);
    expect(errors[3]?.message).toContain("given up");
    expect(d.pending()).toBe(0);
  });

  it("delivers once when a retry succeeds; a final error is not retried", async () => {
    const scheduler = createManualScheduler({ now: 0 });
    let calls = 0;
    const flaky: AlertSink = {
      name: "flaky",
      send: async () => {
        calls += 1;
        if (calls < 3) throw new Error("temporary");
      },
    };
    let finals = 0;
    const refusing: AlertSink = {
      name: "refusing",
      send: async () => {
        finals += 1;
        throw new MetricsError(MetricsErrorCode.AlertUndelivered, "SMTP is off", { retryable: false });
      },
    };
    const d = createDelivery({
      sinks: [flaky, refusing],
      scheduler,
      logger: silentLogger,
      onError: () => {},
    });
    d.deliver(event);
    await drive(d, scheduler, 10, 1_000);
    expect([calls, finals]).toEqual([3, 1]);
  });

  it("webhooks: 5xx and 429 are retried, other 4xx are final", async () => {
    const statuses = [503, 429, 204];
    const seen: number[] = [];
    const fakeFetch = (async () => {
      const status = statuses.shift() ?? 400;
      seen.push(status);
      return new Response(null, { status });
    }) as typeof fetch;
    const scheduler = createManualScheduler({ now: 0 });
    const d = createDelivery({
      sinks: [webhookSink("http://hooks.example/x", { fetch: fakeFetch })],
      scheduler,
      logger: silentLogger,
      onError: () => {},
    });
    d.deliver(event);
    await drive(d, scheduler, 10, 2_000);
    expect(seen).toEqual([503, 429, 204]);
    const errors: MetricsError[] = [];
    const d2 = createDelivery({
      sinks: [webhookSink("http://hooks.example/x", { fetch: fakeFetch })],
      scheduler,
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    d2.deliver(event);
    await d2.idle();
    expect(seen).toEqual([503, 429, 204, 400]);
    expect(errors[0]?.message).toContain("(final)");
  });
});
