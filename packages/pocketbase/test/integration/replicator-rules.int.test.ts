import { silentLogger } from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CollectionDef,
  createCollectionRegistry,
  createReplicator,
  DeletePolicies,
  ensureSchema,
  MergeRules,
  NodeRole,
  type Replicator,
} from "../../src/index.js";
import { makeNode, provision } from "./helpers.js";

/**
 * Merge rules and delete policies of collections of one's own, on real servers (docs/pocketbase.md,
 * "The replicator"). Deletes replicate: with a tombstone policy, a record deleted on one server
 * ends deleted on the other, even where the other took a later live write meanwhile, and
 * anti-entropy never brings it back. A monotonic merge per field: a job's state (by its rank) and
 * attempt number only move forward, so two servers that each advanced another field both end with
 * both advances, and the body follows its revision. Deletes that finish: under a tombstone policy
 * with `purgeAfterMs`, a deleted record stays deleted through anti-entropy, is purged on every
 * server once its tombstone is older than the retention everywhere, and does not come back from a
 * server that still holds an older copy; with `revive`, a later write sets a deleted key again.
 * A tombstone policy's purge time left unset (a number field at 0) is no time: live records are
 * copied, a tombstone goes by `updated`. json fields are copied as they are: a string that looks
 * like JSON ("12", "true", "[1]") stays a string in the copy (PocketBase would read it as JSON).
 * Time is the replicator's scheduler, moved forward by the test (no sleeps).
 */

const REPLICATOR = '@request.auth.collectionName = "nxs_replicators"';
const items: CollectionDef = {
  id: "pbc_test_items",
  name: "test_items",
  type: "base",
  fields: [
    { name: "key", type: "text", required: true, max: 64 },
    { name: "value", type: "json" },
    { name: "rev", type: "number", required: true, onlyInt: true, min: 1 },
    { name: "deleted", type: "bool" },
  ],
  indexes: ["CREATE UNIQUE INDEX idx_test_items_key ON test_items (key)"],
  listRule: REPLICATOR,
  viewRule: REPLICATOR,
  createRule: REPLICATOR,
  updateRule: REPLICATOR,
  deleteRule: null,
};
const STATES = ["queued", "leased", "done"];
const jobs: CollectionDef = {
  ...items,
  id: "pbc_test_jobs",
  name: "test_jobs",
  fields: [
    { name: "key", type: "text", required: true, max: 64 },
    { name: "state", type: "select", required: true, maxSelect: 1, values: STATES },
    { name: "attempt", type: "number", onlyInt: true, min: 0 },
    { name: "rev", type: "number", required: true, onlyInt: true, min: 1 },
    { name: "payload", type: "json" },
  ],
  indexes: ["CREATE UNIQUE INDEX idx_test_jobs_key ON test_jobs (key)"],
};
/** Records kept one minute (`at`, ms): every server purges older ones on its own. */
const RETENTION_MS = 60_000;
const samples: CollectionDef = {
  ...items,
  id: "pbc_test_samples",
  name: "test_samples",
  fields: [
    { name: "key", type: "text", required: true, max: 64 },
    { name: "at", type: "number", required: true, onlyInt: true, min: 1 },
  ],
  indexes: ["CREATE UNIQUE INDEX idx_test_samples_key ON test_samples (key)"],
};
const RETAIN_MS = 60_000;
/** `test_items` with a writer-set time (`at`, ms): its tombstones are purged after RETAIN_MS. */
const purgeable: CollectionDef = {
  ...items,
  id: "pbc_test_purgeable",
  name: "test_purgeable",
  fields: [...items.fields, { name: "at", type: "number", required: true, onlyInt: true, min: 1 }],
  indexes: ["CREATE UNIQUE INDEX idx_test_purgeable_key ON test_purgeable (key)"],
  // Replicators purge tombstones only: a key set again meanwhile is not deleted.
  deleteRule: `${REPLICATOR} && deleted = true`,
};
/**
 * `test_purgeable` whose writers set `at` on deletes only: a live record holds 0 there (PocketBase's
 * value of a number field nobody set), which is "no time", and a tombstone without one goes by
 * `updated`.
 */
const unsetAt: CollectionDef = {
  ...purgeable,
  id: "pbc_test_unset_at",
  name: "test_unset_at",
  fields: [
    ...items.fields,
    { name: "at", type: "number", onlyInt: true, min: 0 },
    { name: "created", type: "autodate", onCreate: true, onUpdate: false },
    { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
  ],
  indexes: ["CREATE UNIQUE INDEX idx_test_unset_at_key ON test_unset_at (key)"],
};
/** json fields (and a text field) to copy values of every type through, strings that look like JSON among them. */
const jsonDocs: CollectionDef = {
  ...items,
  id: "pbc_test_json_docs",
  name: "test_json_docs",
  fields: [
    { name: "key", type: "text", required: true, max: 64 },
    { name: "value", type: "json" },
    { name: "meta", type: "json" },
    { name: "label", type: "text" },
    { name: "rev", type: "number", required: true, onlyInt: true, min: 1 },
  ],
  indexes: ["CREATE UNIQUE INDEX idx_test_json_docs_key ON test_json_docs (key)"],
};
const registry = createCollectionRegistry([
  {
    schema: items,
    replication: { key: ["key"], merge: MergeRules.lww("rev"), deletes: DeletePolicies.tombstone("deleted") },
  },
  {
    schema: jobs,
    replication: {
      key: ["key"],
      merge: MergeRules.monotonic([{ field: "state", rank: STATES }, "attempt"], "rev"),
    },
  },
  {
    schema: samples,
    replication: { key: ["key"], deletes: DeletePolicies.retention("at", RETENTION_MS, () => Date.now()) },
  },
  {
    schema: purgeable,
    replication: {
      key: ["key"],
      merge: MergeRules.lww("rev"),
      deletes: DeletePolicies.tombstone("deleted", { revive: true, purgeAfterMs: RETAIN_MS, at: "at" }),
    },
  },
  {
    schema: unsetAt,
    replication: {
      key: ["key"],
      merge: MergeRules.lww("rev"),
      deletes: DeletePolicies.tombstone("deleted", { purgeAfterMs: RETAIN_MS, at: "at" }),
    },
  },
  { schema: jsonDocs, replication: { key: ["key"], merge: MergeRules.lww("rev") } },
]);

const servers = usePocketBaseServers();
let a: ProcessPocketBase;
let b: ProcessPocketBase;
const repl = makeNode("repl", NodeRole.Replicator);

beforeAll(async () => {
  [a, b] = (await Promise.all([
    servers.start({ name: "deletes-a", batch: false }),
    servers.start({ name: "deletes-b", batch: false }),
  ])) as [ProcessPocketBase, ProcessPocketBase];
  for (const s of [a, b]) {
    await ensureSchema(s.client(), { rateLimits: false });
    expect((await ensureSchema(s.client(), { collections: registry, rateLimits: false })).created).toEqual([
      "test_items",
      "test_jobs",
      "test_samples",
      "test_purgeable",
      "test_unset_at",
      "test_json_docs",
    ]);
    await provision(s, [repl]);
  }
});

let running: Replicator[] = [];
afterEach(async () => {
  for (const r of running) await r.stop();
  running = [];
});

/** A replicator of `collections` whose clock runs `skew.ms` ahead (moved forward by a test). */
function replicator(
  collections: Parameters<typeof createReplicator>[0]["collections"] = registry,
  skew: { readonly ms: number } = { ms: 0 },
): Replicator {
  const timers = createTimerScheduler();
  const r = createReplicator({
    scheduler: { now: () => Date.now() + skew.ms, schedule: timers.schedule },
    servers: [
      { url: a.url, auth: repl.auth },
      { url: b.url, auth: repl.auth },
    ],
    collections,
    intervalMs: 3_600_000,
    logger: silentLogger,
  });
  running.push(r);
  return r;
}

const item = async (s: ProcessPocketBase, key: string, collection = "test_items") =>
  (
    await s
      .client()
      .collection(collection)
      .getList(1, 1, { filter: s.client().filter("key = {:key}", { key }) })
  ).items[0];
const write = async (
  s: ProcessPocketBase,
  key: string,
  patch: Record<string, unknown>,
  collection = "test_items",
) => {
  const pb = s.client();
  const have = await item(s, key, collection);
  if (have === undefined) await pb.collection(collection).create({ key, ...patch });
  else await pb.collection(collection).update(have.id, patch);
};

describe("replicator: deletes replicate (tombstone policy)", () => {
  it("a record deleted on one server stays deleted on both, although the other wrote it later meanwhile", async () => {
    const r = replicator();
    await r.start();
    await write(a, "k1", { value: { v: 1 }, rev: 1 });
    await waitFor(async () => (await item(b, "k1"))?.rev === 1);
    await r.stop();

    // Cut off (no replicator): A deletes k1, B takes a later live write of it.
    await write(a, "k1", { deleted: true, rev: 2 });
    await write(b, "k1", { value: { v: 3 }, rev: 5 });

    const again = replicator();
    await again.start();
    await again.sync({ full: true });
    for (const s of [a, b]) expect(await item(s, "k1"), s.url).toMatchObject({ deleted: true, rev: 2 });

    // Anti-entropy never brings it back: more rounds, and a stale live write on B, change nothing.
    await again.sync({ full: true });
    await write(b, "k1", { deleted: false, value: { v: 9 }, rev: 9 });
    await again.sync({ full: true });
    expect(await item(a, "k1")).toMatchObject({ deleted: true, rev: 2 });
    expect((await item(b, "k1"))?.deleted).toBe(true);
  });

  it("a live record goes on replicating by its revision (last writer wins) next to the tombstones", async () => {
    // Both written before the replicator runs (its realtime copy could land between the test's
    // read and its create on b).
    await write(a, "k2", { value: { v: 1 }, rev: 1 });
    await write(b, "k2", { value: { v: 2 }, rev: 2 });
    const r = replicator();
    await r.start();
    await r.sync({ full: true });
    for (const s of [a, b])
      expect(await item(s, "k2")).toMatchObject({ value: { v: 2 }, rev: 2, deleted: false });
  });

  it("a user check that throws refuses the record (reported as a quarantine); the round goes on", async () => {
    const [items] = registry.replicated();
    const r = replicator([
      {
        ...items!,
        validate: (rec) => {
          if (rec.key === "bad") throw new Error("check bug");
          return undefined;
        },
      },
    ]);
    const quarantined: string[] = [];
    r.on("quarantine", (q) => quarantined.push(q.error.message));
    await r.start();
    await write(a, "bad", { value: 1, rev: 1 });
    await write(a, "good", { value: 2, rev: 1 });
    const stats = await r.sync({ full: true });
    expect(stats.quarantined + quarantined.length).toBeGreaterThan(0);
    expect(quarantined.some((m) => m.includes("its check threw: Error: check bug"))).toBe(true);
    await waitFor(async () => (await item(b, "good"))?.rev === 1);
    expect(await item(b, "bad")).toBeUndefined();
  });
});

describe("replicator: monotonic merge per field", () => {
  it("two servers that each advanced another field both end with both advances", async () => {
    const j = (s: ProcessPocketBase, patch: Record<string, unknown>) => write(s, "j1", patch, "test_jobs");
    for (const s of [a, b]) await j(s, { state: "queued", attempt: 0, rev: 1, payload: { n: 1 } });
    // Cut off (no replicator): A finishes the job; B counts a third attempt and a newer payload.
    await j(a, { state: "done", attempt: 1 });
    await j(b, { state: "leased", attempt: 3, rev: 2, payload: { n: 2 } });

    const r = replicator();
    await r.start();
    await r.sync({ full: true });
    for (const s of [a, b]) {
      expect(await item(s, "j1", "test_jobs"), s.url).toMatchObject({
        state: "done",
        attempt: 3,
        rev: 2,
        payload: { n: 2 },
      });
    }
    // Settled: another round copies nothing.
    expect((await r.sync({ full: true })).copied).toBe(0);
  });
});

describe("replicator: deletes replicate (retention purge)", () => {
  it("a record past the retention every server applies is not copied back to a server that purged it; newer ones are", async () => {
    const now = Date.now();
    // B still holds an old sample that A purged already, and a fresh one; A holds a fresh one.
    await write(b, "old", { at: now - 2 * RETENTION_MS }, "test_samples");
    await write(b, "fresh-b", { at: now }, "test_samples");
    await write(a, "fresh-a", { at: now }, "test_samples");
    const r = replicator();
    await r.start();
    await r.sync({ full: true });
    expect(await item(a, "old", "test_samples")).toBeUndefined();
    expect(await item(a, "fresh-b", "test_samples")).toMatchObject({ at: now });
    expect(await item(b, "fresh-a", "test_samples")).toMatchObject({ at: now });
    // Further rounds do not bring it back either.
    await r.sync({ full: true });
    expect(await item(a, "old", "test_samples")).toBeUndefined();
  });
});

const pItem = (s: ProcessPocketBase, key: string) => item(s, key, purgeable.name);
const pWrite = (s: ProcessPocketBase, key: string, patch: Record<string, unknown>) =>
  write(s, key, patch, purgeable.name);

describe("replicator: tombstones purged after a retention", () => {
  it("a deleted record stays deleted through anti-entropy, then is purged on both servers; a purged one does not come back", async () => {
    const skew = { ms: 0 };
    const r = replicator(registry, skew);
    const purged: string[] = [];
    r.on("purged", (p) => purged.push(`${p.key}@${p.url}`));
    // Rounds also start in the background (a realtime (re)connect catches up): count every round's.
    let purgedInRounds = 0;
    r.on("sync", (st) => {
      purgedInRounds += st.purged;
    });
    await r.start();
    const t0 = Date.now();
    await pWrite(a, "p1", { value: 1, rev: 1, at: t0 });
    await r.sync({ full: true });
    expect(await pItem(b, "p1")).toMatchObject({ rev: 1, deleted: false });

    // Deleted on A: the tombstone reaches B and stays, round after round, while it is young.
    await pWrite(a, "p1", { deleted: true, rev: 2, at: t0 + 1 });
    for (let i = 0; i < 2; i++) {
      await r.sync({ full: true });
      expect(purgedInRounds).toBe(0);
      for (const s of [a, b]) expect(await pItem(s, "p1"), s.url).toMatchObject({ deleted: true, rev: 2 });
    }

    // Past the retention: purged on both servers (really deleted), by the round this sync runs or
    // by one that started after the clock moved and before it.
    skew.ms = RETAIN_MS + 1_000;
    await r.sync({ full: true });
    expect(purgedInRounds).toBe(2);
    expect(purged.sort()).toEqual([`["p1"]@${a.url}`, `["p1"]@${b.url}`].sort());
    for (const s of [a, b]) expect(await pItem(s, "p1"), s.url).toBeUndefined();

    // B gets back old copies from before the purge (restored from a backup): a live p1 and a
    // tombstone p2. Neither is copied to A; B's old tombstone is purged again.
    await pWrite(b, "p1", { value: 1, rev: 1, at: t0 });
    await pWrite(b, "p2", { deleted: true, rev: 3, at: t0 });
    for (let i = 0; i < 2; i++) await r.sync({ full: true });
    expect(await pItem(a, "p1")).toBeUndefined();
    expect(await pItem(a, "p2")).toBeUndefined();
    expect(await pItem(b, "p2")).toBeUndefined();
    // The stale live copy stays where it was (a live record is never purged; see the docs).
    expect(await pItem(b, "p1")).toMatchObject({ rev: 1, deleted: false });
  });

  it("revive: a later write over a tombstone sets the key again on both servers", async () => {
    const r = replicator();
    await r.start();
    const t0 = Date.now();
    await pWrite(a, "r1", { value: 1, rev: 1, at: t0 });
    await r.sync({ full: true });
    await r.stop();
    // Cut off: A deletes r1; B sets it again later.
    await pWrite(a, "r1", { deleted: true, rev: 2, at: t0 + 1 });
    await pWrite(b, "r1", { value: 3, rev: 3, at: t0 + 2 });
    const again = replicator();
    await again.start();
    await again.sync({ full: true });
    for (const s of [a, b])
      expect(await pItem(s, "r1"), s.url).toMatchObject({ deleted: false, value: 3, rev: 3 });
  });
});

const uItem = (s: ProcessPocketBase, key: string) => item(s, key, unsetAt.name);
const uWrite = (s: ProcessPocketBase, key: string, patch: Record<string, unknown>) =>
  write(s, key, patch, unsetAt.name);

describe("replicator: a purge time left unset (a number field at 0)", () => {
  it("live records with no time are copied (by anti-entropy and realtime, however far the clock is); a tombstone with none is purged by its updated", async () => {
    // Cut off (no replicator): A and B each take a live record whose `at` nobody set (0).
    await uWrite(a, "u1", { value: 1, rev: 1 });
    await uWrite(b, "u2", { value: 2, rev: 1 });
    expect(await uItem(a, "u1")).toMatchObject({ at: 0, deleted: false });
    const skew = { ms: 0 };
    const r = replicator(registry, skew);
    let purgedInRounds = 0;
    r.on("sync", (st) => {
      purgedInRounds += st.purged;
    });
    await r.start();
    await r.sync({ full: true });
    for (const s of [a, b]) {
      expect(await uItem(s, "u1"), s.url).toMatchObject({ value: 1, rev: 1, at: 0 });
      expect(await uItem(s, "u2"), s.url).toMatchObject({ value: 2, rev: 1, at: 0 });
    }
    // Realtime copies one too, with the clock far past any retention.
    skew.ms = 10 * RETAIN_MS;
    await uWrite(a, "u3", { value: 3, rev: 1 });
    await waitFor(async () => (await uItem(b, "u3"))?.rev === 1);

    // Deleted on A without a time: the tombstone reaches B and stays while young (by each server's
    // updated), round after round; the live records are never purged.
    skew.ms = 0;
    await uWrite(a, "u1", { deleted: true, rev: 2 });
    for (let i = 0; i < 2; i++) {
      await r.sync({ full: true });
      expect(purgedInRounds).toBe(0);
      for (const s of [a, b])
        expect(await uItem(s, "u1"), s.url).toMatchObject({ deleted: true, rev: 2, at: 0 });
    }
    // Past the retention (by updated on both servers): purged on both; the live ones stay.
    skew.ms = RETAIN_MS + 1_000;
    await r.sync({ full: true });
    expect(purgedInRounds).toBe(2);
    for (const s of [a, b]) {
      expect(await uItem(s, "u1"), s.url).toBeUndefined();
      for (const k of ["u2", "u3"])
        expect(await uItem(s, k), `${k} at ${s.url}`).toMatchObject({ deleted: false });
    }
  });
});

/** Values of a json field (`test_json_docs`), strings that look like JSON first. */
const VALUES: readonly unknown[] = [
  "12",
  "true",
  "false",
  "null",
  "[1]",
  '{"a":1}',
  "-3.5",
  '"quoted"',
  "",
  "plain text",
  " 12",
  "a<b & c>d",
  12,
  true,
  null,
  [1, "2", "true"],
  { s: "12", t: "true", n: "null", arr: ["[1]"], o: { deep: '{"a":1}' } },
];

const jItem = (s: ProcessPocketBase, key: string) => item(s, key, jsonDocs.name);
/**
 * Writes `value` (and `meta`) at `key` as they are: a string as JSON text (stored verbatim), any
 * other value as is.
 */
const jWrite = async (s: ProcessPocketBase, key: string, value: unknown, rev: number) => {
  const asText = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : v);
  const body = {
    value: asText(value),
    meta: asText(value),
    label: typeof value === "string" ? value : "",
    rev,
  };
  await write(s, key, body, jsonDocs.name);
};

/** What a copy must equal: the source's fields, without the server-made ones. */
const fieldsOf = (r: Record<string, unknown> | undefined) =>
  r === undefined ? undefined : { key: r.key, value: r.value, meta: r.meta, label: r.label, rev: r.rev };

describe("json fields keep their values in a copy", () => {
  it("the server reads a plain JSON-looking string as JSON, and JSON text verbatim", async () => {
    const pb = a.client();
    const plain = await pb
      .collection(jsonDocs.name)
      .create({ key: "probe-plain", value: "12", meta: "true", rev: 1 });
    expect([plain.value, plain.meta]).toEqual([12, true]);
    const text = await pb
      .collection(jsonDocs.name)
      .create({ key: "probe-text", value: JSON.stringify("12"), meta: JSON.stringify({ s: "12" }), rev: 1 });
    expect([text.value, text.meta]).toEqual(["12", { s: "12" }]);
  });

  it("anti-entropy copies every value with its type (strings that look like JSON stay strings)", async () => {
    for (const [i, v] of VALUES.entries()) await jWrite(a, `ae-${i}`, v, 1);
    for (const [i, v] of VALUES.entries())
      expect((await jItem(a, `ae-${i}`))?.value, `source ${i}`).toEqual(v);
    const r = replicator();
    await r.start();
    await r.sync({ full: true });
    for (const [i, v] of VALUES.entries()) {
      const copy = await jItem(b, `ae-${i}`);
      expect(copy?.value, `copy of ${JSON.stringify(v)}`).toEqual(v);
      expect(fieldsOf(copy)).toEqual(fieldsOf(await jItem(a, `ae-${i}`)));
    }
    // Settled: another round copies nothing.
    expect((await r.sync({ full: true })).copied).toBe(0);
  });

  it("realtime copies, and updates of a copy (a newer revision), keep every value too", async () => {
    const r = replicator();
    await r.start();
    for (const [i, v] of VALUES.entries()) await jWrite(a, `rt-${i}`, v, 1);
    for (const [i, v] of VALUES.entries()) {
      await waitFor(async () => (await jItem(b, `rt-${i}`)) !== undefined);
      expect((await jItem(b, `rt-${i}`))?.value, `copy of ${JSON.stringify(v)}`).toEqual(v);
    }
    // Each key gets the next value at a newer revision on B: the copy back to A is an update.
    const next = (i: number) => VALUES[(i + 1) % VALUES.length];
    for (const i of VALUES.keys()) await jWrite(b, `rt-${i}`, next(i), 2);
    for (const i of VALUES.keys()) {
      await waitFor(async () => (await jItem(a, `rt-${i}`))?.rev === 2);
      expect((await jItem(a, `rt-${i}`))?.value, `update to ${JSON.stringify(next(i))}`).toEqual(next(i));
      expect(fieldsOf(await jItem(a, `rt-${i}`))).toEqual(fieldsOf(await jItem(b, `rt-${i}`)));
    }
  });
});

describe("replicator: a record keyed by id in a collection with another unique index", () => {
  // PocketBase checks the other unique index before the id: the create of a record the target
  // holds fails on that index first. The replicator must read it as the same record (a merge),
  // not a conflict, or no later write of it is copied (the queue's schedules and flow records).
  const named: CollectionDef = {
    ...items,
    id: "pbc_test_named",
    name: "test_named",
    fields: [
      { name: "owner", type: "text", required: true, max: 64 },
      { name: "label", type: "text", required: true, max: 64 },
      { name: "value", type: "json" },
      { name: "rev", type: "number", required: true, onlyInt: true, min: 1 },
    ],
    indexes: ["CREATE UNIQUE INDEX idx_test_named ON test_named (owner, label)"],
  };
  const namedRegistry = createCollectionRegistry([
    { schema: named, replication: { key: ["id"], merge: MergeRules.lww("rev") } },
  ]);

  it("copies every later write of it, and still refuses a different record at the same unique pair", async () => {
    for (const s of [a, b]) await ensureSchema(s.client(), { collections: namedRegistry, rateLimits: false });
    const r = replicator(namedRegistry);
    await r.start();
    const id = "named000000001a";
    await a
      .client()
      .collection("test_named")
      .create({ id, owner: "q", label: "x", value: { v: 1 }, rev: 1 });
    await r.sync({ full: true });
    expect(await b.client().collection("test_named").getOne(id)).toMatchObject({ value: { v: 1 }, rev: 1 });
    for (const rev of [2, 3]) {
      await a
        .client()
        .collection("test_named")
        .update(id, { value: { v: rev }, rev });
      await r.sync({ full: true });
      expect(await b.client().collection("test_named").getOne(id)).toMatchObject({ value: { v: rev }, rev });
    }
    // A record of another id at the same pair is a real conflict: not merged into the first.
    // Both sides write it while no replicator runs (a live one would copy B's record to A
    // before A's own create, which A's index then refuses); a new replicator meets the pair.
    await r.stop();
    await b
      .client()
      .collection("test_named")
      .create({ id: "named000000002b", owner: "z", label: "y", rev: 1 });
    await a
      .client()
      .collection("test_named")
      .create({ id: "named000000003c", owner: "z", label: "y", rev: 7 });
    const healed = replicator(namedRegistry);
    await healed.start();
    await healed.sync({ full: true });
    expect(await b.client().collection("test_named").getOne("named000000002b")).toMatchObject({ rev: 1 });
    await expect(b.client().collection("test_named").getOne("named000000003c")).rejects.toMatchObject({
      status: 404,
    });
  });
});
