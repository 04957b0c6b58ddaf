import { type Change, encodeHlc, isNxsError } from "@nxs-sync/core";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { describeWithDocker, usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Collections,
  createPocketBaseClient,
  createPocketBaseTransport,
  ensureSchema,
  NodeRole,
  NXS_HOOKS_VERSION,
  NXS_SCHEMA_VERSION,
  type PocketBaseTransport,
} from "../../src/index.js";
import { countChanges, makeNode, provision, rawChangeRecord, recordId } from "./helpers.js";

// Item 2 of issue 12: the server itself (the pb_hooks bundle) refuses a change whose origin is not
// exactly the author node or `<node>.<instance>`, for plain creates and for /api/batch creates.

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw = makeNode("gw");
const other = makeNode("other");
const repl = makeNode("repl", NodeRole.Replicator);
const open: PocketBaseTransport[] = [];

beforeAll(async () => {
  server = await servers.start({ name: "origin-binding", batch: false });
  await ensureSchema(server.client());
  await provision(server, [gw, other, repl]);
});
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

const change = (doc: string, origin: string, seq: number): Change =>
  ({
    doc,
    origin,
    seq,
    hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin }),
    ops: [{ kind: "set", path: ["k", String(seq)], value: seq }],
  }) as unknown as Change;

function transport(doc: string): PocketBaseTransport {
  const t = createPocketBaseTransport({ endpoints: [server.url], auth: gw.auth, docId: doc });
  open.push(t);
  return t;
}

/** What a push rejects with (undefined when it resolves). */
async function pushError(t: PocketBaseTransport, changes: Change[]): Promise<unknown> {
  try {
    await t.push(changes);
    return undefined;
  } catch (e) {
    return e;
  }
}

describe("origin binding on the server (pb_hooks bundle)", () => {
  it("serves its version on GET /nxs/version", async () => {
    const res = await fetch(`${server.url}/nxs/version`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      name: "nxs-sync",
      hooks: NXS_HOOKS_VERSION,
      schema: NXS_SCHEMA_VERSION,
      schemaInstalled: true,
    });
  });

  it.each([
    ["x-<node>", () => `x-${gw.id}`],
    ["<node>x", () => `${gw.id}x`],
    ["<other node>", () => other.id],
    ["<other node>.<node>", () => `${other.id}.${gw.id}`],
  ])("refuses origin %s in a plain create: transport/rejected, nothing stored", async (_, origin) => {
    const doc = `d-${recordId()}`;
    const t = transport(doc);
    const err = await pushError(t, [change(doc, origin(), 1)]);
    expect(isNxsError(err) && err.code).toBe("transport/rejected");
    // The hook's message; a foreign origin (not even containing the id) already fails the create rule.
    if (origin().includes(gw.id))
      expect((err as Error).message).toMatch(/not bound to the authenticated node/);
    expect(await countChanges(server.url, gw.auth, doc)).toBe(0);
  });

  it.each([
    ["x-<node>", () => `x-${gw.id}`],
    ["<node>x", () => `${gw.id}x`],
    ["<other node>", () => other.id],
  ])("refuses origin %s in an /api/batch create: transport/rejected, nothing stored", async (_, origin) => {
    const doc = `d-${recordId()}`;
    const t = transport(doc);
    // Two packs (seqs 1 and 3 are not consecutive): the transport sends them as one batch.
    const err = await pushError(t, [change(doc, origin(), 1), change(doc, origin(), 3)]);
    expect(isNxsError(err) && err.code).toBe("transport/rejected");
    expect(await countChanges(server.url, gw.auth, doc)).toBe(0);
  });

  it("refuses the whole batch when one of its creates has an unbound origin", async () => {
    const doc = `d-${recordId()}`;
    const c = createPocketBaseClient({ url: server.url, auth: gw.auth });
    try {
      await c.authenticate();
      const batch = c.pb.createBatch();
      batch
        .collection(Collections.Changes)
        .create(rawChangeRecord({ doc, origin: gw.id, seq: 1, node: gw.id }));
      batch
        .collection(Collections.Changes)
        .create(rawChangeRecord({ doc, origin: `x-${gw.id}`, seq: 1, node: gw.id }));
      const err = await batch.send().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as { status?: number }).status).toBe(400);
      expect(JSON.stringify((err as { response?: unknown }).response)).toMatch(/validation_origin_not_bound/);
      expect(await countChanges(server.url, gw.auth, doc)).toBe(0);
    } finally {
      c.close();
    }
  });

  it("accepts <node> and <node>.<instance>, plain and batched", async () => {
    const doc = `d-${recordId()}`;
    const t = transport(doc);
    expect(await t.push([change(doc, gw.id, 1)])).toEqual({ acked: 1 });
    expect(await t.push([change(doc, `${gw.id}.gw1`, 1)])).toEqual({ acked: 1 });
    // A batch: two origins, two packs.
    expect(await t.push([change(doc, gw.id, 2), change(doc, `${gw.id}.gw1`, 2)])).toEqual({ acked: 2 });
    expect(await countChanges(server.url, gw.auth, doc)).toBe(4);
  });

  it("lets a replicator account write any origin (it copies records)", async () => {
    const doc = `d-${recordId()}`;
    const c = createPocketBaseClient({ url: server.url, auth: repl.auth });
    try {
      const rec = await c.call("copy", (pb) =>
        pb
          .collection(Collections.Changes)
          .create(rawChangeRecord({ doc, origin: `x-${gw.id}`, seq: 1, node: gw.id })),
      );
      expect(rec.origin).toBe(`x-${gw.id}`);
    } finally {
      c.close();
    }
  });

  it("binds the replica of an ack the same way", async () => {
    const doc = `d-${recordId()}`;
    const c = createPocketBaseClient({ url: server.url, auth: gw.auth });
    const ack = (replica: string) => ({ doc, replica, version: {}, at: Date.now(), node: gw.id });
    try {
      const refused = await c
        .call("ack", (pb) => pb.collection(Collections.Acks).create(ack(`x-${gw.id}`)))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(isNxsError(refused) && refused.code).toBe("transport/rejected");
      const ok = await c.call("ack", (pb) => pb.collection(Collections.Acks).create(ack(`${gw.id}.gw1`)));
      expect(ok.replica).toBe(`${gw.id}.gw1`);
    } finally {
      c.close();
    }
  });
});

describe("a server without the bundle", () => {
  it("makes the transport fail early with server/incompatible, naming the fix", async () => {
    const bare = await servers.start({ name: "no-hooks", batch: false, nxsHooks: false });
    await ensureSchema(bare.client());
    await provision(bare, [gw]);
    expect((await fetch(`${bare.url}/nxs/version`)).status).toBe(404);
    const t = createPocketBaseTransport({ endpoints: [bare.url], auth: gw.auth, docId: `d-${recordId()}` });
    open.push(t);
    const err = await t.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isNxsError(err) && err.code).toBe("server/incompatible");
    expect(isNxsError(err) && err.retryable).toBe(false);
    expect((err as Error).message).toContain(bare.url);
    expect((err as Error).message).toMatch(/nxs-sync hooks write.*--hooksDir.*pb_hooks/);
  });
});

describeWithDocker("the project's PocketBase image", () => {
  it("has the bundle baked in: versions served, unbound origins refused", async () => {
    const node = await servers.startContainer({
      name: `nxs-pb-hooks-${recordId().slice(0, 6)}`,
      batch: false,
    });
    const res = await fetch(`${node.url}/nxs/version`);
    expect(await res.json()).toMatchObject({ hooks: NXS_HOOKS_VERSION, schema: NXS_SCHEMA_VERSION });
    await ensureSchema(node.client());
    await provision(node, [gw]);
    const doc = `d-${recordId()}`;
    const t = createPocketBaseTransport({ endpoints: [node.url], auth: gw.auth, docId: doc });
    open.push(t);
    await t.connect();
    const err = await pushError(t, [change(doc, `x-${gw.id}`, 1)]);
    expect(isNxsError(err) && err.code).toBe("transport/rejected");
    expect(await t.push([change(doc, gw.id, 1)])).toEqual({ acked: 1 });
  });

  it("leaves it out with nxsHooks: false", async () => {
    const node = await servers.startContainer({
      name: `nxs-pb-plain-${recordId().slice(0, 6)}`,
      batch: false,
      nxsHooks: false,
    });
    expect((await fetch(`${node.url}/nxs/version`)).status).toBe(404);
  });
});
