import { callGuarded, createEmitter, guardLogger, isNxsError, type NxsError } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { toListenerError } from "../../src/errors/callback-guard.js";

// Vitest fails a run on an unhandled rejection: each test below would, if a guard let one through.
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("user callbacks are guarded", () => {
  it("reports an async listener's rejection like a throw, and still calls the other listeners", async () => {
    const errors: [unknown, string][] = [];
    const e = createEmitter<{ ping: number }>((error, event) => errors.push([error, event]));
    const boom = new Error("async boom");
    e.on("ping", async () => {
      throw boom;
    });
    const got: number[] = [];
    e.on("ping", (n) => got.push(n));
    e.emit("ping", 1);
    await settle();
    expect(got).toEqual([1]);
    expect(errors).toEqual([[boom, "ping"]]);
  });

  it("contains an onListenerError that throws (sync or for an async listener): emit never throws", async () => {
    const e = createEmitter<{ ping: number }>(() => {
      throw new Error("the reporter is broken too");
    });
    e.on("ping", () => {
      throw new Error("sync");
    });
    e.on("ping", () => Promise.reject(new Error("async")));
    expect(() => e.emit("ping", 1)).not.toThrow();
    await settle();
  });

  it("callGuarded reports a throw or a rejection as listener/failed, with the callback's error as cause", async () => {
    const failures: NxsError[] = [];
    const thrown = new Error("cannot handle it");
    callGuarded(
      "onError",
      () => {
        throw thrown;
      },
      [],
      (f) => failures.push(f),
    );
    callGuarded(
      "onError",
      async (n: number) => Promise.reject(`rejected ${n}`),
      [7],
      (f) => failures.push(f),
    );
    callGuarded("onError", undefined, [], (f) => failures.push(f));
    callGuarded(
      "onError",
      (n: number) => n * 2,
      [1],
      (f) => failures.push(f),
    );
    await settle();
    expect(failures.map((f) => [f.code, f.retryable, f.message, f.cause])).toEqual([
      ["listener/failed", false, "onError threw: cannot handle it", thrown],
      ["listener/failed", false, "onError threw: rejected 7", "rejected 7"],
    ]);
    callGuarded(
      "onError",
      () => {
        throw thrown;
      },
      [],
      () => {
        throw new Error("the reporter throws");
      },
    );
    await settle();
  });

  it("toListenerError keeps a listener/failed error as it is", () => {
    const once = toListenerError(new Error("x"), "a listener");
    expect(isNxsError(once) && once.code).toBe("listener/failed");
    expect(toListenerError(once, "again")).toBe(once);
  });

  it("guardLogger drops what a logger throws", () => {
    const lines: string[] = [];
    const logger = guardLogger({
      debug: () => {
        throw new Error("closed stream");
      },
      info: (m) => lines.push(m),
      warn: () => {
        throw new Error("closed stream");
      },
      error: (m, ...args) => lines.push(`${m} ${args.length}`),
    });
    expect(() => logger.debug("d")).not.toThrow();
    expect(() => logger.warn("w")).not.toThrow();
    logger.info("i");
    logger.error("e", 1, 2);
    expect(lines).toEqual(["i", "e 2"]);
  });
});
