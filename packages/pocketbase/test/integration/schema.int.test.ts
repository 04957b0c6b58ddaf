import { type PocketBaseServer, waitFor } from "@nxs-sync/testing";
import type PocketBase from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Collections,
  createPocketBaseClient,
  createSdkClient,
  ensureSchema,
  NODE_TOKEN_DURATION_S,
  NodeRole,
  schemaDefinitions,
} from "../../src/index.js";
import { makeNode, provision, startSchemaServer } from "./helpers.js";

const servers: PocketBaseServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.destroy();
});

const change = (node: string, seq: number, over: Record<string, unknown> = {}) => ({
  doc: "doc1",
  origin: node,
  seq,
  last: seq,
  hlc: `0000000000001-${seq}`,
  changes: { doc: "doc1", g: [] },
  node,
  ...over,
});

describe("schema", () => {
  it("ensureSchema creates the collections once and is idempotent", async () => {
    const server = await startSchemaServer("schema-ensure");
    servers.push(server);
    const admin = server.client();
    const again = await ensureSchema(admin);
    expect(again).toMatchObject({ created: [], updated: [], rateLimitsChanged: false });
    for (const def of schemaDefinitions()) {
      const c = await admin.collections.getOne(def.name);
      expect(c.type).toBe(def.type);
      for (const r of ["listRule", "viewRule", "createRule", "updateRule", "deleteRule"] as const) {
        expect(c[r], `${def.name}.${r}`).toBe(def[r]);
      }
    }
    const settings = await admin.settings.getAll();
    expect(settings.batch.enabled).toBe(true);
    expect(settings.rateLimits.enabled).toBe(true);
    for (const name of [Collections.Nodes, Collections.Replicators]) {
      expect((await admin.collections.getOne(name)).authToken.duration).toBe(NODE_TOKEN_DURATION_S);
    }
  });

  it("ensureSchema completes a collection that lost a field and an index, keeping its data", async () => {
    const server = await startSchemaServer("schema-repair");
    servers.push(server);
    const admin = server.client();
    const c = await admin.collections.getOne(Collections.Changes);
    await admin.collections.update(c.id, {
      // \`created\`: no view reads it (SQLite refuses to drop a column a view uses, such as \`hlc\`).
      fields: c.fields.filter((f: { name: string }) => f.name !== "created"),
      indexes: [],
      listRule: "",
    });
    const r = await ensureSchema(admin);
    expect(r.updated).toEqual([Collections.Changes]);
    const fixed = await admin.collections.getOne(Collections.Changes);
    expect(fixed.fields.map((f: { name: string }) => f.name)).toContain("created");
    expect(fixed.indexes.join()).toContain("idx_nxs_changes_doc_origin_seq");
    expect(fixed.listRule).toBe(schemaDefinitions().find((d) => d.name === Collections.Changes)?.listRule);
  });

  it("a server started with the package's migrations dir has the same schema, batch on", async () => {
    const server = await startSchemaServer("schema-migration", "migration");
    servers.push(server);
    const admin = server.client();
    for (const def of schemaDefinitions()) {
      const c = await admin.collections.getOne(def.name);
      expect(c.id).toBe(def.id);
      expect(c.createRule).toBe(def.createRule);
      // PocketBase normalizes index SQL: compare by index name.
      const names = (list: readonly string[]) => list.map((i) => /INDEX\s+`?(\w+)`?/.exec(i)?.[1]).sort();
      expect(names(c.indexes)).toEqual(expect.arrayContaining(names(def.indexes)));
    }
    expect((await admin.settings.getAll()).batch.enabled).toBe(true);
    // ensureSchema over a migrated server changes no collection; the migration leaves rate limits
    // alone (settings), and the default users collection is open to sign-up.
    expect(await ensureSchema(admin)).toEqual({
      created: [],
      updated: [],
      rateLimitsChanged: true,
      warnings: [expect.stringContaining("auth collection users lets guests sign up")],
    });
    expect(await ensureSchema(admin)).toMatchObject({ created: [], updated: [], rateLimitsChanged: false });
  });
});

describe("access rules", () => {
  let server: PocketBaseServer;
  const a = makeNode("gw-a");
  const b = makeNode("gw-b");
  const repl = makeNode("repl", NodeRole.Replicator);
  let pa: PocketBase;
  let pbB: PocketBase;
  let guest: PocketBase;

  beforeAll(async () => {
    server = await startSchemaServer("schema-rules");
    servers.push(server);
    await provision(server, [a, b, repl]);
    const ca = createPocketBaseClient({ url: server.url, auth: a.auth });
    await ca.authenticate();
    pa = ca.pb;
    const cb = createPocketBaseClient({ url: server.url, auth: b.auth });
    await cb.authenticate();
    pbB = cb.pb;
    guest = createSdkClient(server.url);
    await pa.collection(Collections.Changes).create(change(a.id, 1));
  });

  it("guests can neither read nor write anything", async () => {
    for (const name of [Collections.Changes, Collections.Snapshots, Collections.Nodes]) {
      const list = await guest.collection(name).getList(1, 10);
      expect(list.items, name).toEqual([]);
    }
    await expect(guest.collection(Collections.Replicators).getList(1, 10)).rejects.toMatchObject({
      status: 403,
    });
    await expect(guest.collection(Collections.Changes).create(change(a.id, 2))).rejects.toMatchObject({
      status: 400,
    });
    await expect(
      guest
        .collection(Collections.Nodes)
        .create({ email: "x@y.z", password: "12345678901", passwordConfirm: "12345678901" }),
    ).rejects.toMatchObject({ status: 403 });
    // Realtime: a guest may open a subscription, but the list rule filters every event out.
    const seenByGuest: unknown[] = [];
    const seenByNode: unknown[] = [];
    await guest.collection(Collections.Changes).subscribe("*", (e) => seenByGuest.push(e));
    await pbB.collection(Collections.Changes).subscribe("*", (e) => seenByNode.push(e));
    await pa.collection(Collections.Changes).create(change(a.id, 7));
    await waitFor(() => seenByNode.length === 1);
    expect(seenByGuest).toEqual([]);
    await guest.realtime.unsubscribe();
    await pbB.realtime.unsubscribe();
  });

  it("a wrong password is transport/unauthorized", async () => {
    const c = createPocketBaseClient({
      url: server.url,
      auth: { email: a.email, password: "wrong-password" },
    });
    await expect(c.authenticate()).rejects.toMatchObject({ code: "transport/unauthorized" });
  });

  it("a node reads the changes of other nodes", async () => {
    const list = await pbB.collection(Collections.Changes).getFullList();
    expect(list.length).toBeGreaterThan(0);
    expect(new Set(list.map((r) => r.origin))).toEqual(new Set([a.id]));
  });

  it("a node writes only as itself: other node, forged origin and unbound origin are refused", async () => {
    await expect(pbB.collection(Collections.Changes).create(change(a.id, 2))).rejects.toMatchObject({
      status: 400,
    });
    await expect(
      pbB.collection(Collections.Changes).create(change(b.id, 2, { origin: a.id })),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      pbB.collection(Collections.Changes).create(change(a.id, 2, { origin: b.id })),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      pbB.collection(Collections.Changes).create(change(b.id, 1, { origin: `${b.id}.gw2` })),
    ).resolves.toMatchObject({ node: b.id });
    // A pack must end at or after its first seq.
    await expect(
      pbB.collection(Collections.Changes).create(change(b.id, 5, { origin: `${b.id}.gw2`, last: 4 })),
    ).rejects.toMatchObject({ status: 400 });
  });

  it("changes are immutable; gateways delete nothing; only superusers create or edit nodes", async () => {
    const [rec] = await pa.collection(Collections.Changes).getFullList();
    await expect(pa.collection(Collections.Changes).update(rec!.id, { seq: 9 })).rejects.toMatchObject({
      status: 403,
    });
    // The delete rule (maintenance: replicators only) fails for a gateway: PocketBase answers 404.
    await expect(pa.collection(Collections.Changes).delete(rec!.id)).rejects.toMatchObject({ status: 404 });
    await expect(pa.collection(Collections.Changes).getOne(rec!.id)).resolves.toMatchObject({ id: rec!.id });
    await expect(pa.collection(Collections.Nodes).update(a.id, { name: "renamed" })).rejects.toMatchObject({
      status: 403,
    });
    for (const name of [Collections.Nodes, Collections.Replicators]) {
      await expect(
        pa
          .collection(name)
          .create({ email: "n@x.io", password: "12345678901", passwordConfirm: "12345678901" }),
      ).rejects.toMatchObject({ status: 403 });
    }
  });

  it("replicators are accounts of their own collection: a gateway neither lists them nor logs in there", async () => {
    await expect(pa.collection(Collections.Replicators).getList(1, 10)).rejects.toMatchObject({
      status: 403,
    });
    const asReplicator = createPocketBaseClient({
      url: server.url,
      auth: { email: a.email, password: a.password, collection: Collections.Replicators },
    });
    await expect(asReplicator.authenticate()).rejects.toMatchObject({ code: "transport/unauthorized" });
    // And a replicator's credentials are no gateway's.
    const asGateway = createPocketBaseClient({
      url: server.url,
      auth: { email: repl.email, password: repl.password },
    });
    await expect(asGateway.authenticate()).rejects.toMatchObject({ code: "transport/unauthorized" });
  });

  it("a replicator copies records authored by another node, and duplicates are refused", async () => {
    const c = createPocketBaseClient({ url: server.url, auth: repl.auth });
    await c.authenticate();
    await expect(c.pb.collection(Collections.Changes).create(change(a.id, 5))).resolves.toMatchObject({
      node: a.id,
    });
    await expect(c.pb.collection(Collections.Changes).create(change(a.id, 5))).rejects.toMatchObject({
      status: 400,
    });
  });

  it("acks: a node writes and updates its own, and cannot move one to another replica, doc or node", async () => {
    const ack = { doc: "doc-acks", replica: `${a.id}.main`, version: { [a.id]: 1 }, at: 1, node: a.id };
    const rec = await pa.collection(Collections.Acks).create(ack);
    await expect(
      pbB.collection(Collections.Acks).create({ ...ack, replica: `${b.id}.x`, node: a.id }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      pa.collection(Collections.Acks).update(rec.id, { version: { [a.id]: 2 }, at: 2 }),
    ).resolves.toMatchObject({ at: 2 });
    // Moving the ack is refused (the update rule fails: PocketBase answers 404), and so is another node's update.
    for (const change of [{ replica: `${b.id}.main` }, { doc: "other-doc" }, { node: b.id }]) {
      await expect(pa.collection(Collections.Acks).update(rec.id, change)).rejects.toMatchObject({
        status: 404,
      });
    }
    await expect(pbB.collection(Collections.Acks).update(rec.id, { at: 3 })).rejects.toMatchObject({
      status: 404,
    });
    await expect(pa.collection(Collections.Acks).getOne(rec.id)).resolves.toMatchObject({
      doc: "doc-acks",
      replica: `${a.id}.main`,
      node: a.id,
      at: 2,
    });
  });

  it("snapshots: a node writes its own only", async () => {
    const snap = { doc: "doc1", version: { [a.id]: 1 }, state: { format: 1, state: {} } };
    await expect(pa.collection(Collections.Snapshots).create({ ...snap, node: a.id })).resolves.toBeDefined();
    await expect(pbB.collection(Collections.Snapshots).create({ ...snap, node: a.id })).rejects.toMatchObject(
      { status: 400 },
    );
  });
});
