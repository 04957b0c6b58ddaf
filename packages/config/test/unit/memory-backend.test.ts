import { isNxsError } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import type { ConfigWatcher, NewVersion } from "../../src/backend.js";
import { createMemoryConfigBackend, replicateConfigRecords } from "../../src/memory-backend.js";
import type { RolloutRecord, StoredVersion } from "../../src/version.js";

/** Lets queued microtasks (the memory backend's deliveries) run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const nv = (id: string, expectedVersion: number, over: Partial<NewVersion> = {}): NewVersion => ({
  id: id.padEnd(15, "0"),
  env: "prod",
  key: "flags",
  expectedVersion,
  hlc: `00000000000${expectedVersion}000000n`,
  node: "n",
  author: "ann",
  message: "m",
  value: { v: expectedVersion + 1 },
  ...over,
});

const recorder = () => {
  const seen: { versions: StoredVersion[]; rollouts: RolloutRecord[]; resyncs: number; invalid: unknown[] } =
    {
      versions: [],
      rollouts: [],
      resyncs: 0,
      invalid: [],
    };
  const watcher: ConfigWatcher = {
    onVersion: (v) => seen.versions.push(v),
    onRollout: (r) => seen.rollouts.push(r),
    onInvalid: (raw) => seen.invalid.push(raw),
    onResync: () => seen.resyncs++,
  };
  return { seen, watcher };
};

describe("memory config backend", () => {
  it("tells watchers after the call returns, never inside it", async () => {
    const b = createMemoryConfigBackend();
    const { seen, watcher } = recorder();
    b.watch("prod", watcher);
    await flush();
    expect(seen.resyncs).toBe(1);
    const put = b.put(nv("a", 0));
    expect(seen.versions).toHaveLength(0);
    await put;
    await flush();
    expect(seen.versions.map((v) => v.version)).toEqual([1]);
  });

  it("down rejects with transport/unavailable; hang holds calls until the link is back; up resyncs", async () => {
    const b = createMemoryConfigBackend();
    const { seen, watcher } = recorder();
    b.watch("prod", watcher);
    await flush();
    b.setLink("down");
    const err = await b.put(nv("a", 0)).catch((e: unknown) => e);
    expect(isNxsError(err) && err.code).toBe("transport/unavailable");
    b.setLink("hang");
    let done = false;
    const held = b.put(nv("a", 0)).then(() => {
      done = true;
    });
    await flush();
    expect(done).toBe(false);
    b.setLink("up");
    await held;
    await flush();
    expect(done).toBe(true);
    expect(seen.resyncs).toBe(2);
    expect(seen.versions.map((v) => v.version)).toEqual([1]);
  });

  it("silent loses events and sends no resync when it ends", async () => {
    const b = createMemoryConfigBackend();
    const { seen, watcher } = recorder();
    b.watch("prod", watcher);
    await flush();
    b.setLink("silent");
    await b.put(nv("a", 0));
    b.setLink("up");
    await b.put(nv("b", 1));
    await flush();
    expect(seen.versions.map((v) => v.version)).toEqual([2]);
    expect(seen.resyncs).toBe(1);
  });

  it("replicates by id as the replicator does: both n+1 of a cut stay, a tombstone wins, rollout moves up", async () => {
    const a = createMemoryConfigBackend({ name: "a" });
    const b = createMemoryConfigBackend({ name: "b" });
    await a.put(nv("base", 0));
    replicateConfigRecords(a, b);
    await a.put(nv("fromaaa", 1, { hlc: "000000000002000000a" }));
    await b.put(nv("frombbb", 1, { hlc: "000000000002000000b" }));
    await b.setRollout({ id: "frombbb00000000", env: "prod", key: "flags", version: 2 }, "rolled-back", "x");
    await a.setRollout({ id: "frombbb00000000", env: "prod", key: "flags", version: 2 }, "promoted", "y");
    expect(await a.compact({ env: "prod", keepLast: 1 })).toBe(1);
    replicateConfigRecords(a, b);
    replicateConfigRecords(b, a);
    expect(a.exportRecords()).toEqual(b.exportRecords());
    const heads = await a.heads("prod");
    expect(heads.map((h) => h.id)).toEqual(["frombbb00000000"]);
    expect((await b.get("base00000000000"))?.compacted).toBe(true);
    expect((await a.rollouts("prod"))[0]?.state).toBe("rolled-back");
    // A live copy never brings a tombstone back.
    const live = { ...(await a.get("base00000000000"))!, value: { v: 1 }, compacted: false };
    expect(a.importRecords({ versions: [live] }).versions).toBe(0);
    expect((await a.get("base00000000000"))?.compacted).toBe(true);
  });

  it("quarantines a malformed record and tells watchers onInvalid", async () => {
    const b = createMemoryConfigBackend();
    const { seen, watcher } = recorder();
    b.watch("prod", watcher);
    const result = b.importRecords({ versions: [{ id: "bad", env: "prod" }] });
    await flush();
    expect(result).toEqual({ versions: 0, rollouts: 0, invalid: 1 });
    expect(seen.invalid).toHaveLength(1);
    expect(await b.list({ env: "prod" })).toEqual([]);
  });

  it("refuses a malformed new version with schema/invalid and stores nothing", async () => {
    const b = createMemoryConfigBackend();
    const err = await b.put(nv("a", 0, { id: "UPPER" })).catch((e: unknown) => e);
    expect(isNxsError(err) && err.code).toBe("schema/invalid");
    const neg = await b.put(nv("a", -1)).catch((e: unknown) => e);
    expect(isNxsError(neg) && neg.code).toBe("schema/invalid");
    const long = await b.put(nv("a", 0, { message: "m".repeat(2001) })).catch((e: unknown) => e);
    expect(isNxsError(long) && long.code).toBe("schema/invalid");
    expect((long as { issues: { path: string[] }[] }).issues[0]?.path).toEqual(["message"]);
    const target = await b.put(nv("a", 0, { rollout: { percent: 101 } })).catch((e: unknown) => e);
    expect(isNxsError(target) && target.code).toBe("schema/invalid");
    expect(b.exportRecords().versions).toEqual([]);
  });
});
