import { ErrorCode, isNxsError } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { createPocketBaseTransport } from "../../src/transport.js";

const base = {
  endpoints: ["http://primary.invalid", "http://secondary.invalid"],
  auth: { email: "gw@nodes.local", password: "secret-secret" },
  docId: "d",
};

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

describe("transport options", () => {
  it.each([0, 3, 1.5])("minAcks %s is an NxsError config/invalid, not a RangeError", (minAcks) => {
    const error = thrown(() => createPocketBaseTransport({ ...base, minAcks }));
    expect(error).not.toBeInstanceOf(RangeError);
    expect(isNxsError(error) && error.code).toBe(ErrorCode.ConfigInvalid);
  });

  it("no endpoints is an NxsError config/invalid", () => {
    const error = thrown(() => createPocketBaseTransport({ ...base, endpoints: [] }));
    expect(isNxsError(error) && error.code).toBe(ErrorCode.ConfigInvalid);
  });
});
