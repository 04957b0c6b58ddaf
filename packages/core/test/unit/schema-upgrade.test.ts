import { describe, expect, it } from "vitest";
import { toDocId } from "../../src/clock/ids.js";
import { createDoc, type Doc } from "../../src/doc/doc.js";
import type { HiddenChange } from "../../src/doc/replicated-doc.js";
import { ErrorCode } from "../../src/errors/errors.js";
import { silentLogger } from "../../src/errors/logger.js";
import { createMemoryStorage, type MemoryStorage } from "../../src/memory/memory-storage.js";
import { createMemoryHub } from "../../src/memory/memory-transport.js";
import type { Change, Snapshot } from "../../src/model/change.js";
import { createReplica, openReplica, type Replica } from "../../src/sync/replica.js";
import { createManualScheduler } from "../../src/sync/scheduler.js";
import { drive } from "./support/drive.js";
import { initial, type V1, type V2, v1, v2 } from "./support/schema-versions.js";

/**
 * Rolling schema upgrades (docs/core.md, "Schema upgrades"): a gateway on the old schema applies
 * what a gateway on the new one writes, hides what its schema refuses, never holds back the writer's
 * later changes, and shows everything once it runs the new schema.
 */

const docId = toDocId("gateway");

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms = 1) => (t += ms) };
}

const options = (replicaId: string, now: () => number, snapshot?: Snapshot | Uint8Array) => ({
  docId,
  replicaId,
  clock: now,
  initial,
  ...(snapshot === undefined ? {} : { snapshot }),
});
const makeV1 = (replicaId: string, now: () => number, snapshot?: Snapshot | Uint8Array): Doc<V1> =>
  createDoc({ schema: v1, ...options(replicaId, now, snapshot) });
const makeV2 = (replicaId: string, now: () => number, snapshot?: Snapshot | Uint8Array): Doc<V2> =>
  createDoc({ schema: v2, ...options(replicaId, now, snapshot) });

/** The new writer's changes: values v1 refuses, then ordinary ones. */
function writeNew(b: Doc<V2>, c: ReturnType<typeof clock>): Change[] {
  const out: Change[] = [];
  const push = (x: Change | undefined) => {
    if (x !== undefined) out.push(x);
    c.advance();
  };
  push(b.set(["routes", "a"], { host: "10.0.0.1", mode: "h2" }));
  push(b.set(["routes", "b"], { host: "10.0.0.2", mode: "http", region: "eu" }));
  push(b.set(["flags", "canary"], true));
  push(b.set(["level"], "max"));
  push(b.increment(["visits"], 3));
  push(b.set(["routes", "c"], { host: "10.0.0.3", mode: "https" }));
  push(b.increment(["hits"], 2));
  return out;
}

const wire = (changes: readonly Change[]): unknown[] => JSON.parse(JSON.stringify(changes));
const pathsOf = (hidden: readonly HiddenChange[] | undefined) =>
  (hidden ?? []).flatMap((h) => h.paths.map((p) => p.join(".")));

describe("a doc on an older schema", () => {
  it("applies what it refuses, hides it, and lets the writer's later changes through", () => {
    const c = clock();
    const a = makeV1("gw-old", c.now);
    const b = makeV2("gw-new", c.now);
    const changes = writeNew(b, c);
    const r = a.applyRemote(wire(changes));
    expect(r.rejected).toEqual([]);
    expect(r.applied).toHaveLength(changes.length);
    expect(a.gaps()).toEqual({});
    expect(a.version()).toEqual(b.version());
    // Each change that hid something is reported once, with a typed reason.
    expect(pathsOf(r.hidden)).toEqual(["routes.a", "routes.b.region", "flags.canary", "level", "visits"]);
    for (const h of r.hidden ?? []) expect(h.error.code).toBe(ErrorCode.SchemaInvalid);
    // The typed state is valid under v1: a refused record entry is absent, an unknown key is absent,
    // a refused required value shows `initial`'s.
    expect(a.get()).toEqual({
      routes: { b: { host: "10.0.0.2", mode: "http" }, c: { host: "10.0.0.3", mode: "https" } },
      flags: { maintenance: false },
      level: "low",
      hits: 2,
    });
    expect(v1.strict().parse(a.get())).toEqual(a.get());
    expect(a.hidden().map((h) => [h.path.join("."), h.reason, h.fallback])).toEqual(
      expect.arrayContaining([
        ["routes.a", "refused", undefined],
        ["routes.b.region", "unknown", undefined],
        ["flags.canary", "unknown", undefined],
        ["level", "refused", "low"],
        ["visits", "unknown", undefined],
      ]),
    );
    // Applying again is a duplicate, not a second report.
    const again = a.applyRemote(wire(changes));
    expect(again.duplicates).toBe(changes.length);
    expect(again.hidden).toEqual([]);
  });

  it("keeps what it hides in its snapshots and change log: a newer schema shows it (upgrading)", () => {
    const c = clock();
    const a = makeV1("gw-old", c.now);
    const b = makeV2("gw-new", c.now);
    a.applyRemote(wire(writeNew(b, c)));
    // Forwarded: a third doc on v2 that only talks to the old one gets everything.
    const third = makeV2("gw-third", c.now);
    expect(third.applyRemote(wire(a.changesSince({}))).rejected).toEqual([]);
    expect(third.get()).toEqual(b.get());
    // Upgraded: the old one restarted on v2 from its JSON or binary snapshot.
    for (const snap of [JSON.parse(JSON.stringify(a.snapshot())), a.snapshotBinary()]) {
      const up = makeV2("gw-old", c.now, snap);
      expect(up.get()).toEqual(b.get());
      expect(up.hidden()).toEqual([]);
      expect(up.snapshot().state).toEqual(b.snapshot().state);
    }
    // Restarted on v1 again: the same typed state, the same hidden paths.
    const again = makeV1("gw-old", c.now, a.snapshotBinary());
    expect(again.get()).toEqual(a.get());
    expect(again.hidden().length).toBe(a.hidden().length);
  });

  it("hides what a merged snapshot of the newer schema holds (a server that compacted)", () => {
    const c = clock();
    const a = makeV1("gw-old", c.now);
    const b = makeV2("gw-new", c.now);
    writeNew(b, c);
    c.advance();
    const mine = a.set(["routes", "mine"], { host: "10.0.0.9", mode: "http" }) as Change;
    const r = a.applySnapshot(b.snapshot());
    expect(r.rejected).toEqual([]);
    expect(a.version()).toEqual({ ...b.version(), "gw-old": mine.seq });
    expect(a.get().routes).toEqual({
      b: { host: "10.0.0.2", mode: "http" },
      c: { host: "10.0.0.3", mode: "https" },
      mine: { host: "10.0.0.9", mode: "http" },
    });
    expect(a.get().level).toBe("low");
    expect(
      a
        .hidden()
        .map((h) => h.path.join("."))
        .sort(),
    ).toEqual(["flags.canary", "level", "routes.a", "routes.b.region", "visits"]);
  });

  it("converges on what both schemas accept, and its writes never drop what it cannot see", () => {
    const c = clock();
    const a = makeV1("gw-old", c.now);
    const b = makeV2("gw-new", c.now);
    a.applyRemote(wire(writeNew(b, c)));
    c.advance();
    a.change((d) => {
      d.routes.b = { host: "10.0.0.22", mode: "https" }; // region stays on b
      d.flags.maintenance = true;
      d.hits += 1;
    });
    c.advance();
    a.set(["routes", "a"], { host: "10.0.0.11", mode: "https" }); // overwrites the h2 route it hid
    expect(b.applyRemote(wire(a.changesSince(b.version()))).rejected).toEqual([]);
    expect(b.get()).toEqual({
      routes: {
        a: { host: "10.0.0.11", mode: "https" },
        b: { host: "10.0.0.22", mode: "https", region: "eu" },
        c: { host: "10.0.0.3", mode: "https" },
      },
      flags: { maintenance: true, canary: true },
      level: "max",
      hits: 3,
      visits: 3,
    });
    expect(a.get()).toEqual({
      routes: {
        a: { host: "10.0.0.11", mode: "https" },
        b: { host: "10.0.0.22", mode: "https" },
        c: { host: "10.0.0.3", mode: "https" },
      },
      flags: { maintenance: true },
      level: "low",
      hits: 3,
    });
    expect(a.hidden().map((h) => h.path.join("."))).not.toContain("routes.a");
    // A value v1 accepts, written later, shows again.
    c.advance();
    a.applyRemote(wire([b.set(["level"], "high") as Change]));
    expect(a.get().level).toBe("high");
    expect(a.hidden().map((h) => h.path.join("."))).not.toContain("level");
  });

  it("refuses local writes it would have to hide, and malformed changes as before", () => {
    const c = clock();
    const a = makeV1("gw-old", c.now);
    const b = makeV2("gw-new", c.now);
    a.applyRemote(wire(writeNew(b, c)));
    expect(() => a.set(["level"], "max" as never)).toThrow(
      expect.objectContaining({ code: ErrorCode.SchemaInvalid }),
    );
    expect(() => a.set(["routes", "d"], { host: "h", mode: "h2" })).toThrow(
      expect.objectContaining({ code: ErrorCode.SchemaInvalid }),
    );
    expect(() => a.set(["region"], "eu")).toThrow(expect.objectContaining({ code: ErrorCode.SchemaInvalid }));
    // A valid write inside a value it hides is kept, and the value stays hidden.
    c.advance();
    const inside = a.set(["routes", "a", "host"], "10.0.0.111") as Change;
    expect(a.get().routes.a).toBeUndefined();
    b.applyRemote(wire([inside]));
    expect(b.get().routes.a).toEqual({ host: "10.0.0.111", mode: "h2" });
    const good = JSON.parse(JSON.stringify(b.increment(["hits"])));
    const bad = [
      { ...good, doc: "other" },
      { ...good, ops: [{ kind: "inc", path: ["flags", "maintenance"], value: 1 }] },
      { ...good, ops: [{ kind: "set", path: ["hits"], value: 1 }] },
      { ...good, hlc: "garbage" },
    ];
    for (const input of bad) {
      const r = a.applyRemote([input]);
      expect(r.applied).toEqual([]);
      expect(r.rejected).toHaveLength(1);
      expect(r.rejected[0]?.error.code).not.toBe(ErrorCode.SchemaInvalid);
    }
    expect(a.applyRemote([good]).applied).toHaveLength(1);
  });

  it("without `initial`, a required value it refuses has no fallback: that change is rejected", () => {
    const c = clock();
    const base = makeV1("gw-base", c.now);
    const a = createDoc({ schema: v1, docId, replicaId: "gw-old", clock: c.now, snapshot: base.snapshot() });
    const b = makeV2("gw-new", c.now);
    c.advance();
    const r = a.applyRemote(wire([b.set(["level"], "max") as Change]));
    expect(r.rejected.map((x) => x.error.code)).toEqual([ErrorCode.SchemaInvalid]);
    expect(a.gaps()).toEqual({});
    expect(a.get().level).toBe("low");
  });
});

describe("two gateways on two schemas through a hub", () => {
  it("converge, leave no gaps on the old one, and the old one catches up fully once upgraded", async () => {
    const scheduler = createManualScheduler({ now: 1_700_000_000_000 });
    const hub = createMemoryHub({ seed: 7 });
    const world = { hub, scheduler };
    const now = () => scheduler.now();
    const start = async <D extends Doc<unknown>>(doc: D, storage: MemoryStorage) => {
      const replica = createReplica({
        doc,
        storage,
        transport: hub.transport(docId, { name: doc.replicaId }),
        scheduler,
        logger: silentLogger,
        retry: { minMs: 100, maxMs: 1_000 },
      });
      const rejected: unknown[] = [];
      replica.on("rejected", (e) => rejected.push(...e.rejected));
      const hidden: string[] = [];
      replica.on("hidden", (e) => hidden.push(...e.hidden.map((h) => `${h.change.seq}:${h.error.code}`)));
      await replica.start();
      return { replica, rejected, hidden };
    };
    const oldStorage = createMemoryStorage();
    const old = await start(makeV1("gw-old", now), oldStorage);
    const neu = await start(makeV2("gw-new", now), createMemoryStorage());
    const caughtUp = (x: Replica<Doc<unknown>>, y: Replica<Doc<unknown>>) => () =>
      JSON.stringify(x.doc.version()) === JSON.stringify(y.doc.version()) &&
      x.status().pendingChanges === 0 &&
      y.status().pendingChanges === 0;

    const b = neu.replica.doc as unknown as Doc<V2>;
    b.set(["routes", "a"], { host: "10.0.0.1", mode: "h2" });
    b.set(["flags", "canary"], true);
    b.set(["level"], "max");
    // Later changes of the same writer, on paths both schemas accept.
    for (let i = 0; i < 5; i++) b.set(["routes", `r${i}`], { host: `10.0.1.${i}`, mode: "http" });
    b.increment(["hits"], 4);
    await drive(world, caughtUp(old.replica, neu.replica));
    const a = old.replica.doc as unknown as Doc<V1>;
    expect(old.rejected).toEqual([]);
    // The replica reports what it hides, once per change (the route in h2, the canary flag, the level).
    expect(old.hidden).toEqual(["1:schema/invalid", "2:schema/invalid", "3:schema/invalid"]);
    expect(old.replica.status().gaps).toEqual({});
    expect(Object.values(old.replica.status().lag ?? {}).every((n) => n === 0)).toBe(true);
    expect(Object.keys(a.get().routes).sort()).toEqual(["r0", "r1", "r2", "r3", "r4"]);
    expect(a.get().hits).toBe(4);

    // The old one writes; the new one gets it, and both agree on what both accept.
    a.set(["routes", "r0", "host"], "10.0.9.9");
    a.set(["flags", "maintenance"], true);
    await drive(world, caughtUp(old.replica, neu.replica));
    expect(b.get().routes.r0).toEqual({ host: "10.0.9.9", mode: "http" });
    expect(b.get().flags).toEqual({ maintenance: true, canary: true });
    const shared = (s: {
      routes: Record<string, unknown>;
      hits: number;
      flags: { maintenance: boolean };
    }) => ({
      routes: Object.fromEntries(Object.entries(s.routes).filter(([k]) => k !== "a")),
      hits: s.hits,
      maintenance: s.flags.maintenance,
    });
    expect(shared(a.get() as V1)).toEqual(shared(b.get() as V2));
    expect(neu.rejected).toEqual([]);

    // Upgrade: the old gateway stops and comes back on v2 from its own storage.
    await old.replica.stop();
    const upgraded = await openReplica({
      storage: oldStorage.reopen(),
      transport: hub.transport(docId, { name: "gw-old-v2" }),
      scheduler,
      logger: silentLogger,
      createDoc: ({ snapshot, last }) =>
        createDoc({
          schema: v2,
          docId,
          replicaId: "gw-old",
          clock: now,
          initial,
          ...(snapshot === undefined ? {} : { snapshot }),
          ...(last === undefined ? {} : { last }),
        }),
    });
    // Everything shows at once, from its own storage.
    expect(upgraded.doc.get()).toEqual(b.get());
    b.set(["routes", "a", "region"], "eu");
    await drive(world, caughtUp(upgraded, neu.replica));
    expect(upgraded.doc.get()).toEqual(b.get());
    expect(upgraded.doc.snapshot().state).toEqual(b.snapshot().state);
    await upgraded.stop();
    await neu.replica.stop();
  });
});
