import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ConfigBackend } from "../../src/backend.js";
import { type MemoryConfigBackend, replicateConfigRecords } from "../../src/memory-backend.js";
import { compareVersions, type VersionMeta } from "../../src/version.js";
import { flush, harness, seededIds, watchLog } from "./store-helpers.js";

const who = { author: "ann", message: "change" };

/** No id twice, strictly increasing in (version, hlc, id) order, every number from `from + 1` to `head`. */
function expectOrderedNoRepeatNoSkip(seen: readonly VersionMeta[], from: number, head: number): void {
  expect(new Set(seen.map((v) => v.id)).size).toBe(seen.length);
  for (let i = 1; i < seen.length; i++) expect(compareVersions(seen[i - 1]!, seen[i]!)).toBeLessThan(0);
  const numbers = [...new Set(seen.map((v) => v.version))];
  expect(numbers).toEqual(Array.from({ length: head - from }, (_, i) => from + 1 + i));
}

/**
 * A backend that fails over between servers as the PocketBase backend's pool does: calls go to the
 * current server, and a failover re-subscribes every watch there (whose subscribe tells onResync).
 */
function failoverBackend(servers: readonly MemoryConfigBackend[]) {
  let current = servers[0]!;
  const subs = new Set<{ env: string; watcher: Parameters<ConfigBackend["watch"]>[1]; stop: () => void }>();
  const backend: ConfigBackend = {
    get name() {
      return current.name;
    },
    put: (v) => current.put(v),
    list: (q) => current.list(q),
    heads: (env) => current.heads(env),
    get: (id) => current.get(id),
    compact: (o) => current.compact(o),
    rollouts: (env) => current.rollouts(env),
    setRollout: (v, state, reason) => current.setRollout(v, state, reason),
    watch(env, watcher) {
      const sub = { env, watcher, stop: current.watch(env, watcher) };
      subs.add(sub);
      return () => {
        sub.stop();
        subs.delete(sub);
      };
    },
  };
  return {
    backend,
    failover(to: MemoryConfigBackend) {
      current = to;
      for (const sub of subs) {
        sub.stop();
        sub.stop = to.watch(sub.env, sub.watcher);
      }
    },
  };
}

describe("config store watch", () => {
  it("delivers the versions after fromVersion, then live ones, in order", async () => {
    const h = harness();
    const backend = h.backend();
    const { store } = h.store(backend);
    await store.start();
    for (let i = 0; i < 3; i++)
      await store.put("limits", { rps: i + 1, burst: 0 }, { expectedVersion: i, ...who });
    const log = watchLog<{ rps: number; burst: number }>();
    const stop = store.watch("limits", log.listener, { fromVersion: 1 });
    await flush();
    expect(log.versions().map((v) => v.version)).toEqual([2, 3]);
    await store.put("limits", { rps: 4, burst: 0 }, { expectedVersion: 3, ...who });
    await flush();
    expect(log.events.flatMap((e) => (e.type === "version" ? [e.value.rps] : []))).toEqual([2, 3, 4]);
    // Without fromVersion a watch starts at the newest version known.
    const later = watchLog();
    store.watch("limits", later.listener);
    await store.put("limits", { rps: 5, burst: 0 }, { expectedVersion: 4, ...who });
    await flush();
    expect(later.versions().map((v) => v.version)).toEqual([5]);
    stop();
    await store.put("limits", { rps: 6, burst: 0 }, { expectedVersion: 5, ...who });
    await flush();
    expect(log.versions().map((v) => v.version)).toEqual([2, 3, 4, 5]);
    await store.close();
  });

  it("fills a hole by a query before delivering past it, and resumes after a reconnect with no gap and no repeat", async () => {
    const h = harness();
    const a = h.backend("a");
    const other = h.backend("b");
    const { store } = h.store(a);
    await store.start();
    const writer = h.store(a, { node: "gw-w" }).store;
    await writer.start();
    await writer.put("flags", { v1: true }, { expectedVersion: 0, ...who });
    const log = watchLog();
    store.watch("flags", log.listener, { fromVersion: 0 });
    await flush();
    // v2's event is lost (a dropped SSE message); v3's arrives: a hole, filled before v3 is delivered.
    a.setLink("silent");
    await writer.put("flags", { v2: true }, { expectedVersion: 1, ...who });
    a.setLink("up");
    await writer.put("flags", { v3: true }, { expectedVersion: 2, ...who });
    await flush();
    expect(log.versions().map((v) => v.version)).toEqual([1, 2, 3]);
    // While the link is down, v4 and v5 arrive on the server (replicated from another): after the
    // reconnect the resync's query delivers them.
    a.setLink("down");
    replicateConfigRecords(a, other);
    const onOther = h.store(other, { node: "gw-o" }).store;
    await onOther.start();
    await onOther.put("flags", { v4: true }, { expectedVersion: 3, ...who });
    await onOther.put("flags", { v5: true }, { expectedVersion: 4, ...who });
    replicateConfigRecords(other, a);
    await flush();
    expect(log.versions().map((v) => v.version)).toEqual([1, 2, 3]);
    a.setLink("up");
    await flush();
    a.resync();
    await flush();
    expectOrderedNoRepeatNoSkip(log.versions(), 0, 5);
    expect(log.conflicts()).toEqual([]);
    expect(store.get("flags")).toEqual({ v5: true });
    await Promise.all([store.close(), writer.close(), onOther.close()]);
  });

  it("two stores on two cut-off servers both write n+1: once records meet in any order (some realtime events lost), both converge to one head and history; each watcher sees no repeat, no skip and one conflict", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.constantFrom("ab", "ba", "ab-lost", "ba-lost", "resync-a", "resync-b"), {
          minLength: 0,
          maxLength: 6,
        }),
        fc.boolean(),
        fc.integer({ min: 1, max: 1_000_000 }),
        async (base, steps, extra, seed) => {
          const h = harness();
          const a = h.backend("a");
          const b = h.backend("b");
          const sa = h.store(a, { node: "gw-a", newId: seededIds(seed) });
          const sb = h.store(b, { node: "gw-b", newId: seededIds(seed + 1) });
          /** One replicator round into `to`; `lost`: its realtime events to the store are lost. */
          const replicate = (from: typeof a, to: typeof a, lost: boolean): void => {
            if (lost) to.setLink("silent");
            replicateConfigRecords(from, to);
            if (lost) to.setLink("up");
          };
          await Promise.all([sa.store.start(), sb.store.start()]);
          for (let i = 0; i < base; i++) {
            await sa.store.put("limits", { rps: i + 1, burst: 0 }, { expectedVersion: i, ...who });
            replicateConfigRecords(a, b);
          }
          await flush();
          const wa = watchLog();
          const wb = watchLog();
          sa.store.watch("limits", wa.listener, { fromVersion: 0 });
          sb.store.watch("limits", wb.listener, { fromVersion: 0 });
          await flush();
          // The cut: both write n+1 (and A perhaps n+2 on top of its own).
          await sa.store.put("limits", { rps: 100, burst: 0 }, { expectedVersion: base, ...who });
          await sb.store.put("limits", { rps: 200, burst: 0 }, { expectedVersion: base, ...who });
          if (extra)
            await sa.store.put("limits", { rps: 101, burst: 0 }, { expectedVersion: base + 1, ...who });
          await flush();
          for (const step of steps) {
            if (step === "ab" || step === "ab-lost") replicate(a, b, step === "ab-lost");
            else if (step === "ba" || step === "ba-lost") replicate(b, a, step === "ba-lost");
            else (step === "resync-a" ? a : b).resync();
            await flush();
          }
          // The cut heals: every record meets, and each store's link reconnects (a resync).
          replicateConfigRecords(a, b);
          replicateConfigRecords(b, a);
          a.resync();
          b.resync();
          await flush(10);

          const head = sa.store.version("limits")!;
          expect(sb.store.version("limits")?.id).toBe(head.id);
          expect(sb.store.get("limits")).toEqual(sa.store.get("limits"));
          expect(head.version).toBe(base + (extra ? 2 : 1));
          const ha = (await sa.store.history("limits", { limit: 100 })).map((v) => v.id);
          const hb = (await sb.store.history("limits", { limit: 100 })).map((v) => v.id);
          expect(ha).toEqual(hb);
          expect(ha).toHaveLength(base + (extra ? 3 : 2));
          for (const w of [wa, wb]) {
            expectOrderedNoRepeatNoSkip(w.versions(), 0, head.version);
            expect(w.conflicts()).toHaveLength(1);
            expect(w.events.filter((e) => e.type === "invalid")).toEqual([]);
          }
          for (const s of [sa, sb]) {
            const conflicts = s.events.filter((e) => e.type === "conflict");
            expect(conflicts).toHaveLength(1);
            expect(conflicts[0]).toMatchObject({ key: "limits", winner: { version: base + 1 } });
          }
          await Promise.all([sa.store.close(), sb.store.close()]);
        },
      ),
      { seed: 0x5eed17, numRuns: 60 },
    );
  });

  it("resumes after a failover to a server that lags: no gap, no repeat, the lost n+1 reported as one conflict", async () => {
    const h = harness();
    const a = h.backend("a");
    const b = h.backend("b");
    const pool = failoverBackend([a, b]);
    const gateway = h.store(a, { node: "gw-1" });
    const { store, events } = h.store(a, { node: "gw-2", backend: pool.backend });
    await Promise.all([gateway.store.start(), store.start()]);
    for (let i = 0; i < 3; i++)
      await gateway.store.put("limits", { rps: i + 1, burst: 0 }, { expectedVersion: i, ...who });
    replicateConfigRecords(a, b);
    const log = watchLog();
    store.watch("limits", log.listener, { fromVersion: 0 });
    await flush();
    // v4 reaches A and this watcher, not B: then A is lost and the pool fails over to B.
    await gateway.store.put("limits", { rps: 4, burst: 0 }, { expectedVersion: 3, ...who });
    await flush();
    pool.failover(b);
    await flush();
    expect(log.versions().map((v) => v.version)).toEqual([1, 2, 3, 4]);
    // On B the head is v3: a gateway there writes its own v4 and a v5.
    const onB = h.store(b, { node: "gw-3" }).store;
    await onB.start();
    await onB.put("limits", { rps: 40, burst: 0 }, { expectedVersion: 3, ...who });
    await onB.put("limits", { rps: 50, burst: 0 }, { expectedVersion: 4, ...who });
    await flush();
    // A comes back and the servers exchange records.
    replicateConfigRecords(a, b);
    replicateConfigRecords(b, a);
    await flush();
    expectOrderedNoRepeatNoSkip(log.versions(), 0, 5);
    expect(log.conflicts()).toHaveLength(1);
    expect(events.filter((e) => e.type === "conflict")).toHaveLength(1);
    expect(store.get("limits").rps).toBe(50);
    expect(gateway.store.version("limits")?.id).toBe(store.version("limits")?.id);
    await Promise.all([gateway.store.close(), store.close(), onB.close()]);
  });
});
