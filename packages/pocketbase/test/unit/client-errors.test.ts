import { TransportError } from "@nxs-sync/core";
import { ClientResponseError } from "pocketbase";
import { describe, expect, it } from "vitest";
import { createPocketBaseClient, toTransportError } from "../../src/client.js";

const sdkError = (data: Record<string, unknown>) => new ClientResponseError(data);

describe("toTransportError", () => {
  it.each([
    [0, "transport/unavailable", true],
    [500, "transport/unavailable", true],
    [503, "transport/unavailable", true],
    [429, "transport/unavailable", true],
    [401, "transport/unauthorized", false],
    [403, "transport/unauthorized", false],
    [400, "transport/rejected", false],
    [404, "transport/rejected", false],
  ])("maps status %i to %s", (status, code, retryable) => {
    const original = sdkError({ status, data: { message: "m" } });
    const err = toTransportError(original, "op");
    expect(err).toBeInstanceOf(TransportError);
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(retryable);
    expect(err.cause).toBe(original);
    if (status !== 0) expect((err as TransportError).status).toBe(status);
  });

  it("maps an aborted request to aborted", () => {
    const err = toTransportError(sdkError({ isAbort: true }), "op");
    expect(err.code).toBe("aborted");
  });

  it("maps a timeout (TimeoutError from AbortSignal.timeout) to unavailable", () => {
    const timeout = new DOMException("The operation was aborted due to timeout", "TimeoutError");
    const err = toTransportError(new ClientResponseError(timeout), "op");
    expect(err.code).toBe("transport/unavailable");
    expect(err.retryable).toBe(true);
  });

  it("keeps nxs-sync errors as they are and wraps unknown ones as unavailable", () => {
    const own = new TransportError("transport/rejected", "x");
    expect(toTransportError(own, "op")).toBe(own);
    expect(toTransportError(new TypeError("fetch failed"), "op").code).toBe("transport/unavailable");
  });
});

describe("createPocketBaseClient", () => {
  it("refuses superuser credentials (superusers bypass API rules)", () => {
    expect(() =>
      createPocketBaseClient({
        url: "http://127.0.0.1:1",
        auth: { email: "a@b.c", password: "x", collection: "_superusers" },
      }),
    ).toThrow(expect.objectContaining({ code: "schema/invalid" }));
  });
});
