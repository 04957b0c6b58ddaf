import {
  ConflictError,
  defineErrorCodes,
  ErrorCode,
  errorAreaOf,
  errorCodeInfo,
  isNxsError,
  listErrorCodes,
  NxsError,
  TransportError,
} from "@nxs-sync/core";
import { describe, expect, it } from "vitest";

describe("error codes grouped by area", () => {
  it("lists core's codes with their area and default retryability", () => {
    const codes = listErrorCodes();
    expect(codes.map((c) => c.code)).toEqual(expect.arrayContaining(Object.values(ErrorCode)));
    expect(errorCodeInfo("transport/unavailable")).toEqual({
      code: "transport/unavailable",
      area: "transport",
      retryable: true,
    });
    expect(errorCodeInfo("aborted")).toMatchObject({ area: "aborted", retryable: false });
    expect(errorCodeInfo("queue/unknown")).toBeUndefined();
    expect(errorAreaOf("queue/lease-lost")).toBe("queue");
    expect(errorAreaOf("conflict")).toBe("conflict");
  });

  it("keeps NxsError's defaults: retryable by code unless the thrower says otherwise", () => {
    expect(new NxsError(ErrorCode.StorageIo, "x").retryable).toBe(true);
    expect(new NxsError(ErrorCode.Closed, "x").retryable).toBe(false);
    expect(new TransportError(ErrorCode.TransportUnavailable, "x", { retryable: false }).retryable).toBe(
      false,
    );
    const conflict = new ConflictError("x", { fields: ["doc", "seq"] });
    expect(conflict).toMatchObject({ code: "conflict", retryable: true, fields: ["doc", "seq"] });
    expect(new ConflictError("x").fields).toEqual([]);
  });

  it("lets a package declare its area's codes, each with its retryable default", () => {
    const Test = defineErrorCodes("test-area", {
      LeaseLost: { name: "lease-lost", retryable: false },
      Busy: { name: "busy", retryable: true },
    });
    expect(Test).toEqual({ LeaseLost: "test-area/lease-lost", Busy: "test-area/busy" });
    expect(Object.isFrozen(Test)).toBe(true);
    expect(listErrorCodes()).toEqual(
      expect.arrayContaining([
        { code: "test-area/lease-lost", area: "test-area", retryable: false },
        { code: "test-area/busy", area: "test-area", retryable: true },
      ]),
    );
    // Throwable once the area is in ErrorCodeRegistry (docs/errors.md shows the augmentation);
    // here, without it, through a cast.
    const busy = new NxsError(Test.Busy as never, "the queue is busy");
    expect(isNxsError(busy) && busy.code).toBe("test-area/busy");
    expect(busy.retryable).toBe(true);
    expect(new NxsError(Test.LeaseLost as never, "lost").retryable).toBe(false);
  });

  it("takes a second identical declaration (a package loaded twice) and keeps core's codes", () => {
    const once = defineErrorCodes("twice", { A: { name: "a", retryable: true } });
    expect(defineErrorCodes("twice", { A: { name: "a", retryable: true } })).toEqual(once);
    expect(defineErrorCodes("config", { Invalid: { name: "invalid", retryable: false } })).toEqual({
      Invalid: "config/invalid",
    });
    expect(listErrorCodes().filter((c) => c.code === "twice/a")).toHaveLength(1);
  });

  it.each([
    [
      "an area that is not kebab-case",
      () => defineErrorCodes("Queue", { A: { name: "a", retryable: false } }),
    ],
    [
      "a name that is not kebab-case",
      () => defineErrorCodes("q", { A: { name: "Lease_Lost", retryable: false } }),
    ],
    ["an empty area", () => defineErrorCodes("", { A: { name: "a", retryable: false } })],
    [
      "a core code with another retryability",
      () => defineErrorCodes("transport", { U: { name: "unavailable", retryable: false } }),
    ],
  ])("refuses %s with config/invalid, declaring nothing", (_, define) => {
    const before = listErrorCodes().length;
    expect(define).toThrow(expect.objectContaining({ code: "config/invalid", retryable: false }));
    expect(listErrorCodes()).toHaveLength(before);
  });

  it("refuses a whole declaration when one of its codes clashes", () => {
    defineErrorCodes("clash", { A: { name: "a", retryable: true } });
    expect(() =>
      defineErrorCodes("clash", { B: { name: "b", retryable: true }, A: { name: "a", retryable: false } }),
    ).toThrow(expect.objectContaining({ code: "config/invalid" }));
    expect(errorCodeInfo("clash/b")).toBeUndefined();
  });
});
