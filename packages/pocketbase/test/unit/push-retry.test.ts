import net, { type AddressInfo } from "node:net";
import { createManualScheduler, createSeededRandom, ErrorCode, isNxsError } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { createPocketBaseTransport } from "../../src/transport.js";

// A push's one retry layer, on a fake clock: the server is a closed port (every attempt is refused
// at once, a retryable transport/unavailable), and the only delays are the writer's backoffs on
// the manual scheduler, so the bound the caller sets is checked without waiting for it.

/** A loopback port nothing listens on. */
async function closedPort(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** Waits (on the event loop, not on time) until the writer scheduled its next backoff or `done`. */
async function nextWait(scheduler: { pending(): number }, done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && scheduler.pending() === 0 && !done(); i++) {
    await new Promise((r) => setImmediate(r));
  }
}

const change = {
  doc: "d",
  origin: "n1.a",
  seq: 1,
  hlc: "01a2536d9914000000n1.a",
  ops: [{ kind: "set", path: ["a"], value: 1 }],
} as never;

function open(url: string, pushTimeoutMs: number) {
  const scheduler = createManualScheduler({ now: 0 });
  const t = createPocketBaseTransport({
    endpoints: [url],
    auth: { email: "gw@nodes.local", password: "secret-secret" },
    docId: "d",
    author: "n1",
    pushTimeoutMs,
    pushRetry: { minMs: 100, maxMs: 100, factor: 1 },
    retry: { retries: 0 },
    scheduler,
    random: createSeededRandom(1),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  return { t, scheduler };
}

describe("push retry", () => {
  it("retries on the scheduler until pushTimeoutMs after the first attempt, then fails transport/unavailable", async () => {
    const { t, scheduler } = open(await closedPort(), 1000);
    let outcome: unknown;
    const push = t.push([change]).then(
      () => "acked",
      (e: unknown) => e,
    );
    void push.then((o) => {
      outcome = o;
    });
    let waits = 0;
    for (;;) {
      await nextWait(scheduler, () => outcome !== undefined);
      if (outcome !== undefined) break;
      waits++;
      // Each backoff is 50..100 ms (equal jitter of 100): the push is pending until it runs.
      expect(scheduler.nextAt()! - scheduler.now()).toBeLessThanOrEqual(100);
      scheduler.runNext();
    }
    const error = await push;
    expect(isNxsError(error) && error.code).toBe(ErrorCode.TransportUnavailable);
    // The bound: no attempt starts 1000 ms or more after the first (the last wait is cut to it).
    expect(scheduler.now()).toBe(1000);
    expect(waits).toBeGreaterThanOrEqual(10);
    expect(waits).toBeLessThanOrEqual(20);
    await t.close();
  });

  it("pushTimeoutMs 0 makes one attempt: no backoff is scheduled", async () => {
    const { t, scheduler } = open(await closedPort(), 0);
    const error = await t.push([change]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isNxsError(error) && error.code).toBe(ErrorCode.TransportUnavailable);
    expect(scheduler.now()).toBe(0);
    expect(scheduler.pending()).toBe(0);
    await t.close();
  });

  it("close() ends a push waiting on its backoff with `closed`", async () => {
    const { t, scheduler } = open(await closedPort(), 10_000);
    const push = t.push([change]).then(
      () => undefined,
      (e: unknown) => e,
    );
    await nextWait(scheduler, () => false);
    expect(scheduler.pending()).toBeGreaterThan(0);
    await t.close();
    const error = await push;
    expect(isNxsError(error) && error.code).toBe(ErrorCode.Closed);
  });
});
