import { ConflictError, TransportError } from "@nxs-sync/core";
import { ClientResponseError } from "pocketbase";
import { describe, expect, it } from "vitest";
import {
  assertEndpointUrl,
  createPocketBaseClient,
  createSdkClient,
  isUniqueViolation,
  toTransportError,
  uniqueViolationFields,
} from "../../src/client.js";

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

describe("connection errors keep their cause", () => {
  const system = (code: string, message: string) => Object.assign(new Error(message), { code });

  it.each([
    ["ECONNREFUSED", system("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1")],
    ["ENOTFOUND", system("ENOTFOUND", "getaddrinfo ENOTFOUND pb.invalid")],
    // undici's fetch (batches) wraps Node's error: TypeError("fetch failed", { cause }).
    ["ECONNRESET", new TypeError("fetch failed", { cause: system("ECONNRESET", "read ECONNRESET") })],
  ])("names %s in the message and keeps Node's error as cause", (code, original) => {
    const err = toTransportError(new ClientResponseError(original), "push");
    expect(err.code).toBe("transport/unavailable");
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(code);
    expect(err.message).not.toContain("Something went wrong");
    expect((err.cause as { code?: string }).code).toBe(code);
  });

  it("names a timeout", () => {
    const timeout = new DOMException("request timed out after 5000 ms", "TimeoutError");
    const err = toTransportError(new ClientResponseError(timeout), "pull");
    expect(err.message).toMatch(/pull: server unavailable \(timeout: request timed out after 5000 ms\)/);
    expect(err.cause).toBe(timeout);
  });
});

describe("endpoint URLs", () => {
  it.each([
    ["127.0.0.1:18092", /write it with its scheme, e\.g\. "http:\/\/127\.0\.0\.1:18092"/],
    ["localhost:8090", /"http:\/\/localhost:8090"/],
    ["ftp://pb:8090", /use http:\/\/ or https:\/\//],
    ["", /is not an http\(s\) URL/],
    ["http://", /is not an http\(s\) URL/],
  ])("refuses %j with config/invalid, saying how to fix it", (url, message) => {
    expect(() => assertEndpointUrl(url)).toThrow(
      expect.objectContaining({ code: "config/invalid", message: expect.stringMatching(message) }),
    );
    expect(() => createPocketBaseClient({ url })).toThrow(
      expect.objectContaining({ code: "config/invalid" }),
    );
  });

  it.each(["http://127.0.0.1:8090", "https://pb.example.com", "http://[::1]:8090/", "http://a.tailnet:8090"])(
    "accepts %s",
    (url) => {
      expect(assertEndpointUrl(url)).toBe(url);
    },
  );
});

describe("PocketBase answers mapped once", () => {
  const notUnique = { code: "validation_not_unique", message: "Value must be unique." };

  it("maps a unique-index violation to a ConflictError with its fields, not retryable", () => {
    const original = sdkError({
      url: "http://127.0.0.1:1/api/collections/nxs_changes/records",
      status: 400,
      data: {
        message: "Failed to create record.",
        data: { doc: notUnique, origin: notUnique, seq: notUnique },
      },
    });
    const err = toTransportError(original, "push");
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.code).toBe("conflict");
    expect(err.retryable).toBe(false);
    expect(err.cause).toBe(original);
    expect((err as ConflictError).fields).toEqual(["doc", "origin", "seq"]);
    expect(err.message).toContain("doc, origin, seq");
    expect(isUniqueViolation(err, ["doc", "origin", "seq"])).toBe(true);
    expect(isUniqueViolation(err, ["doc", "replica"])).toBe(false);
    expect(isUniqueViolation(original)).toBe(true);
  });

  it("finds the unique violation of a batch's failed request", () => {
    const original = sdkError({
      url: "http://127.0.0.1:1/api/batch",
      status: 400,
      data: {
        message: "Batch transaction failed.",
        data: {
          requests: {
            "2": { code: "validation_not_unique", response: { status: 400, data: { id: notUnique } } },
          },
        },
      },
    });
    expect(uniqueViolationFields(original)).toEqual(["id"]);
    const err = toTransportError(original, "push");
    expect(err.code).toBe("conflict");
    expect(isUniqueViolation(err, ["id"])).toBe(true);
  });

  it("maps a batch whose request names a missing collection to server/incompatible", () => {
    // The answer of PocketBase v0.39.11 to /api/batch with a create in a collection it lacks.
    const original = sdkError({
      url: "http://127.0.0.1:1/api/batch",
      status: 400,
      data: {
        message: "Batch transaction failed.",
        status: 400,
        data: {
          requests: {
            "1": {
              code: "batch_request_failed",
              message: "Batch request failed.",
              response: { data: {}, message: "Missing collection context.", status: 404 },
            },
          },
        },
      },
    });
    const err = toTransportError(original, "push");
    expect(err.code).toBe("server/incompatible");
    expect(err.message).toContain("request 1 of the batch");
    expect(err.message).toContain("ensureSchema");
    expect(isUniqueViolation(original)).toBe(false);
  });

  it("leaves other 400s rejected", () => {
    const original = sdkError({
      status: 400,
      data: {
        message: "Failed to create record.",
        data: { doc: { code: "validation_required", message: "x" } },
      },
    });
    expect(toTransportError(original, "push").code).toBe("transport/rejected");
    expect(isUniqueViolation(original)).toBe(false);
    expect(isUniqueViolation(new TransportError("transport/rejected", "x", { cause: original }))).toBe(false);
  });

  it("maps a missing collection to server/incompatible, naming it and how to install the schema", () => {
    const original = sdkError({
      url: "http://127.0.0.1:1/api/collections/nxs_change_sizes/records?page=1",
      status: 404,
      data: { message: "Missing collection context.", data: {} },
    });
    const err = toTransportError(original, "pull");
    expect(err).toBeInstanceOf(TransportError);
    expect(err.code).toBe("server/incompatible");
    expect(err.retryable).toBe(false);
    expect((err as TransportError).status).toBe(404);
    expect(err.message).toContain("nxs_change_sizes");
    expect(err.message).toContain("ensureSchema");
    // A missing record is not a missing collection.
    const record = sdkError({ status: 404, data: { message: "The requested resource wasn't found." } });
    expect(toTransportError(record, "read").code).toBe("transport/rejected");
  });
});

describe("client options", () => {
  const url = "http://127.0.0.1:1";
  it.each([
    ["requestTimeoutMs", { requestTimeoutMs: 0 }],
    ["requestTimeoutMs", { requestTimeoutMs: Number.NaN }],
    ["retry.retries", { retry: { retries: -1 } }],
    ["retry.retries", { retry: { retries: 1.5 } }],
    ["retry.minTimeoutMs", { retry: { minTimeoutMs: -5 } }],
    ["retry.maxTimeoutMs", { retry: { minTimeoutMs: 500, maxTimeoutMs: 100 } }],
    ["refreshBeforeS", { refreshBeforeS: Number.POSITIVE_INFINITY }],
  ])("refuses a bad %s with config/invalid naming it (%j)", (name, bad) => {
    expect(() => createPocketBaseClient({ url, ...bad })).toThrow(
      expect.objectContaining({ code: "config/invalid", message: expect.stringContaining(name) }),
    );
  });

  it("takes the defaults, zero retries and unbounded retries", () => {
    for (const retry of [{}, { retries: 0 }, { retries: Number.POSITIVE_INFINITY, minTimeoutMs: 0 }]) {
      createPocketBaseClient({ url, retry, requestTimeoutMs: 1, refreshBeforeS: 0 }).close();
    }
  });

  it("a logger that throws does not fail the request that logged", async () => {
    const throwing = () => {
      throw new Error("closed stream");
    };
    const c = createPocketBaseClient({
      url,
      retry: { retries: 1, minTimeoutMs: 0, maxTimeoutMs: 0 },
      logger: { debug: throwing, info: throwing, warn: throwing, error: throwing },
    });
    let attempts = 0;
    const result = await c.call("op", async () => {
      attempts++;
      if (attempts === 1) throw sdkError({ status: 503, data: { message: "busy" } });
      return "ok";
    });
    expect(result).toBe("ok");
    c.close();
  });
});

describe("createSdkClient options", () => {
  it("refuses a request timeout below 1 ms with config/invalid", () => {
    expect(() => createSdkClient("http://127.0.0.1:1", 0)).toThrow(
      expect.objectContaining({
        code: "config/invalid",
        message: expect.stringContaining("requestTimeoutMs"),
      }),
    );
  });
});
