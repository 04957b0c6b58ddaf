import {
  createManualScheduler,
  createSeededRandom,
  ErrorCode,
  isNxsError,
  silentLogger,
  TransportError,
  TransportState,
} from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { createEndpointPool, type Endpoint } from "../../src/failover.js";
import {
  createRealtimeSession,
  type RealtimeHandlers,
  type RealtimeLink,
  type RealtimeSessionOptions,
} from "../../src/realtime-session.js";

// The session's logic only: the SDK is a fake link, the pool is never started (no health polls,
// no server), and time is a manual scheduler, so every retry and restart is stepped by hand.

interface Opened {
  readonly ep: Endpoint;
  readonly handlers: RealtimeHandlers;
  closed: boolean;
}

/** A link whose next opens fail with the queued errors, then succeed. */
function fakeLink() {
  const opens: Opened[] = [];
  const failures: Error[] = [];
  const link: RealtimeLink = {
    async open(ep, _topic, handlers) {
      const failure = failures.shift();
      if (failure !== undefined) throw failure;
      const o: Opened = { ep, handlers, closed: false };
      opens.push(o);
      return () => {
        o.closed = true;
      };
    },
  };
  return { link, opens, failures, last: () => opens[opens.length - 1]! };
}

const unavailable = () =>
  new TransportError(ErrorCode.TransportUnavailable, "connection refused", { retryable: true });

function rig(extra: Partial<RealtimeSessionOptions> = {}) {
  const scheduler = createManualScheduler({ now: 1_000 });
  const pool = createEndpointPool({
    endpoints: ["http://primary.invalid", "http://secondary.invalid"],
    failover: { failureThreshold: 2, downAfterMs: 1000, failbackAfterMs: 5000 },
    scheduler,
  });
  const { link, opens, failures, last } = fakeLink();
  const catchUps: string[] = [];
  const states: TransportState[] = [];
  const errors: Error[] = [];
  const events: unknown[] = [];
  const session = createRealtimeSession({
    pool,
    collection: "nxs_changes",
    filter: () => "doc = 'd'",
    onEvent: (e, ep) => events.push([ep.url, e.record]),
    onCatchUp: (ep) => catchUps.push(ep.url),
    onState: (s) => states.push(s),
    onError: (e) => errors.push(e),
    scheduler,
    random: createSeededRandom(7),
    retry: { minMs: 100, maxMs: 1000, factor: 2 },
    logger: silentLogger,
    link,
    ...extra,
  });
  const [primary, secondary] = pool.endpoints as [Endpoint, Endpoint];
  return {
    scheduler,
    pool,
    session,
    opens,
    failures,
    last,
    catchUps,
    states,
    errors,
    events,
    primary,
    secondary,
  };
}

/** Lets pending promise callbacks run (the fake link answers at once). */
const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe("realtime session", () => {
  it("catches up after the first PB_CONNECT and after every SDK reconnect", async () => {
    const r = rig();
    await r.session.connect();
    expect(r.opens).toHaveLength(1);
    expect(r.catchUps).toEqual([]);
    r.last().handlers.onConnect();
    expect(r.catchUps).toEqual([r.primary.url]);
    expect(r.states).toEqual([TransportState.Connecting, TransportState.Connected]);
    r.last().handlers.onEvent({ action: "create", record: { id: "x" } });
    expect(r.events).toEqual([[r.primary.url, { id: "x" }]]);
    // The SDK lost the stream and came back by itself: the same subscription, a new PB_CONNECT.
    r.last().handlers.onDisconnect();
    expect(r.states.at(-1)).toBe(TransportState.Connecting);
    r.last().handlers.onConnect();
    expect(r.catchUps).toEqual([r.primary.url, r.primary.url]);
    expect(r.opens).toHaveLength(1);
    r.session.stop();
  });

  it("retries a failed connect on the scheduler with backoff, reporting each failure", async () => {
    const r = rig();
    r.failures.push(unavailable(), unavailable());
    const connected = r.session.connect();
    await flush();
    expect(r.errors).toHaveLength(1);
    expect(r.scheduler.pending()).toBe(1);
    // The first retry waits 50..100 ms (equal jitter of minMs 100): nothing happens before.
    r.scheduler.advance(49);
    await flush();
    expect(r.errors).toHaveLength(1);
    r.scheduler.advance(51);
    await flush();
    expect(r.errors).toHaveLength(2);
    // The second failure counted twice against the primary: the pool failed over meanwhile.
    r.scheduler.advance(200);
    await connected;
    expect(r.last().ep).toBe(r.secondary);
    r.session.stop();
  });

  it("gives up at once when retrying cannot help (refused credentials)", async () => {
    const r = rig();
    r.failures.push(new TransportError(ErrorCode.TransportUnauthorized, "refused", { retryable: false }));
    const error = await r.session.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isNxsError(error) && error.code).toBe(ErrorCode.TransportUnauthorized);
    expect(r.scheduler.pending()).toBe(0);
  });

  it("follows the pool: a failover moves the subscription, and its PB_CONNECT catches up", async () => {
    const r = rig();
    await r.session.connect();
    r.last().handlers.onConnect();
    const first = r.last();
    r.pool.reportFailure(r.primary, "down");
    r.pool.reportFailure(r.primary, "down");
    await flush();
    expect(first.closed).toBe(true);
    expect(r.last().ep).toBe(r.secondary);
    expect(r.session.endpoint()).toBe(r.secondary);
    // Events of the old subscription are dropped once it is closed.
    first.handlers.onEvent({ action: "create", record: { id: "late" } });
    first.handlers.onConnect();
    expect(r.events).toEqual([]);
    r.last().handlers.onConnect();
    expect(r.catchUps).toEqual([r.primary.url, r.secondary.url]);
    r.session.stop();
  });

  it("restarts the subscription when its endpoint comes back without a reconnect (a gap), not after one", async () => {
    const r = rig();
    await r.session.connect();
    r.last().handlers.onConnect();
    // Down and back while the stream looked alive (a frozen server): events may be missing.
    r.pool.reportFailure(r.primary, "health");
    r.pool.reportFailure(r.primary, "health");
    await flush();
    // The pool failed over: the session moved; bring the primary back, failback after 5 s.
    expect(r.last().ep).toBe(r.secondary);
    r.last().handlers.onConnect();
    const onSecondary = r.opens.length;
    r.pool.reportFailure(r.secondary, "health");
    r.pool.reportFailure(r.secondary, "health");
    r.pool.reportSuccess(r.secondary);
    await flush();
    expect(r.opens.length).toBe(onSecondary + 1);
    expect(r.last().ep).toBe(r.secondary);
    // Down and back after the SDK reconnected by itself: its PB_CONNECT caught up already.
    r.last().handlers.onConnect();
    const before = r.opens.length;
    r.pool.reportFailure(r.secondary, "health");
    r.pool.reportFailure(r.secondary, "health");
    r.last().handlers.onConnect();
    r.pool.reportSuccess(r.secondary);
    await flush();
    expect(r.opens.length).toBe(before);
    r.session.stop();
  });

  it("resync() restarts the subscription on the same endpoint", async () => {
    const r = rig();
    await r.session.connect();
    r.last().handlers.onConnect();
    r.session.resync("a gap in the seqs of an origin");
    await flush();
    expect(r.opens).toHaveLength(2);
    expect(r.opens[0]!.closed).toBe(true);
    r.last().handlers.onConnect();
    expect(r.catchUps).toHaveLength(2);
    r.session.stop();
  });

  it("stop cancels a pending retry: connect fails `closed` and nothing runs later", async () => {
    const r = rig();
    r.failures.push(unavailable());
    const connected = r.session.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    await flush();
    expect(r.scheduler.pending()).toBe(1);
    r.session.stop();
    const error = await connected;
    expect(isNxsError(error) && error.code).toBe(ErrorCode.Closed);
    expect(r.scheduler.pending()).toBe(0);
    r.scheduler.advance(60_000);
    await flush();
    expect(r.opens).toHaveLength(0);
  });
});

describe("realtime session pinned to one endpoint (a replicator's session per server)", () => {
  it("connects only there, stays on failover and failback, restarts there after a gap, and subscribes `also`", async () => {
    const scheduler = createManualScheduler({ now: 1_000 });
    const pool = createEndpointPool({
      endpoints: ["http://primary.invalid", "http://secondary.invalid"],
      failover: { failureThreshold: 2, downAfterMs: 1000, failbackAfterMs: 5000 },
      scheduler,
    });
    const [primary, secondary] = pool.endpoints as [Endpoint, Endpoint];
    const opens: { ep: Endpoint; also: readonly string[] | undefined; handlers: RealtimeHandlers }[] = [];
    const link: RealtimeLink = {
      async open(ep, topic, handlers) {
        opens.push({ ep, also: topic.also, handlers });
        return () => {};
      },
    };
    const catchUps: string[] = [];
    const session = createRealtimeSession({
      pool,
      endpoint: secondary,
      collection: "nxs_changes",
      also: ["nxs_snapshots", "nxs_acks"],
      filter: () => "",
      onEvent: () => {},
      onCatchUp: (ep) => catchUps.push(ep.url),
      scheduler,
      random: createSeededRandom(3),
      logger: silentLogger,
      link,
    });
    await session.connect();
    expect(opens.map((o) => [o.ep.url, o.also])).toEqual([[secondary.url, ["nxs_snapshots", "nxs_acks"]]]);
    opens[0]!.handlers.onConnect();
    expect(catchUps).toEqual([secondary.url]);
    // The pool fails over away from the primary and back: a pinned session does not move.
    pool.reportFailure(primary, "down");
    pool.reportFailure(primary, "down");
    pool.reportSuccess(primary);
    scheduler.advance(6_000);
    pool.reportSuccess(primary);
    await flush();
    expect(opens).toHaveLength(1);
    // Its own endpoint down and back without a reconnect (a frozen server): restarted there.
    pool.reportFailure(secondary, "health");
    pool.reportFailure(secondary, "health");
    pool.reportSuccess(secondary);
    await flush();
    expect(opens.map((o) => o.ep.url)).toEqual([secondary.url, secondary.url]);
    expect(session.endpoint()).toBe(secondary);
    session.stop();
  });
});
