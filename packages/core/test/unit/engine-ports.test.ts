import { describe, expect, it } from "vitest";
import { createSeededRandom, seedFromString } from "../../src/clock/random.js";
import { createTimerScheduler } from "../../src/node/timer-scheduler.js";
import { computeBackoff } from "../../src/sync/backoff.js";
import { createEmitter } from "../../src/sync/emitter.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";

describe("createSeededRandom", () => {
  it("repeats a sequence for a seed, differs across seeds, and stays in range", () => {
    const a = createSeededRandom(42);
    const b = createSeededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(createSeededRandom(43).next()).not.toBe(xs[0]);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    const r = createSeededRandom(1);
    const ints = Array.from({ length: 600 }, () => r.int(6));
    expect(new Set(ints)).toEqual(new Set([0, 1, 2, 3, 4, 5]));
    expect(r.chance(0)).toBe(false);
    expect(r.chance(1)).toBe(true);
    expect(seedFromString("a")).not.toBe(seedFromString("b"));
  });
});

describe("computeBackoff", () => {
  it("grows exponentially, is capped at maxMs and jittered within [base/2, base]", () => {
    const rnd = createSeededRandom(7);
    const policy = { minMs: 100, maxMs: 1_000 };
    for (let attempt = 0; attempt < 10; attempt++) {
      const base = Math.min(1_000, 100 * 2 ** attempt);
      for (let i = 0; i < 20; i++) {
        const d = computeBackoff(attempt, policy, rnd);
        expect(d).toBeGreaterThanOrEqual(base / 2);
        expect(d).toBeLessThanOrEqual(base);
      }
    }
    const spread = new Set(Array.from({ length: 20 }, () => computeBackoff(3, policy, rnd)));
    expect(spread.size).toBeGreaterThan(5);
  });
});

describe("createManualScheduler", () => {
  it("runs tasks in due order only when time is moved, and cancels", () => {
    const s = createManualScheduler({ now: 100 });
    const ran: string[] = [];
    s.schedule(30, () => ran.push("c"));
    s.schedule(10, () => {
      ran.push("a");
      s.schedule(5, () => ran.push("a+5"));
    });
    const cancel = s.schedule(20, () => ran.push("cancelled"));
    s.schedule(10, () => ran.push("b"));
    cancel();
    expect(ran).toEqual([]);
    expect(s.nextAt()).toBe(110);
    expect(s.advance(15)).toBe(3);
    expect(ran).toEqual(["a", "b", "a+5"]);
    expect(s.now()).toBe(115);
    expect(s.runNext()).toBe(true);
    expect(s.now()).toBe(130);
    expect(ran).toEqual(["a", "b", "a+5", "c"]);
    expect(s.runNext()).toBe(false);
    expect(s.pending()).toBe(0);
  });
});

describe("createTimerScheduler", () => {
  it("runs a zero-delay task on a later turn and can cancel one", async () => {
    const s = createTimerScheduler();
    const ran: string[] = [];
    const done = new Promise<void>((resolve) =>
      s.schedule(0, () => {
        ran.push("x");
        resolve();
      }),
    );
    s.schedule(0, () => ran.push("cancelled"))();
    expect(ran).toEqual([]);
    await done;
    expect(ran).toEqual(["x"]);
    expect(Math.abs(s.now() - Date.now())).toBeLessThan(1_000);
  });
});

describe("createEmitter", () => {
  it("calls listeners in order, unsubscribes, and reports a throwing listener without stopping others", () => {
    const errors: unknown[] = [];
    const e = createEmitter<{ ping: number }>((error) => errors.push(error));
    const got: number[] = [];
    e.on("ping", () => {
      throw new Error("boom");
    });
    const off = e.on("ping", (n) => got.push(n));
    e.emit("ping", 1);
    off();
    e.emit("ping", 2);
    expect(got).toEqual([1]);
    expect(errors).toHaveLength(2);
    expect(e.listenerCount("ping")).toBe(1);
  });
});
