import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Change, silentLogger } from "@nxs-sync/core";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, describe, expect, it } from "vitest";
import {
  Collections,
  createNxsCollectionRegistry,
  createPocketBaseTransport,
  ensureSchema,
  renderMigration,
} from "../../src/index.js";
import { MIGRATIONS_DIR, makeNode, provision, rawChangeRecord, recordId } from "./helpers.js";

/**
 * Append-only schema upgrades on a real server (docs/pocketbase.md, "Set-up"): a server set up by
 * the first migration alone (schema 2) holds data; the next migration is added and the server
 * restarted; nothing is lost and gateways pull. The same with the migration generated from the
 * collection registry, after which ensureSchema finds nothing left to do.
 */

const servers = usePocketBaseServers();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const FIRST = "1764201600_nxs_sync.js";
/** The shipped migrations after the first (schema 3's views, schema 4's replicator status, …). */
const LATER = (): string[] =>
  readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith(".js") && f !== FIRST)
    .sort();

/** A migrations folder holding only the first (schema 2) migration. */
function schema2Dir(): string {
  const dir = mkdtempSync(join(tmpdir(), "nxs-migrations-"));
  dirs.push(dir);
  copyFileSync(join(MIGRATIONS_DIR, FIRST), join(dir, FIRST));
  return dir;
}

/** Writes changes, an ack and a snapshot on a schema 2 server; returns what to find after the upgrade. */
async function writeOnSchema2(server: ProcessPocketBase) {
  const gw = makeNode("gw-upgrade");
  await provision(server, [gw]);
  const admin = server.client();
  const names = (await admin.collections.getFullList({ requestKey: null })).map((c) => c.name);
  expect(names).toContain(Collections.Changes);
  expect(names).not.toContain(Collections.ChangeSizes);
  const doc = `d-${recordId()}`;
  const origin = `${gw.id}.w`;
  const ids: string[] = [];
  for (let seq = 1; seq <= 5; seq++) {
    const r = await admin
      .collection(Collections.Changes)
      .create(rawChangeRecord({ doc, origin, seq, node: gw.id }), { requestKey: null });
    ids.push(r.id);
  }
  await admin
    .collection(Collections.Acks)
    .create(
      { doc, replica: origin, version: { [origin]: 5 }, at: Date.now(), node: gw.id },
      { requestKey: null },
    );
  return { gw, doc, ids };
}

async function expectKept(server: ProcessPocketBase, written: Awaited<ReturnType<typeof writeOnSchema2>>) {
  const admin = server.client();
  const rows = await admin
    .collection(Collections.Changes)
    .getFullList({ filter: admin.filter("doc = {:doc}", { doc: written.doc }), requestKey: null });
  expect(rows.map((r) => r.id).sort()).toEqual([...written.ids].sort());
  const acks = await admin
    .collection(Collections.Acks)
    .getFullList({ filter: admin.filter("doc = {:doc}", { doc: written.doc }), requestKey: null });
  expect(acks).toHaveLength(1);
  // Pulls read the views schema 3 adds: they work now.
  const transport = createPocketBaseTransport({
    endpoints: [server.url],
    auth: written.gw.auth,
    docId: written.doc,
    logger: silentLogger,
  });
  try {
    await transport.connect();
    const pulled: Change[] = [];
    for await (const page of transport.pull({})) pulled.push(...page.changes);
    expect(pulled.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5]);
  } finally {
    await transport.close();
  }
}

describe("schema upgrades by migration", () => {
  it("schema 2 (the first migration alone) with data, then the shipped later migrations and a restart: nothing lost, pulls work", async () => {
    const dir = schema2Dir();
    const server = (await servers.start({
      name: "upgrade-shipped",
      batch: false,
      migrationsDir: dir,
    })) as ProcessPocketBase;
    const written = await writeOnSchema2(server);
    for (const f of LATER()) copyFileSync(join(MIGRATIONS_DIR, f), join(dir, f));
    await server.restart();
    await expectKept(server, written);
    // Schema 2 made the account collections with PocketBase's login alerts on; the later migration
    // turns them off (machine accounts with made-up addresses get no "new location" mail).
    for (const name of [Collections.Nodes, Collections.Replicators]) {
      const c = await server.client().collections.getOne(name, { requestKey: null });
      expect((c as { authAlert?: { enabled?: boolean } }).authAlert?.enabled, name).toBe(false);
    }
    const again = await ensureSchema(server.client(), { rateLimits: false });
    expect(again.created).toEqual([]);
  });

  it("the migration generated from the collection registry upgrades schema 2 too, and leaves ensureSchema nothing to do", async () => {
    const dir = schema2Dir();
    const server = (await servers.start({
      name: "upgrade-generated",
      batch: false,
      migrationsDir: dir,
    })) as ProcessPocketBase;
    const written = await writeOnSchema2(server);
    // An older nxs_acks still: without the `updated` field and its unique index, an open update
    // rule, and a field and an index of the operator's own (kept by the upgrade).
    const admin = server.client();
    const acks = await admin.collections.getOne(Collections.Acks, { requestKey: null });
    await admin.collections.update(
      acks.id,
      {
        fields: [...acks.fields.filter((f) => f.name !== "updated"), { name: "mine", type: "text" }],
        indexes: ["CREATE INDEX idx_mine ON nxs_acks (mine)"],
        updateRule: "",
      },
      { requestKey: null },
    );
    writeFileSync(
      join(dir, "1900000000_nxs_sync.js"),
      renderMigration(createNxsCollectionRegistry().collections(), { title: "test: the registry's schema" }),
    );
    await server.restart();
    await expectKept(server, written);
    const upgraded = await admin.collections.getOne(Collections.Acks, { requestKey: null });
    expect(upgraded.fields.map((f) => f.name)).toEqual(expect.arrayContaining(["mine", "updated"]));
    expect(upgraded.indexes).toEqual(expect.arrayContaining(["CREATE INDEX idx_mine ON nxs_acks (mine)"]));
    expect(upgraded.indexes.some((i) => i.includes("idx_nxs_acks_doc_replica"))).toBe(true);
    expect(upgraded.updateRule).not.toBe("");
    const again = await ensureSchema(admin, { rateLimits: false });
    expect(again.created).toEqual([]);
    expect(again.updated).toEqual([]);
    // Idempotent on a restart (PocketBase runs each file once; a second copy under another name runs again).
    writeFileSync(
      join(dir, "1900000001_nxs_sync.js"),
      renderMigration(createNxsCollectionRegistry().collections(), { title: "test: the same again" }),
    );
    await server.restart();
    await expectKept(server, written);
    expect((await ensureSchema(server.client(), { rateLimits: false })).updated).toEqual([]);
  });
});
