import {
  CONFIG_HOOKS,
  configCollections,
  configHookPiece,
  decodeRolloutRecord,
  decodeVersionRecord,
  ROLLOUTS_COLLECTION,
  VERSIONS_COLLECTION,
} from "@nxs-sync/config/pocketbase";
import {
  checkHookPiece,
  compareVersions,
  isBelowPurgeFrontier,
  mergeRecords,
  Order,
} from "@nxs-sync/pocketbase";
import { describe, expect, it } from "vitest";

/** A version record as PocketBase answers it (storage fields included, empty optionals as zeros). */
const record = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  collectionId: "pbc_nxs_config_versions",
  collectionName: VERSIONS_COLLECTION,
  id: "abcdefghij12345",
  env: "production",
  key: "limits",
  version: 3,
  hlc: "0001-0002-gw",
  origin: "origin000001",
  node: "gw-1",
  author: "alice",
  message: "raise",
  createdAt: 1_700_000_000_000,
  rollbackOf: 0,
  rollout: null,
  value: { rps: 10 },
  compacted: false,
  compactedAt: "",
  created: "2026-12-07 07:00:00.000Z",
  updated: "2026-12-07 07:00:00.000Z",
  ...over,
});
const rollout = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  collectionName: ROLLOUTS_COLLECTION,
  id: "abcdefghij12345",
  env: "production",
  key: "limits",
  version: 3,
  state: "staged",
  reason: "",
  updatedAt: 5,
  rev: 5,
  ...over,
});

describe("decodeVersionRecord", () => {
  it("maps PocketBase's empty optionals away and drops the storage fields", () => {
    const d = decodeVersionRecord(record());
    expect(d).toEqual({
      ok: true,
      value: {
        id: "abcdefghij12345",
        env: "production",
        key: "limits",
        version: 3,
        hlc: "0001-0002-gw",
        origin: "origin000001",
        node: "gw-1",
        author: "alice",
        message: "raise",
        createdAt: 1_700_000_000_000,
        value: { rps: 10 },
        compacted: false,
      },
    });
    const staged = decodeVersionRecord(record({ rollbackOf: 2, rollout: { nodes: ["gw-2"] } }));
    expect(staged.ok && staged.value).toMatchObject({ rollbackOf: 2, rollout: { nodes: ["gw-2"] } });
  });

  it.each([
    ["a fractional version", { version: 2.5 }, "version"],
    ["version 0", { version: 0 }, "version"],
    ["an empty hlc", { hlc: "" }, "hlc"],
    ["a bad env", { env: "BAD ENV" }, "env"],
    ["a bad id", { id: "x" }, "id"],
    ["a negative rollbackOf", { rollbackOf: -1 }, "rollbackOf"],
    ["a bad rollout", { rollout: { percent: 200 } }, "rollout"],
    ["a compacted version with a value", { compacted: true, value: { kept: 1 } }, "value"],
    ["a missing field", { author: undefined }, "author"],
  ])("refuses %s, naming the field", (_what, over, field) => {
    const d = decodeVersionRecord(record(over));
    expect(d.ok).toBe(false);
    expect(d.ok ? "" : d.reason).toContain(field);
  });

  it("refuses what is not a record", () => {
    for (const raw of [null, 3, "x", [record()]]) expect(decodeVersionRecord(raw).ok).toBe(false);
  });
});

describe("decodeRolloutRecord", () => {
  it("decodes a rollout and refuses a malformed one", () => {
    expect(decodeRolloutRecord(rollout())).toEqual({
      ok: true,
      value: {
        id: "abcdefghij12345",
        env: "production",
        key: "limits",
        version: 3,
        state: "staged",
        reason: "",
        updatedAt: 5,
      },
    });
    expect(decodeRolloutRecord(rollout({ state: "done" })).ok).toBe(false);
    expect(decodeRolloutRecord(undefined).ok).toBe(false);
  });
});

describe("configCollections", () => {
  const [versions, rollouts, origin] = configCollections();
  const spec = (d: typeof versions) => ({
    key: d?.replication?.key ?? [],
    merge: d?.replication?.merge,
    deletes: d?.replication?.deletes,
  });

  it("replicates versions and rollouts, not the origin", () => {
    expect([versions?.schema.name, rollouts?.schema.name, origin?.schema.name]).toEqual([
      VERSIONS_COLLECTION,
      ROLLOUTS_COLLECTION,
      "nxs_config_origin",
    ]);
    expect(origin?.replication).toBeUndefined();
  });

  it("lets a compacted copy win over a live one, never the reverse", () => {
    const live = record();
    const tomb = record({ compacted: true, value: null, compactedAt: "2026-12-07 07:00:00.000Z" });
    expect(compareVersions(spec(versions), tomb, live)).toBe(Order.Greater);
    expect(mergeRecords(spec(versions), live, tomb)).toMatchObject({ compacted: true, value: null });
    expect(mergeRecords(spec(versions), tomb, live)).toBeUndefined();
    expect(mergeRecords(spec(versions), live, record())).toBeUndefined();
  });

  it("never puts a live version under the purge frontier (it is copied to a server that lacks it)", () => {
    const now = Date.parse("2027-06-01T00:00:00Z");
    expect(isBelowPurgeFrontier(spec(versions), record(), now)).toBe(false);
    const old = record({ compacted: true, value: null, compactedAt: "2026-01-01 00:00:00.000Z" });
    expect(isBelowPurgeFrontier(spec(versions), old, now)).toBe(true);
    const fresh = record({ compacted: true, value: null, compactedAt: "2027-05-31 00:00:00.000Z" });
    expect(isBelowPurgeFrontier(spec(versions), fresh, now)).toBe(false);
  });

  it("merges rollouts monotonically: the higher state wins with its reason", () => {
    const promoted = rollout({ state: "promoted", reason: "ok", rev: 1e13 + 7 });
    const back = rollout({ state: "rolled-back", reason: "health", rev: 2e13 + 6 });
    for (const [a, b] of [
      [promoted, back],
      [back, promoted],
    ]) {
      const merged = mergeRecords(spec(rollouts), a!, b!) ?? a;
      expect(merged).toMatchObject({ state: "rolled-back", reason: "health" });
    }
  });

  it("quarantines a malformed copy through validate", () => {
    expect(versions?.replication?.validate?.(record())).toBeUndefined();
    expect(versions?.replication?.validate?.(record({ version: -1 }))?.code).toBe("schema/invalid");
    expect(rollouts?.replication?.validate?.(rollout({ state: "x" }))?.message).toContain("state");
  });

  it("ships a well-formed hook piece serving its version route", () => {
    const piece = configHookPiece();
    expect(checkHookPiece(piece, { source: true })).toMatchObject(CONFIG_HOOKS);
    expect(piece.source).toContain("/nxs/config/{op}");
  });
});
