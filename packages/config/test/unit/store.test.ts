import { isNxsError } from "@nxs-sync/core";
import { describe, expect, expectTypeOf, it } from "vitest";
import { ConfigConflictError, InvalidConfigError } from "../../src/errors.js";
import { flush, harness, keyringOf, putHostile } from "./store-helpers.js";

const who = { author: "ann", message: "change" };
const codeOf = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (isNxsError(e) ? e.code : String(e)),
  );

describe("config store", () => {
  it("serves a typed value from memory after a put; a stale expectedVersion conflicts carrying the head", async () => {
    const h = harness();
    const backend = h.backend();
    const { store, events } = h.store(backend);
    expect(await store.start()).toEqual({ source: "server" });
    expect(() => store.get("limits")).toThrow(/no good version/);
    const v1 = await store.put("limits", { rps: 5, burst: 1 }, { expectedVersion: 0, ...who });
    expect(v1).toMatchObject({
      version: 1,
      node: "gw-1",
      author: "ann",
      message: "change",
      origin: "memory:a",
    });
    const limits = store.get("limits");
    expectTypeOf(limits).toEqualTypeOf<{ rps: number; burst: number }>();
    expect(limits).toEqual({ rps: 5, burst: 1 });
    expect(Object.isFrozen(limits)).toBe(true);
    expect(store.version("limits")?.id).toBe(v1.id);
    expect(events.filter((e) => e.type === "change")).toHaveLength(1);

    const err = await store
      .put("limits", { rps: 6, burst: 1 }, { expectedVersion: 0, ...who })
      .catch((e) => e);
    expect(err).toBeInstanceOf(ConfigConflictError);
    expect((err as ConfigConflictError).current?.id).toBe(v1.id);
    expect(store.get("limits").rps).toBe(5);
    // Defaults of the schema are applied before the value is stored.
    await store.put("limits", { rps: 7 }, { expectedVersion: 1, ...who });
    expect(store.get("limits")).toEqual({ rps: 7, burst: 10 });
    expect(
      await codeOf(store.put("nope" as "limits", { rps: 1, burst: 1 }, { expectedVersion: 0, ...who })),
    ).toBe("config/unknown-key");
    await store.close();
  });

  it("concurrent puts from many stores on one expectedVersion: exactly one wins", async () => {
    const h = harness();
    const backend = h.backend();
    const stores = Array.from({ length: 6 }, (_, i) => h.store(backend, { node: `gw-${i}` }).store);
    await Promise.all(stores.map((s) => s.start()));
    await stores[0]!.put("flags", { a: true }, { expectedVersion: 0, ...who });
    const results = await Promise.allSettled(
      stores.map((s, i) => s.put("flags", { [`n${i}`]: true }, { expectedVersion: 1, ...who })),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won).toHaveLength(1);
    const winner = (won[0] as PromiseFulfilledResult<{ id: string }>).value;
    for (const r of results) {
      if (r.status === "rejected") expect((r.reason as ConfigConflictError).current?.id).toBe(winner.id);
    }
    await flush();
    for (const s of stores) expect(s.version("flags")?.id).toBe(winner.id);
    await Promise.all(stores.map((s) => s.close()));
  });

  it("refuses an invalid value naming each failing field, and stores nothing", async () => {
    const h = harness();
    const backend = h.backend();
    const { store } = h.store(backend);
    await store.start();
    const err = await store
      .put("limits", { rps: 0, burst: "x" } as never, { expectedVersion: 0, ...who })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as InvalidConfigError).code).toBe("config/invalid-value");
    expect((err as InvalidConfigError).issues.map((i) => i.path).sort()).toEqual(["burst", "rps"]);
    expect(backend.exportRecords().versions).toEqual([]);
    await store.close();
  });

  it("history (newest first, redacted), diff as RFC 6902, rollback to an old value; compacted and unknown versions are typed errors", async () => {
    const h = harness();
    const backend = h.backend();
    const { store } = h.store(backend);
    await store.start();
    for (const [i, rps] of [5, 6, 7].entries())
      await store.put("limits", { rps, burst: 1 }, { expectedVersion: i, ...who });
    const history = await store.history("limits");
    expect(history.map((v) => [v.version, v.value])).toEqual([
      [3, { rps: 7, burst: 1 }],
      [2, { rps: 6, burst: 1 }],
      [1, { rps: 5, burst: 1 }],
    ]);
    expect((await store.history("limits", { limit: 1, before: 3 })).map((v) => v.version)).toEqual([2]);
    expect(await store.diff("limits", 1, 3)).toEqual([{ op: "replace", path: "/rps", value: 7 }]);
    const back = await store.rollback("limits", 1, { author: "bob", message: "undo" });
    expect(back).toMatchObject({ version: 4, rollbackOf: 1, author: "bob" });
    expect(store.get("limits").rps).toBe(5);
    expect(await store.diff("limits", 1, back.id)).toEqual([]);
    expect(await store.compact({ keepLast: 2 })).toBe(2);
    expect(await codeOf(store.diff("limits", 1, 4))).toBe("config/compacted");
    expect(await codeOf(store.rollback("limits", 2, who))).toBe("config/compacted");
    expect(await codeOf(store.diff("limits", 3, 99))).toBe("config/not-found");
    await store.close();
  });

  it("never lets a plain secret reach the backend, history, diffs or an export; opens it for get", async () => {
    const h = harness();
    const backend = h.backend();
    const { store } = h.store(backend);
    await store.start();
    await store.put("providers", { name: "p", apiKey: "hunter2-secret" }, { expectedVersion: 0, ...who });
    await store.put("providers", { name: "p", apiKey: "swordfish-secret" }, { expectedVersion: 1, ...who });
    expect(store.get("providers").apiKey).toBe("swordfish-secret");
    const everything = JSON.stringify([
      backend.exportRecords(),
      await store.history("providers"),
      await store.diff("providers", 1, 2),
      await store.exportEnv("yaml"),
      await store.exportEnv("json"),
    ]);
    expect(everything).not.toMatch(/hunter2|swordfish/);
    expect(JSON.stringify(await store.history("providers"))).toMatch(/\[secret k1 [0-9a-f]{8}\]/);
    // A store without the key reports the version as unusable and serves nothing for that key.
    const blind = h.store(backend, { keyring: undefined, node: "gw-9" });
    await blind.store.start();
    expect(
      blind.events.some((e) => e.type === "invalid" && e.error.code === "config/secret-key-missing"),
    ).toBe(true);
    expect(() => blind.store.get("providers")).toThrow(/no good version/);
    await store.close();
    await blind.store.close();
  });

  it("a stored version that fails its schema is reported and the last good one stays in use (live and at boot)", async () => {
    const h = harness();
    const backend = h.backend();
    const { store, events } = h.store(backend);
    await store.start();
    const good = await store.put("limits", { rps: 5, burst: 1 }, { expectedVersion: 0, ...who });
    // Written straight to the backend, past the store's validation (an older schema, a hostile writer).
    await putHostile(backend, 1);
    await flush();
    const invalid = events.filter((e) => e.type === "invalid");
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ key: "limits", version: { id: "hostile00000000", version: 2 } });
    expect(store.get("limits").rps).toBe(5);
    expect(store.version("limits")?.id).toBe(good.id);
    // A store booting now finds the invalid head, reads history, and serves the last good.
    const fresh = h.store(backend, { node: "gw-2" });
    await fresh.store.start();
    expect(fresh.store.version("limits")?.id).toBe(good.id);
    expect(fresh.events.filter((e) => e.type === "invalid")).toHaveLength(1);
    // The next valid version (based on the invalid head) is used again.
    await store.put("limits", { rps: 8, burst: 1 }, { expectedVersion: 2, ...who });
    await flush();
    expect(fresh.store.get("limits").rps).toBe(8);
    await store.close();
    await fresh.store.close();
  });

  it("promotes another environment's heads into this one, diff first; a dry run writes nothing", async () => {
    const h = harness();
    const backend = h.backend();
    const staging = h.store(backend, { env: "staging" }).store;
    const prod = h.store(backend).store;
    await Promise.all([staging.start(), prod.start()]);
    await prod.put("limits", { rps: 5, burst: 1 }, { expectedVersion: 0, ...who });
    await staging.put("limits", { rps: 9, burst: 1 }, { expectedVersion: 0, ...who });
    await staging.put("providers", { name: "p", apiKey: "k" }, { expectedVersion: 0, ...who });
    const dry = await prod.promote({ from: "staging", dryRun: true, ...who });
    expect(dry.map((c) => [c.key, c.patch.length, c.written])).toEqual([
      ["limits", 1, undefined],
      ["providers", 1, undefined],
    ]);
    expect(dry[0]!.patch).toEqual([{ op: "replace", path: "/rps", value: 9 }]);
    expect(prod.version("providers")).toBeUndefined();
    const done = await prod.promote({ from: "staging", keys: ["limits", "providers"], ...who });
    expect(done.map((c) => c.written?.version)).toEqual([2, 1]);
    expect(prod.get("limits").rps).toBe(9);
    expect(prod.get("providers").apiKey).toBe("k");
    expect((await prod.promote({ from: "staging", ...who })).every((c) => c.patch.length === 0)).toBe(true);
    await staging.close();
    await prod.close();
  });

  it("exports and imports an environment (dry run diff first); a secret whose key id is not held is left as stored", async () => {
    const h = harness();
    const backend = h.backend();
    const source = h.store(backend, { env: "staging" }).store;
    await source.start();
    await source.put("limits", { rps: 3, burst: 0 }, { expectedVersion: 0, ...who });
    await source.put("providers", { name: "p", apiKey: "from-k1" }, { expectedVersion: 0, ...who });
    const text = await source.exportEnv("yaml");

    // The target holds only k2: it cannot open the k1 envelope.
    const target = h.store(backend, { keyring: keyringOf("k2") }).store;
    await target.start();
    await target.put("providers", { name: "old", apiKey: "mine-k2" }, { expectedVersion: 0, ...who });
    const dry = await target.importEnv(text, { dryRun: true, ...who });
    expect(dry.secretsSkipped).toEqual(["providers.apiKey"]);
    expect(dry.changes.map((c) => [c.key, c.written])).toEqual([
      ["limits", undefined],
      ["providers", undefined],
    ]);
    expect(target.version("limits")).toBeUndefined();
    const done = await target.importEnv(text, who);
    expect(done.changes.map((c) => c.written?.version)).toEqual([1, 2]);
    expect(target.get("limits")).toEqual({ rps: 3, burst: 0 });
    expect(target.get("providers")).toEqual({ name: "p", apiKey: "mine-k2" });
    expect(await codeOf(target.importEnv("format: nope\n", who))).toMatch(/^config\//);
    await source.close();
    await target.close();
  });

  it("refuses a malformed env, node, key name or timing option at creation with config/invalid naming each", () => {
    const h = harness();
    const backend = h.backend();
    const refusal = (over: Parameters<typeof h.store>[1]): string => {
      try {
        h.store(backend, over);
      } catch (e) {
        return isNxsError(e) ? `${e.code} ${e.message}` : String(e);
      }
      return "created";
    };
    const both = refusal({ env: "Prod!", node: "gw 1" });
    expect(both).toMatch(/^config\/invalid /);
    expect(both).toContain('env "Prod!"');
    expect(both).toContain('node "gw 1"');
    expect(refusal({ bootTimeoutMs: -1 })).toMatch(/^config\/invalid bootTimeoutMs -1/);
    expect(refusal({ retryMs: Number.NaN })).toMatch(/^config\/invalid retryMs NaN/);
  });

  it("refuses a rollout with a bad bake time or share before writing anything", async () => {
    const h = harness();
    const backend = h.backend();
    const { store } = h.store(backend);
    await store.start();
    const base = { bakeMs: 100, check: async () => true, ...who };
    expect(await codeOf(store.rollout("limits", { rps: 1 }, { ...base, bakeMs: -5 }))).toBe("config/invalid");
    expect(await codeOf(store.rollout("limits", { rps: 1 }, { ...base, percent: 150 }))).toBe(
      "config/invalid",
    );
    expect(backend.exportRecords().versions).toEqual([]);
    await store.close();
  });

  it("an import whose value fails its schema writes nothing and names the field", async () => {
    const h = harness();
    const backend = h.backend();
    const { store } = h.store(backend);
    await store.start();
    await store.put("limits", { rps: 1, burst: 0 }, { expectedVersion: 0, ...who });
    const text = JSON.stringify({
      format: "nxs-config/1",
      env: "prod",
      exportedAt: "2026-12-07T00:00:00.000Z",
      keys: {
        flags: { version: 1, value: { a: true } },
        limits: { version: 1, value: { rps: -1, burst: 0 } },
      },
    });
    const err = await store.importEnv(text, who).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as InvalidConfigError).issues.map((i) => i.path)).toEqual(["rps"]);
    expect(backend.exportRecords().versions.map((v) => v.key)).toEqual(["limits"]);
    await store.close();
  });

  it("a malformed record quarantined by the backend is an invalid event (config/invalid-record) and changes nothing", async () => {
    const h = harness();
    const backend = h.backend();
    const { store, events } = h.store(backend);
    await store.start();
    await store.put("limits", { rps: 1, burst: 0 }, { expectedVersion: 0, ...who });
    backend.importRecords({
      versions: [{ id: "x", env: "prod", key: "limits", version: 9, value: { rps: 999 } }],
    });
    await flush();
    expect(
      events.filter((e) => e.type === "invalid").map((e) => e.type === "invalid" && e.error.code),
    ).toEqual(["config/invalid-record"]);
    expect(store.get("limits").rps).toBe(1);
    await store.close();
  });

  it("a watch tells an invalid version in its place, without a value, and goes on", async () => {
    const h = harness();
    const backend = h.backend();
    const { store } = h.store(backend);
    await store.start();
    await store.put("limits", { rps: 1, burst: 0 }, { expectedVersion: 0, ...who });
    const log: string[] = [];
    store.watch(
      "limits",
      (e) => log.push(e.type === "conflict" ? "conflict" : `${e.type}:${e.version.version}`),
      { fromVersion: 0 },
    );
    await putHostile(backend, 1);
    await store.put("limits", { rps: 3, burst: 0 }, { expectedVersion: 2, ...who });
    await flush();
    expect(log).toEqual(["version:1", "invalid:2", "version:3"]);
    expect(store.get("limits").rps).toBe(3);
    await store.close();
  });

  it("an invalid version is reported once, even when a watch reads it again after the cache let it go", async () => {
    const h = harness();
    const backend = h.backend();
    const { store, events } = h.store(backend);
    await store.start();
    await store.put("limits", { rps: 1, burst: 0 }, { expectedVersion: 0, ...who });
    await putHostile(backend, 1);
    for (let i = 2; i < 42; i++)
      await store.put("limits", { rps: i, burst: 0 }, { expectedVersion: i, ...who });
    await flush();
    const log: string[] = [];
    store.watch("limits", (e) => log.push(e.type), { fromVersion: 0 });
    await flush();
    expect(log).toHaveLength(42);
    expect(log[1]).toBe("invalid");
    expect(events.filter((e) => e.type === "invalid")).toHaveLength(1);
    expect(store.get("limits").rps).toBe(41);
    await store.close();
  });
});
