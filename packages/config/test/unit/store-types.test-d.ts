import { describe, expectTypeOf, it } from "vitest";
import type { ConfigStore, ConfigWatchEvent } from "../../src/store.js";
import type { VersionMeta } from "../../src/version.js";
import type { Schemas } from "./store-helpers.js";

declare const store: ConfigStore<Schemas>;

describe("config store types", () => {
  it("types get, put and watch by the key's schema", () => {
    expectTypeOf(store.get("limits")).toEqualTypeOf<{ rps: number; burst: number }>();
    expectTypeOf(store.get("providers")).toEqualTypeOf<{ name: string; apiKey: string }>();
    expectTypeOf(store.get("flags")).toEqualTypeOf<Record<string, boolean>>();
    // Written as the schema's input (a field with a default may be left out), read as its output.
    expectTypeOf(store.put<"limits">)
      .parameter(1)
      .toEqualTypeOf<{ rps: number; burst?: number | undefined }>();
    expectTypeOf(
      store.put("limits", { rps: 1, burst: 1 }, { expectedVersion: 0, author: "a", message: "m" }),
    ).resolves.toEqualTypeOf<VersionMeta>();
    expectTypeOf(store.watch<"flags">)
      .parameter(1)
      .parameter(0)
      .toEqualTypeOf<ConfigWatchEvent<Record<string, boolean>>>();
    // @ts-expect-error: a key without a schema
    store.get("nope");
    // @ts-expect-error: a value of the wrong shape
    void store.put("limits", { rps: "fast", burst: 1 }, { expectedVersion: 0, author: "a", message: "m" });
  });
});
