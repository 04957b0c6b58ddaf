import { type Change, encodeHlc, isNxsError } from "@nxs-sync/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ackKey,
  changeSubject,
  createPackOutbox,
  decodePackBody,
  decodeSubjectToken,
  docChangesFilter,
  encodePackBody,
  encodeSubjectToken,
  leaseKey,
  natsNames,
  originOfSubject,
  packMessageId,
} from "../../src/index.js";

const TOKEN = /^[A-Za-z0-9_=-]+$/;

describe("subject tokens", () => {
  it("escapes what a token or a KV key cannot hold", () => {
    expect(encodeSubjectToken("gw-1_a")).toBe("gw-1_a");
    expect(encodeSubjectToken("routes.eu:1")).toBe("routes=2eeu=3a1");
    expect(encodeSubjectToken("a*b>c d")).toBe("a=2ab=3ec=20d");
    expect(encodeSubjectToken("=")).toBe("=3d");
    expect(encodeSubjectToken("é")).toBe("=c3=a9");
  });

  it("round-trips every string and never makes two ids one token (seeded)", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40, unit: "binary" }),
        fc.string({ minLength: 1 }),
        (a, b) => {
          const ta = encodeSubjectToken(a);
          expect(ta).toMatch(TOKEN);
          expect(decodeSubjectToken(ta)).toBe(a);
          if (a !== b) expect(encodeSubjectToken(b)).not.toBe(ta);
        },
      ),
      { seed: 24, numRuns: 500 },
    );
  });

  it("refuses an empty id and a token no encoding makes", () => {
    expect(() => encodeSubjectToken("")).toThrow(expect.objectContaining({ code: "config/invalid" }));
    for (const bad of ["a.b", "=zz", "=4", "a b", "=41"]) {
      const error = (() => {
        try {
          decodeSubjectToken(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(isNxsError(error) && error.code, bad).toBe("op/invalid");
    }
  });

  it("names subjects, message ids and keys from encoded ids", () => {
    const n = natsNames();
    expect(n).toEqual({
      prefix: "nxs",
      changesStream: "NXS_CHANGES",
      snapshotsStream: "NXS_SNAPSHOTS",
      acksBucket: "NXS_ACKS",
    });
    expect(changeSubject(n, "d.1", "gw.a")).toBe("nxs.changes.d=2e1.gw=2ea");
    expect(docChangesFilter(n, "d.1")).toBe("nxs.changes.d=2e1.*");
    expect(originOfSubject("nxs.changes.d=2e1.gw=2ea")).toBe("gw.a");
    expect(packMessageId("d.1", "gw.a", 3, 9)).toBe("d=2e1.gw=2ea.3-9");
    expect(ackKey("lease", "x")).toBe("ack.lease.x");
    expect(leaseKey("x")).toBe("lease.x");
    expect(() => natsNames("Bad.Prefix")).toThrow(expect.objectContaining({ code: "config/invalid" }));
  });
});

const change = (origin: string, seq: number, size = 1): Change =>
  ({
    doc: "d",
    origin,
    seq,
    hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin }),
    ops: [{ kind: "set", path: ["k"], value: "x".repeat(size) }],
  }) as unknown as Change;
const seqs = (packs: Change[][]) => packs.map((p) => `${p[0]?.origin}:${p[0]?.seq}-${p.at(-1)?.seq}`);

describe("pack outbox", () => {
  it("cuts runs of one origin by size and count", () => {
    const outbox = createPackOutbox({ packSize: 3, packMaxBytes: 10_000 });
    const changes = [1, 2, 3, 4, 5].map((s) => change("a", s)).concat([change("b", 1), change("a", 7)]);
    expect(seqs(outbox.cut(changes))).toEqual(["a:1-3", "a:4-5", "b:1-1", "a:7-7"]);
    const bySize = createPackOutbox({ packSize: 100, packMaxBytes: 250 });
    expect(seqs(bySize.cut([1, 2, 3].map((s) => change("a", s, 100))))).toEqual(["a:1-1", "a:2-2", "a:3-3"]);
  });

  it("cuts a retry as the pack sent before, so it carries the same message id", () => {
    const outbox = createPackOutbox({ packSize: 3, packMaxBytes: 10_000 });
    const first = outbox.cut([1, 2, 3, 4, 5].map((s) => change("a", s)));
    for (const p of first) outbox.sent(p);
    outbox.settle(first[0] as Change[]);
    // The replica pushes the unacknowledged rest again with newer changes behind it.
    const retry = outbox.cut([4, 5, 6, 7, 8, 9].map((s) => change("a", s)));
    expect(seqs(retry)).toEqual(["a:4-5", "a:6-8", "a:9-9"]);
    expect(outbox.size).toBe(1);
  });

  it("encodes a pack body and refuses one on another origin's subject", () => {
    const pack = [change("a", 1), change("a", 2)];
    expect(decodePackBody(encodePackBody(pack), "d", "a").map((c) => c.seq)).toEqual([1, 2]);
    expect(() => decodePackBody(encodePackBody(pack), "d", "b")).toThrow(
      expect.objectContaining({ code: "op/invalid" }),
    );
    expect(() => decodePackBody(Buffer.from("{}"), "d", "a")).toThrow(
      expect.objectContaining({ code: "op/invalid" }),
    );
  });
});
