import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { encodeHlc } from "../../../src/clock/hlc.js";
import { createDoc } from "../../../src/doc/doc.js";
import { ErrorCode, type NxsError, ValidationError } from "../../../src/errors/errors.js";
import type { Change } from "../../../src/model/change.js";
import { addWinsSet, counter } from "../../../src/model/schema.js";
import { fakeClock, wire } from "./fixtures.js";

const schema = z.object({
  routes: z.record(z.string(), z.object({ host: z.string(), port: z.number().int().min(1) })),
  flags: z.object({ beta: z.boolean(), note: z.string().optional() }),
  hits: counter(),
  members: addWinsSet(z.string()),
});
const initial = { routes: {}, flags: { beta: false }, hits: 0, members: [] };
const make = (replicaId = "a", clock = fakeClock()) =>
  createDoc({ schema, docId: "gw", replicaId, clock: clock.now, initial });

const thrown = (fn: () => unknown): NxsError => {
  try {
    fn();
  } catch (e) {
    return e as NxsError;
  }
  throw new Error("did not throw");
};

describe("createDoc / get", () => {
  it("starts from `initial`, deeply frozen", () => {
    const doc = make();
    expect(doc.get()).toEqual(initial);
    expect(Object.isFrozen(doc.get())).toBe(true);
    expect(Object.isFrozen(doc.get().flags)).toBe(true);
    expect(doc.version()).toEqual({});
  });

  it("throws schema/invalid when the initial state does not match", () => {
    const e = thrown(() =>
      createDoc({ schema, docId: "gw", replicaId: "a", initial: { ...initial, hits: "x" } as never }),
    );
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.code).toBe(ErrorCode.SchemaInvalid);
    expect(thrown(() => createDoc({ schema, docId: "bad id", replicaId: "a", initial })).code).toBe(
      ErrorCode.SchemaInvalid,
    );
  });

  it("shares unchanged slices between versions", () => {
    const doc = make();
    doc.change((d) => {
      d.routes.a = { host: "h", port: 1 };
    });
    const before = doc.get();
    doc.change((d) => {
      d.flags.beta = true;
    });
    const after = doc.get();
    expect(after).not.toBe(before);
    expect(after.routes).toBe(before.routes);
    expect(after.routes.a).toBe(before.routes.a);
    expect(after.flags).not.toBe(before.flags);
    expect(after.flags.beta).toBe(true);
  });
});

describe("change()", () => {
  it("makes one Change per call, seq 1, 2, 3 with increasing HLCs, ops per leaf", () => {
    const clock = fakeClock(5000);
    const doc = make("a", clock);
    const c1 = doc.change((d) => {
      d.routes.api = { host: "10.0.0.1", port: 80 };
      d.hits += 2;
    }) as Change;
    expect(c1).toMatchObject({
      doc: "gw",
      origin: "a",
      seq: 1,
      hlc: encodeHlc({ ms: 5000, counter: 0, node: "a" }),
    });
    // Patch order decides the order of unrelated ops; an object's marker comes before its leaves.
    const routeOps = c1.ops.filter((o) => o.path[0] === "routes");
    expect(routeOps).toEqual([
      { kind: "set", path: ["routes", "api"], value: {} },
      { kind: "set", path: ["routes", "api", "host"], value: "10.0.0.1" },
      { kind: "set", path: ["routes", "api", "port"], value: 80 },
    ]);
    expect(c1.ops.filter((o) => o.path[0] === "hits")).toEqual([{ kind: "inc", path: ["hits"], value: 2 }]);
    const c2 = doc.change((d) => {
      d.routes.api = { host: "10.0.0.2", port: 80 };
    }) as Change;
    expect(c2.seq).toBe(2);
    expect(c2.hlc > c1.hlc).toBe(true);
    expect(c2.ops).toEqual([{ kind: "set", path: ["routes", "api", "host"], value: "10.0.0.2" }]);
    expect(doc.version()).toEqual({ a: 2 });
  });

  it("returns undefined and makes nothing when nothing changed", () => {
    const doc = make();
    expect(doc.change(() => {})).toBeUndefined();
    expect(
      doc.change((d) => {
        d.flags.beta = false;
      }),
    ).toBeUndefined();
    expect(doc.version()).toEqual({});
  });

  it("rejects an invalid state with schema/invalid, zod issues, and applies nothing", () => {
    const doc = make();
    const seen = vi.fn();
    doc.onLocalChange(seen);
    const before = doc.get();
    const e = thrown(() =>
      doc.change((d) => {
        d.flags.beta = true;
        d.routes.x = { host: "h", port: 0 };
      }),
    ) as ValidationError;
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.code).toBe(ErrorCode.SchemaInvalid);
    expect(e.issues[0]?.path).toEqual(["routes", "x", "port"]);
    expect(e.cause).toBeInstanceOf(z.ZodError);
    expect(doc.get()).toBe(before);
    expect(doc.version()).toEqual({});
    expect(seen).not.toHaveBeenCalled();
    // The seq was not used up.
    expect(doc.set(["flags", "beta"], true)?.seq).toBe(1);
  });

  it("refuses deleting a required key and non-JSON values", () => {
    const doc = make();
    expect(
      thrown(() =>
        doc.change((d) => {
          delete (d as { flags?: unknown }).flags;
        }),
      ).code,
    ).toBe(ErrorCode.SchemaInvalid);
    expect(
      thrown(() =>
        doc.change((d) => {
          d.flags.note = new Date() as never;
        }),
      ).code,
    ).toBe(ErrorCode.SchemaInvalid);
    expect(doc.get()).toEqual(initial);
  });

  it("turns counter arithmetic into inc and set edits into add/rem with observed tags", () => {
    const doc = make();
    doc.change((d) => {
      d.members.push("x", "y");
    });
    const c = doc.change((d) => {
      d.hits -= 3;
      d.members = d.members.filter((m) => m !== "x");
    }) as Change;
    expect(c.ops).toEqual([
      { kind: "inc", path: ["hits"], value: -3 },
      {
        kind: "rem",
        path: ["members"],
        value: "x",
        tags: [encodeHlc({ ms: 1_700_000_000_000, counter: 0, node: "a" })],
      },
    ]);
    expect(doc.get().hits).toBe(-3);
    expect(doc.get().members).toEqual(["y"]);
  });
});

describe("path helpers and batch", () => {
  it("set / delete / increment / add / remove", () => {
    const doc = make();
    expect(doc.set(["routes", "r"], { host: "h", port: 2 })?.ops).toHaveLength(3);
    expect(doc.set(["routes", "r", "port"], 3)?.ops).toEqual([
      { kind: "set", path: ["routes", "r", "port"], value: 3 },
    ]);
    expect(doc.set(["routes", "r", "port"], 3)).toBeUndefined();
    expect(doc.increment(["hits"], 5)?.ops).toEqual([{ kind: "inc", path: ["hits"], value: 5 }]);
    expect(doc.add(["members"], "m")?.ops).toEqual([{ kind: "add", path: ["members"], value: "m" }]);
    expect(doc.add(["members"], "m")).toBeUndefined();
    expect(doc.remove(["members"], "zz")).toBeUndefined();
    expect(doc.remove(["members"], "m")?.ops[0]?.kind).toBe("rem");
    expect(doc.delete(["routes", "r"])?.ops).toEqual([{ kind: "del", path: ["routes", "r"] }]);
    expect(doc.get()).toEqual({ ...initial, hits: 5 });
    expect(doc.version()).toEqual({ a: 6 });
  });

  it("helpers refuse the wrong kind of path with op/invalid", () => {
    const doc = make();
    // Refused at compile time too (typed paths): the run-time check is for untyped callers.
    // @ts-expect-error not a counter
    expect(thrown(() => doc.increment(["flags", "beta"])).code).toBe(ErrorCode.OpInvalid);
    // @ts-expect-error not a set
    expect(thrown(() => doc.add(["hits"], 1)).code).toBe(ErrorCode.OpInvalid);
    // @ts-expect-error the root
    expect(thrown(() => doc.set([], {})).code).toBe(ErrorCode.OpInvalid);
    // @ts-expect-error below a counter
    expect(thrown(() => doc.set(["hits", "x"], 1)).code).toBe(ErrorCode.SchemaInvalid);
  });

  it("batch makes one atomic change; later writes see earlier ones; an error rolls back all", () => {
    const doc = make();
    const c = doc.batch((w) => {
      w.set(["routes", "a"], { host: "h", port: 1 });
      w.set(["routes", "a", "port"], 2);
      w.increment(["hits"]);
      w.set(["flags", "beta"], true);
      w.set(["flags", "beta"], false);
    }) as Change;
    expect(c.seq).toBe(1);
    expect(doc.get()).toEqual({ ...initial, routes: { a: { host: "h", port: 2 } }, hits: 1 });
    const before = doc.get();
    expect(
      thrown(() =>
        doc.batch((w) => {
          w.set(["flags", "beta"], true);
          w.set(["routes", "a", "port"], -1);
        }),
      ).code,
    ).toBe(ErrorCode.SchemaInvalid);
    expect(() =>
      doc.batch((w) => {
        w.increment(["hits"]);
        throw new Error("app error");
      }),
    ).toThrow("app error");
    expect(doc.get()).toBe(before);
    expect(doc.version()).toEqual({ a: 1 });
  });
});

describe("subscribe / onLocalChange", () => {
  it("fires only when the selected slice changed", () => {
    const doc = make();
    const routes = vi.fn();
    const beta = vi.fn();
    doc.subscribe((s) => s.routes, routes);
    const off = doc.subscribe((s) => s.flags.beta, beta);
    doc.increment(["hits"]);
    expect(routes).not.toHaveBeenCalled();
    expect(beta).not.toHaveBeenCalled();
    doc.set(["flags", "beta"], true);
    expect(beta).toHaveBeenCalledWith(true, false);
    expect(routes).not.toHaveBeenCalled();
    off();
    doc.set(["flags", "beta"], false);
    expect(beta).toHaveBeenCalledTimes(1);
    // Remote changes notify too.
    const other = make("b");
    const c = other.set(["routes", "z"], { host: "h", port: 1 }) as Change;
    doc.applyRemote(wire([c]));
    expect(routes).toHaveBeenCalledTimes(1);
    expect(routes.mock.calls[0]?.[0]).toEqual({ z: { host: "h", port: 1 } });
  });

  it("hands each local change to onLocalChange listeners; listener errors go to the logger", () => {
    const error = vi.fn();
    const doc = createDoc({
      schema,
      docId: "gw",
      replicaId: "a",
      initial,
      logger: { debug() {}, info() {}, warn() {}, error },
    });
    const got: Change[] = [];
    doc.onLocalChange((c) => got.push(c));
    doc.onLocalChange(() => {
      throw new Error("boom");
    });
    const c = doc.increment(["hits"]);
    expect(got).toEqual([c]);
    expect(error).toHaveBeenCalledTimes(1);
  });
});

describe("applyRemote", () => {
  const pair = () => {
    const clock = fakeClock();
    return { a: make("a", clock), b: make("b", clock), clock };
  };

  it("applies, ignores duplicates, holds past a gap and applies held changes when it fills", () => {
    const { a, b } = pair();
    const c1 = a.increment(["hits"]) as Change;
    const c2 = a.increment(["hits"]) as Change;
    const c3 = a.increment(["hits"]) as Change;
    let r = b.applyRemote(wire([c3, c2]));
    expect(r).toMatchObject({ applied: [], duplicates: 0, held: 2, rejected: [] });
    expect(b.gaps()).toEqual({ a: 1 });
    expect(b.get().hits).toBe(0);
    r = b.applyRemote(wire([c1, c1]));
    expect(r.applied.map((c) => c.seq)).toEqual([1, 2, 3]);
    expect(r.duplicates).toBe(1);
    expect(r.held).toBe(0);
    expect(b.gaps()).toEqual({});
    expect(b.get().hits).toBe(3);
    expect(b.version()).toEqual({ a: 3 });
    expect(b.applyRemote(wire([c2])).duplicates).toBe(1);
  });

  it("changesSince returns exactly what a version vector lacks, gap-free", () => {
    const { a, b } = pair();
    a.increment(["hits"]);
    b.increment(["hits"]);
    a.increment(["hits"]);
    b.applyRemote(wire(a.changesSince({})));
    expect(
      b
        .changesSince({})
        .map((c) => `${c.origin}${c.seq}`)
        .sort(),
    ).toEqual(["a1", "a2", "b1"]);
    expect(
      b
        .changesSince({ a: 1 })
        .map((c) => `${c.origin}${c.seq}`)
        .sort(),
    ).toEqual(["a2", "b1"]);
    expect(b.changesSince({ a: 2, b: 1 })).toEqual([]);
  });

  it("rejects malformed input, wrong doc, bad HLC, drift, bad paths and kinds, and never throws", () => {
    const { a, b, clock } = pair();
    const good = a.increment(["hits"]) as Change;
    const g = JSON.parse(JSON.stringify(good));
    const hlc = (ms: number, node = "a") => encodeHlc({ ms, counter: 0, node });
    const inputs: [unknown, string][] = [
      [null, ErrorCode.OpInvalid],
      ["nope", ErrorCode.OpInvalid],
      [{ ...g, seq: 0 }, ErrorCode.OpInvalid],
      [{ ...g, doc: "other" }, ErrorCode.OpInvalid],
      [{ ...g, hlc: "garbage-garbage-garbage" }, ErrorCode.HlcInvalid],
      [{ ...g, hlc: hlc(clock.now(), "zz") }, ErrorCode.OpInvalid],
      [{ ...g, hlc: hlc(clock.now() + 61_000) }, ErrorCode.HlcDrift],
      [{ ...g, ops: [{ kind: "set", path: [], value: 1 }] }, ErrorCode.OpInvalid],
      [{ ...g, ops: [{ kind: "set", path: ["__proto__"], value: 1 }] }, ErrorCode.OpInvalid],
      [{ ...g, ops: [{ kind: "boom", path: ["hits"] }] }, ErrorCode.OpInvalid],
      [{ ...g, ops: [{ kind: "set", path: ["hits"], value: 3 }] }, ErrorCode.OpInvalid],
      [{ ...g, ops: [{ kind: "inc", path: ["flags", "beta"], value: 1 }] }, ErrorCode.OpInvalid],
      [{ ...g, ops: [{ kind: "set", path: ["hits", "x"], value: 1 }] }, ErrorCode.OpInvalid],
      [{ ...g, ops: [{ kind: "set", path: ["flags", "note"], value: Number.NaN }] }, ErrorCode.OpInvalid],
    ];
    for (const [input, code] of inputs) {
      const r = b.applyRemote([input]);
      expect(r.applied, JSON.stringify(input)).toEqual([]);
      expect(
        r.rejected.map((x) => x.error.code),
        JSON.stringify(input),
      ).toEqual([code]);
      expect(r.rejected[0]?.input).toBe(input);
    }
    expect(b.get()).toEqual(initial);
    expect(b.version()).toEqual({});
    expect(b.applyRemote([g]).applied).toHaveLength(1);
  });

  it("never half-applies: a change whose last op is invalid leaves no trace", () => {
    const { a, b } = pair();
    const c = JSON.parse(JSON.stringify(a.set(["routes", "r"], { host: "h", port: 1 })));
    c.ops.push({ kind: "set", path: ["hits", "x"], value: 42 });
    c.ops.unshift({ kind: "inc", path: ["hits"], value: 10 });
    const r = b.applyRemote([c]);
    expect(r.rejected[0]?.error.code).toBe(ErrorCode.OpInvalid);
    expect(b.get()).toEqual(initial);
    expect(b.version()).toEqual({});
    expect(b.changesSince({})).toEqual([]);
    // The valid original still applies afterwards.
    expect(b.applyRemote(wire(a.changesSince({}))).applied).toHaveLength(1);
    expect(b.get().routes).toEqual({ r: { host: "h", port: 1 } });
  });

  it("a held change that turns out invalid is rejected when its turn comes, and later ones stay held", () => {
    const { a, b } = pair();
    const c1 = JSON.parse(JSON.stringify(a.increment(["hits"])));
    const c2 = JSON.parse(JSON.stringify(a.increment(["hits"])));
    const c3 = JSON.parse(JSON.stringify(a.increment(["hits"])));
    c2.ops = [{ kind: "set", path: ["hits"], value: 1 }];
    expect(b.applyRemote([c3, c2]).held).toBe(2);
    const r = b.applyRemote([c1]);
    expect(r.applied.map((c) => c.seq)).toEqual([1]);
    expect(r.rejected.map((x) => x.input)).toEqual([c2]);
    expect(b.gaps()).toEqual({ a: 2 });
  });
});

describe("snapshot and restart", () => {
  it("a restarted replica continues its seq and HLC from `last` and never reuses a seq", () => {
    const clock = fakeClock(10_000);
    const a = make("a", clock);
    a.increment(["hits"]);
    const snap = a.snapshot();
    const c2 = a.increment(["hits"]) as Change;
    const c3 = a.increment(["hits"]) as Change;
    clock.set(9_000); // the wall clock went back across the restart
    const restarted = createDoc({
      schema,
      docId: "gw",
      replicaId: "a",
      clock: clock.now,
      snapshot: snap,
      last: { seq: c3.seq, hlc: c3.hlc },
    });
    expect(restarted.get().hits).toBe(1);
    const c4 = restarted.increment(["hits"]) as Change;
    expect(c4.seq).toBe(4);
    expect(c4.hlc > c3.hlc).toBe(true);
    // Own changes 2 and 3 come back (from the server): they fill the gap.
    const r = restarted.applyRemote(wire([c2, c3]));
    expect(r.applied.map((c) => c.seq)).toEqual([2, 3]);
    expect(restarted.version()).toEqual({ a: 4 });
    expect(restarted.get().hits).toBe(4);
    // Its snapshot round-trips with the out-of-order history.
    const again = createDoc({
      schema,
      docId: "gw",
      replicaId: "a",
      snapshot: JSON.parse(JSON.stringify(restarted.snapshot())),
    });
    expect(again.get()).toEqual(restarted.get());
  });

  it("rejects a snapshot of another doc", () => {
    const snap = make().snapshot();
    expect(thrown(() => createDoc({ schema, docId: "other", replicaId: "a", snapshot: snap })).code).toBe(
      ErrorCode.OpInvalid,
    );
    expect(
      thrown(() =>
        createDoc({ schema, docId: "gw", replicaId: "a", snapshot: { ...snap, state: { hlcs: 1 } } }),
      ).code,
    ).toBe(ErrorCode.SchemaInvalid);
  });

  it("compact drops retained changes and tombstones covered by the frontier only", () => {
    const { a, b } = (() => {
      const clock = fakeClock();
      return { a: make("a", clock), b: make("b", clock) };
    })();
    a.set(["routes", "x"], { host: "h", port: 1 });
    a.delete(["routes", "x"]);
    b.increment(["hits"]);
    b.applyRemote(wire(a.changesSince({})));
    const sizeBefore = JSON.stringify(b.snapshot()).length;
    b.compact({ a: 2 });
    expect(b.changesSince({}).map((c) => c.origin)).toEqual(["b"]);
    const sizeAfter = JSON.stringify(b.snapshot()).length;
    expect(sizeAfter).toBeLessThan(sizeBefore);
    expect(JSON.stringify(b.snapshot().state)).not.toContain('"x"');
    expect(b.get().routes).toEqual({});
    expect(b.version()).toEqual({ a: 2, b: 1 });
  });

  it("applySnapshot rebases local changes the snapshot lacks", () => {
    const clock = fakeClock();
    const server = make("s", clock);
    const a = make("a", clock);
    server.set(["routes", "s"], { host: "s", port: 1 });
    server.increment(["hits"], 2);
    const mine = a.increment(["hits"], 5) as Change;
    const r = a.applySnapshot(JSON.parse(JSON.stringify(server.snapshot())));
    expect(r.rejected).toEqual([]);
    expect(a.get().hits).toBe(7);
    expect(a.get().routes).toEqual({ s: { host: "s", port: 1 } });
    expect(a.version()).toEqual({ s: 2, a: 1 });
    expect(a.changesSince({ s: 2 })).toEqual([mine]);
    expect(a.applySnapshot(server.snapshot()).duplicates).toBe(1);
    expect(a.applySnapshot({ ...server.snapshot(), doc: "x" as never }).rejected[0]?.error.code).toBe(
      ErrorCode.OpInvalid,
    );
  });
});
