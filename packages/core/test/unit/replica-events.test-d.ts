import { describe, expectTypeOf, it } from "vitest";
import type { RejectedChange, ReplicatedDoc } from "../../src/doc/replicated-doc.js";
import type { NxsError } from "../../src/errors/errors.js";
import type { Change } from "../../src/model/change.js";
import type { Replica, ReplicaEvents, ReplicaOperation, ReplicaState } from "../../src/sync/replica.js";

declare const replica: Replica<ReplicatedDoc & { get(): { n: number } }>;

describe("Replica events (types)", () => {
  it("types each listener's payload by event name", () => {
    replica.on("pushed", (p) => expectTypeOf(p.changes).toEqualTypeOf<readonly Change[]>());
    replica.on("rejected", (p) => expectTypeOf(p.rejected).toEqualTypeOf<readonly RejectedChange[]>());
    replica.on("state", (p) => expectTypeOf(p.state).toEqualTypeOf<ReplicaState>());
    replica.on("error", (p) => {
      expectTypeOf(p.error).toEqualTypeOf<NxsError>();
      expectTypeOf(p.operation).toEqualTypeOf<ReplicaOperation>();
      expectTypeOf(p.retryInMs).toEqualTypeOf<number | undefined>();
    });
    expectTypeOf(replica.on("applied", () => {})).toEqualTypeOf<() => void>();
    expectTypeOf(replica.doc.get()).toEqualTypeOf<{ n: number }>();
    expectTypeOf<keyof ReplicaEvents>().toEqualTypeOf<
      "state" | "pushed" | "applied" | "rejected" | "hidden" | "resync" | "error"
    >();
    // @ts-expect-error: not an event of a replica
    replica.on("synced", () => {});
  });
});
