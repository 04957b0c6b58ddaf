import { describe, expectTypeOf, it } from "vitest";
import { type DefinedErrorCodes, defineErrorCodes } from "../../src/errors/error-areas.js";
import type { ErrorArea, ErrorAreaOf, ErrorCode, NxsErrorCode } from "../../src/errors/error-codes.js";
import { NxsError, TransportError } from "../../src/errors/errors.js";

describe("error codes by area (types)", () => {
  it("types each declared code as its literal", () => {
    const Q = defineErrorCodes("queue", {
      LeaseLost: { name: "lease-lost", retryable: false },
      Busy: { name: "busy", retryable: true },
    });
    expectTypeOf(Q.LeaseLost).toEqualTypeOf<"queue/lease-lost">();
    expectTypeOf(Q).toEqualTypeOf<
      DefinedErrorCodes<
        "queue",
        {
          readonly LeaseLost: { readonly name: "lease-lost"; readonly retryable: false };
          readonly Busy: { readonly name: "busy"; readonly retryable: true };
        }
      >
    >();
    expectTypeOf<ErrorAreaOf<"queue/lease-lost">>().toEqualTypeOf<"queue">();
    expectTypeOf<ErrorAreaOf<"aborted">>().toEqualTypeOf<"aborted">();
  });

  it("keeps core's codes in NxsError's, and refuses a code no area declares", () => {
    expectTypeOf<ErrorCode>().toExtend<NxsErrorCode>();
    expectTypeOf<"transport" | "schema" | "conflict">().toExtend<ErrorArea>();
    expectTypeOf(new NxsError("closed", "x").code).toEqualTypeOf<NxsErrorCode>();
    expectTypeOf(new TransportError("transport/unavailable", "x").code).toEqualTypeOf<NxsErrorCode>();
    // @ts-expect-error a code outside core's and the registered areas'
    new NxsError("queue/undeclared", "x");
  });
});
