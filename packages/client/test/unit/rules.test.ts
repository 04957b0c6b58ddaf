import { ClientResponseError } from "pocketbase";
import { describe, expect, it } from "vitest";
import {
  createFleetClient,
  FleetError,
  FleetErrorCode,
  isFleetError,
  isRetriedRequest,
} from "../../src/index.js";

describe("isRetriedRequest", () => {
  it("retries reads and auth refreshes, nothing else", () => {
    expect(isRetriedRequest({ method: "GET", path: "/api/collections/notes/records" })).toBe(true);
    expect(isRetriedRequest({ method: "HEAD", path: "/api/health" })).toBe(true);
    expect(isRetriedRequest({ method: "POST", path: "/api/collections/users/auth-refresh" })).toBe(true);
    expect(isRetriedRequest({ method: "POST", path: "api/collections/users/auth-refresh" })).toBe(true);
    expect(isRetriedRequest({ method: "POST", path: "/api/collections/users/auth-with-password" })).toBe(
      false,
    );
    expect(isRetriedRequest({ method: "POST", path: "/api/collections/notes/records" })).toBe(false);
    expect(isRetriedRequest({ method: "PATCH", path: "/api/collections/notes/records/abc" })).toBe(false);
    expect(isRetriedRequest({ method: "DELETE", path: "/api/collections/notes/records/abc" })).toBe(false);
    expect(isRetriedRequest({ method: "POST", path: "/api/realtime" })).toBe(false);
    expect(isRetriedRequest({ method: "POST", path: "/api/batch" })).toBe(false);
  });
});

describe("FleetError", () => {
  it("is a ClientResponseError with a code, retryability and the SDK's fields", () => {
    const cause = new ClientResponseError({ status: 503, url: "http://a/api/x" });
    const e = new FleetError(FleetErrorCode.WriteUnconfirmed, "not sent again", {
      cause,
      endpoint: "http://a",
      status: 503,
      maybeApplied: false,
    });
    expect(e).toBeInstanceOf(ClientResponseError);
    expect(e).toBeInstanceOf(FleetError);
    expect(isFleetError(e)).toBe(true);
    expect(isFleetError(e, FleetErrorCode.WriteUnconfirmed)).toBe(true);
    expect(isFleetError(e, FleetErrorCode.Unavailable)).toBe(false);
    expect(isFleetError(cause)).toBe(false);
    expect({ code: e.code, retryable: e.retryable, status: e.status, message: e.message }).toEqual({
      code: "client/write-unconfirmed",
      retryable: true,
      status: 503,
      message: "not sent again",
    });
    expect(e.cause).toBe(cause);
    expect(new FleetError(FleetErrorCode.Closed, "closed").retryable).toBe(false);
  });
});

describe("createFleetClient options", () => {
  it("refuses no endpoints and an endpoint without a scheme, with the code config-invalid", () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return isFleetError(error) ? `${error.code}: ${error.message}` : String(error);
      }
      return "no error";
    };
    expect(codeOf(() => createFleetClient({ endpoints: [] }))).toMatch(
      /^client\/config-invalid: endpoints is empty/,
    );
    expect(codeOf(() => createFleetClient({ endpoints: ["http://a:8090", "127.0.0.1:8091"] }))).toMatch(
      /^client\/config-invalid: endpoints\[1\] "127.0.0.1:8091"/,
    );
  });

  it("starts on the first endpoint, trailing slashes dropped", () => {
    const fleet = createFleetClient({ endpoints: ["http://a.test:8090/", "http://b.test:8090"] });
    expect(fleet.endpoints).toEqual(["http://a.test:8090", "http://b.test:8090"]);
    expect(fleet.active()).toBe("http://a.test:8090");
    expect(fleet.pb.baseURL).toBe("http://a.test:8090");
    expect(fleet.state().map((s) => [s.active, s.healthy])).toEqual([
      [true, true],
      [false, true],
    ]);
    fleet.close();
  });

  it("keeps a realtime onDisconnect handler of the caller, and one saved and restored does not loop", () => {
    const fleet = createFleetClient({ endpoints: ["http://a.test:8090", "http://b.test:8090"] });
    const seen: string[][] = [];
    fleet.pb.realtime.onDisconnect = (subs) => seen.push(subs);
    const ours = fleet.pb.realtime.onDisconnect;
    ours?.([]);
    expect(seen).toEqual([[]]);
    fleet.pb.realtime.onDisconnect = ours; // save-and-restore as some code does
    fleet.pb.realtime.onDisconnect?.([]);
    expect(seen).toEqual([[]]);
    fleet.close();
  });
});
