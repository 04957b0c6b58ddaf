import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compareHlc,
  createHlcClock,
  decodeHlc,
  encodeHlc,
  HLC_COUNTER_LIMIT,
  HLC_MAX_COUNTER,
  HLC_MAX_MS,
  hlcNode,
} from "../../src/clock/hlc.js";
import { ClockError, ErrorCode } from "../../src/errors/errors.js";

const params = { seed: 20261127, numRuns: 300 };
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ClockError);
    return (e as ClockError).code;
  }
  return undefined;
};

describe("HLC encoding", () => {
  it("is fixed width with the node id last, and round-trips", () => {
    const h = encodeHlc({ ms: 1000, counter: 2, node: "node-a" });
    expect(h).toBe("0000000003e8000002node-a");
    expect(decodeHlc(h)).toEqual({ ms: 1000, counter: 2, node: "node-a" });
    expect(hlcNode(h)).toBe("node-a");
  });

  it("sorts as a string in (ms, counter, node) order", () => {
    const parts = fc.record({
      ms: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
      counter: fc.integer({ min: 0, max: HLC_MAX_COUNTER }),
      node: fc.constantFrom("a", "b", "ab", "a-", "Z", "node.1"),
    });
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        const expected =
          a.ms !== b.ms
            ? Math.sign(a.ms - b.ms)
            : a.counter !== b.counter
              ? Math.sign(a.counter - b.counter)
              : compareHlc(a.node, b.node);
        expect(compareHlc(encodeHlc(a), encodeHlc(b))).toBe(expected);
        expect(decodeHlc(encodeHlc(a))).toEqual(a);
      }),
      params,
    );
  });

  it("refuses malformed stamps and parts with hlc/invalid", () => {
    for (const bad of [
      "",
      "xyz",
      "0000000003e8000002",
      "0000000003e800000Gnode",
      "0000000003E8000002a",
      "0000000003e8000002a b",
      42,
      null,
    ]) {
      expect(codeOf(() => decodeHlc(bad))).toBe(ErrorCode.HlcInvalid);
    }
    expect(codeOf(() => encodeHlc({ ms: -1, counter: 0, node: "a" }))).toBe(ErrorCode.HlcInvalid);
    expect(codeOf(() => encodeHlc({ ms: 2 ** 48, counter: 0, node: "a" }))).toBe(ErrorCode.HlcInvalid);
    expect(codeOf(() => encodeHlc({ ms: 0, counter: HLC_MAX_COUNTER + 1, node: "a" }))).toBe(
      ErrorCode.HlcInvalid,
    );
    expect(codeOf(() => encodeHlc({ ms: 0, counter: 0, node: "bad node" }))).toBe(ErrorCode.HlcInvalid);
  });
});

describe("HLC clock", () => {
  it("follows the wall clock, counts within a millisecond, never goes back", () => {
    let wall = 1000;
    const clock = createHlcClock({ replicaId: "a", now: () => wall });
    expect(clock.now()).toBe(encodeHlc({ ms: 1000, counter: 0, node: "a" }));
    expect(clock.now()).toBe(encodeHlc({ ms: 1000, counter: 1, node: "a" }));
    wall = 500; // the wall clock jumps back
    expect(clock.now()).toBe(encodeHlc({ ms: 1000, counter: 2, node: "a" }));
    wall = 2000;
    expect(clock.now()).toBe(encodeHlc({ ms: 2000, counter: 0, node: "a" }));
  });

  it("moves past a received stamp, even from the same millisecond", () => {
    const clock = createHlcClock({ replicaId: "a", now: () => 1000 });
    clock.receive(encodeHlc({ ms: 1010, counter: 7, node: "b" }));
    expect(clock.now()).toBe(encodeHlc({ ms: 1010, counter: 8, node: "a" }));
  });

  it("refuses a stamp more than maxDriftMs ahead with hlc/drift and stays unchanged", () => {
    const clock = createHlcClock({ replicaId: "a", now: () => 1000, maxDriftMs: 100 });
    expect(codeOf(() => clock.receive(encodeHlc({ ms: 1101, counter: 0, node: "b" })))).toBe(
      ErrorCode.HlcDrift,
    );
    expect(codeOf(() => clock.check(encodeHlc({ ms: 1101, counter: 0, node: "b" })))).toBe(
      ErrorCode.HlcDrift,
    );
    expect(clock.now()).toBe(encodeHlc({ ms: 1000, counter: 0, node: "a" }));
    clock.receive(encodeHlc({ ms: 1100, counter: 0, node: "b" })); // exactly at the limit: accepted
    expect(clock.now()).toBe(encodeHlc({ ms: 1100, counter: 1, node: "a" }));
    expect(codeOf(() => clock.receive("garbage"))).toBe(ErrorCode.HlcInvalid);
  });

  it("moves to the next millisecond when the counter is used up, instead of failing", () => {
    const clock = createHlcClock({
      replicaId: "a",
      now: () => 5,
      last: encodeHlc({ ms: 5, counter: HLC_COUNTER_LIMIT - 1, node: "a" }),
    });
    expect(clock.now()).toBe(encodeHlc({ ms: 5, counter: HLC_COUNTER_LIMIT, node: "a" }));
    expect(clock.now()).toBe(encodeHlc({ ms: 6, counter: 0, node: "a" }));
    expect(clock.now()).toBe(encodeHlc({ ms: 6, counter: 1, node: "a" }));
  });

  it("continues after a `last` whose counter is past the limit (made by an older version)", () => {
    const last = encodeHlc({ ms: 5, counter: HLC_MAX_COUNTER, node: "a" });
    const clock = createHlcClock({ replicaId: "a", now: () => 5, last });
    expect(clock.now()).toBe(encodeHlc({ ms: 6, counter: 0, node: "a" }));
  });

  it("reports hlc/overflow only when the clock reaches the largest ms", () => {
    const clock = createHlcClock({
      replicaId: "a",
      last: encodeHlc({ ms: HLC_MAX_MS, counter: HLC_COUNTER_LIMIT - 1, node: "a" }),
    });
    expect(clock.now()).toBe(encodeHlc({ ms: HLC_MAX_MS, counter: HLC_COUNTER_LIMIT, node: "a" }));
    expect(codeOf(() => clock.now())).toBe(ErrorCode.HlcOverflow);
  });

  it("refuses a received counter above the limit with hlc/invalid and stays unchanged", () => {
    const clock = createHlcClock({ replicaId: "a", now: () => 1000 });
    for (const counter of [HLC_COUNTER_LIMIT + 1, HLC_MAX_COUNTER]) {
      const h = encodeHlc({ ms: 1000, counter, node: "b" });
      expect(codeOf(() => clock.check(h))).toBe(ErrorCode.HlcInvalid);
      expect(codeOf(() => clock.receive(h))).toBe(ErrorCode.HlcInvalid);
    }
    expect(clock.now()).toBe(encodeHlc({ ms: 1000, counter: 0, node: "a" }));
    // At the limit: accepted, and the next local stamp takes the next millisecond.
    clock.receive(encodeHlc({ ms: 1050, counter: HLC_COUNTER_LIMIT, node: "b" }));
    expect(clock.now()).toBe(encodeHlc({ ms: 1051, counter: 0, node: "a" }));
  });

  it("checks and receives decoded parts as it does the string: counter limit and drift", () => {
    const clock = createHlcClock({ replicaId: "a", now: () => 1000, maxDriftMs: 100 });
    const over = { ms: 1000, counter: HLC_COUNTER_LIMIT + 1, node: "b" };
    expect(codeOf(() => clock.check(over))).toBe(ErrorCode.HlcInvalid);
    expect(codeOf(() => clock.receive(over))).toBe(ErrorCode.HlcInvalid);
    expect(codeOf(() => clock.receive({ ms: 1101, counter: 0, node: "b" }))).toBe(ErrorCode.HlcDrift);
    const p = decodeHlc(encodeHlc({ ms: 1050, counter: 3, node: "b" }));
    expect(clock.check(p)).toBe(p);
    clock.receive(p);
    expect(clock.now()).toBe(encodeHlc({ ms: 1050, counter: 4, node: "a" }));
  });

  it("without a wall clock, measures drift from its own latest stamp", () => {
    const clock = createHlcClock({ replicaId: "a", maxDriftMs: 100 });
    expect(clock.now()).toBe(encodeHlc({ ms: 0, counter: 0, node: "a" }));
    expect(codeOf(() => clock.receive(encodeHlc({ ms: 101, counter: 0, node: "b" })))).toBe(
      ErrorCode.HlcDrift,
    );
    expect(codeOf(() => clock.receive(encodeHlc({ ms: HLC_MAX_MS, counter: 0, node: "b" })))).toBe(
      ErrorCode.HlcDrift,
    );
    clock.receive(encodeHlc({ ms: 100, counter: 3, node: "b" }));
    expect(clock.now()).toBe(encodeHlc({ ms: 100, counter: 4, node: "a" }));
    // The reference moved with the clock: 100 more is within the limit now.
    clock.receive(encodeHlc({ ms: 200, counter: 0, node: "b" }));
    expect(clock.now()).toBe(encodeHlc({ ms: 200, counter: 1, node: "a" }));
  });

  it("continues after `last` on restart", () => {
    const last = encodeHlc({ ms: 9000, counter: 3, node: "a" });
    const clock = createHlcClock({ replicaId: "a", now: () => 10, last });
    expect(compareHlc(clock.now(), last)).toBe(1);
  });

  it("property: monotonic, never throws on now(), and never behind a received stamp, whatever the wall clock and received stamps do", () => {
    const event = fc.oneof(
      fc.record({ kind: fc.constant("wall" as const), delta: fc.integer({ min: -50, max: 50 }) }),
      fc.record({ kind: fc.constant("now" as const) }),
      fc.record({
        kind: fc.constant("recv" as const),
        ahead: fc.integer({ min: -100, max: 40 }),
        counter: fc.oneof(
          fc.integer({ min: 0, max: 1000 }),
          fc.integer({ min: HLC_COUNTER_LIMIT - 3, max: HLC_MAX_COUNTER }),
        ),
        node: fc.constantFrom("b", "c", "a0"),
      }),
    );
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 80 }), (events) => {
        let wall = 10_000;
        const clock = createHlcClock({ replicaId: "a", now: () => wall, maxDriftMs: 30 });
        let last = "";
        let maxReceived = "";
        for (const e of events) {
          if (e.kind === "wall") wall += e.delta;
          else if (e.kind === "now") {
            const h = clock.now();
            expect(h > last).toBe(true);
            expect(h > maxReceived).toBe(true);
            last = h;
          } else {
            const remote = encodeHlc({ ms: Math.max(0, wall + e.ahead), counter: e.counter, node: e.node });
            if (e.counter > HLC_COUNTER_LIMIT) {
              expect(codeOf(() => clock.receive(remote))).toBe(ErrorCode.HlcInvalid);
            } else if (e.ahead > 30) {
              expect(codeOf(() => clock.receive(remote))).toBe(ErrorCode.HlcDrift);
            } else {
              clock.receive(remote);
              if (remote > maxReceived) maxReceived = remote;
            }
          }
        }
        const final = clock.now();
        expect(final > last && final > maxReceived).toBe(true);
      }),
      params,
    );
  });
});
