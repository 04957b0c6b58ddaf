import { silentLogger } from "@nxs-sync/core";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import PocketBase, { ClientResponseError } from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Collections, createCheckpointer, NodeRole } from "../../src/index.js";
import { makeNode, quietGateway, recordId, setUpServers } from "./helpers.js";

// The access matrix of the audit (SECURITY-AUDIT.md, "Access matrix"), as a test: guest, a `users`
// account, a gateway, a replicator and a superuser against every nxs-sync collection and route.

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gwA = makeNode("gw-a");
const gwB = makeNode("gw-b");
const repl = makeNode("repl", NodeRole.Replicator);
const docId = `d-${recordId()}`;
/** Ids of node B's records (the victim's). */
const victim: Record<string, string> = {};

beforeAll(async () => {
  server = await servers.start({ name: "access-matrix", batch: false });
  await setUpServers([server], [gwA, gwB, repl]);
  // Node B writes a change, a snapshot and an ack, as a gateway does.
  const { doc, replica } = quietGateway({
    node: gwB,
    docId,
    instance: "main",
    endpoints: [server.url],
    schema: z.object({ k: z.record(z.string(), z.number()) }),
    initial: { k: {} },
    cleanup: () => undefined, // stopped below, once it wrote
  });
  await replica.start();
  doc.set(["k", "a"], 1);
  await replica.flush();
  const checkpointer = createCheckpointer({
    endpoints: [server.url],
    auth: gwB.auth,
    doc,
    logger: silentLogger,
  });
  await checkpointer.checkpoint({ snapshot: true });
  await checkpointer.stop();
  await replica.stop();
  const admin = server.client();
  for (const c of [Collections.Changes, Collections.Snapshots, Collections.Acks]) {
    const r = await admin.collection(c).getFirstListItem(`doc = "${docId}"`);
    victim[c] = r.id;
  }
});

type Who = "guest" | "users" | "gateway" | "replicator" | "superuser";

async function clientOf(who: Who): Promise<PocketBase> {
  if (who === "superuser") return server.client();
  const pb = new PocketBase(server.url);
  pb.autoCancellation(false);
  if (who === "gateway") await pb.collection(Collections.Nodes).authWithPassword(gwA.email, gwA.password);
  if (who === "replicator")
    await pb.collection(Collections.Replicators).authWithPassword(repl.email, repl.password);
  if (who === "users") {
    // Guest sign-up on the default `users` collection (the audit: it is open).
    const email = `u-${recordId()}@users.test`;
    await pb.collection("users").create({ email, password: "pw-12345678", passwordConfirm: "pw-12345678" });
    await pb.collection("users").authWithPassword(email, "pw-12345678");
  }
  return pb;
}

/** `n` rows listed, or the HTTP status of the refusal. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    const r = await p;
    if (Array.isArray(r)) return `list ${r.length}`;
    return "ok";
  } catch (e) {
    if (e instanceof ClientResponseError) return String(e.status);
    throw e;
  }
}

const matrix: Record<Who, Record<string, string>> = {
  guest: {
    "nxs_changes list": "list 0",
    "nxs_changes view": "404",
    "nxs_changes create": "400",
    "nxs_changes delete": "404",
    "nxs_snapshots list": "list 0",
    "nxs_acks list": "list 0",
    "nxs_acks update": "404",
    "nxs_nodes list": "list 0",
    "nxs_nodes create": "403",
    "nxs_replicators list": "403",
    "nxs_heads list": "list 0",
    "nxs_change_sizes list": "list 0",
    "nxs_snapshot_versions list": "list 0",
    "nxs_leases list": "list 0",
    "nxs_leases create": "403",
    "POST /nxs/lease": "401",
  },
  users: {
    "nxs_changes list": "list 0",
    "nxs_changes view": "404",
    "nxs_changes create": "400",
    "nxs_changes delete": "404",
    "nxs_snapshots list": "list 0",
    "nxs_acks list": "list 0",
    "nxs_acks update": "404",
    "nxs_nodes list": "list 0",
    "nxs_nodes create": "403",
    "nxs_replicators list": "403",
    "nxs_heads list": "list 0",
    "nxs_change_sizes list": "list 0",
    "nxs_snapshot_versions list": "list 0",
    "nxs_leases list": "list 0",
    "nxs_leases create": "403",
    "POST /nxs/lease": "403",
  },
  gateway: {
    "nxs_changes list": "list 1",
    "nxs_changes view": "ok",
    "nxs_changes create": "400",
    "nxs_changes delete": "404",
    "nxs_snapshots list": "list 1",
    "nxs_acks list": "list 1",
    "nxs_acks update": "404",
    "nxs_nodes list": "list 2",
    "nxs_nodes create": "403",
    "nxs_replicators list": "403",
    "nxs_heads list": "list 1",
    "nxs_change_sizes list": "list 1",
    "nxs_snapshot_versions list": "list 1",
    "nxs_leases list": "list 0",
    "nxs_leases create": "403",
    "POST /nxs/lease": "400",
  },
  replicator: {
    "nxs_changes list": "list 1",
    "nxs_changes view": "ok",
    "nxs_changes create": "ok",
    "nxs_changes delete": "ok",
    "nxs_snapshots list": "list 1",
    "nxs_acks list": "list 1",
    "nxs_acks update": "ok",
    "nxs_nodes list": "list 2",
    "nxs_nodes create": "403",
    "nxs_replicators list": "403",
    "nxs_heads list": "list 1",
    "nxs_change_sizes list": "list 1",
    "nxs_snapshot_versions list": "list 1",
    "nxs_leases list": "list 0",
    "nxs_leases create": "403",
    "POST /nxs/lease": "403",
  },
  superuser: {
    "nxs_changes list": "list 1",
    "nxs_changes view": "ok",
    "nxs_changes create": "ok",
    "nxs_changes delete": "ok",
    "nxs_snapshots list": "list 1",
    "nxs_acks list": "list 1",
    "nxs_acks update": "ok",
    "nxs_nodes list": "list 2",
    "nxs_nodes create": "ok",
    "nxs_replicators list": "list 1",
    "nxs_heads list": "list 1",
    "nxs_change_sizes list": "list 1",
    "nxs_snapshot_versions list": "list 1",
    "nxs_leases list": "list 0",
    "nxs_leases create": "ok",
    "POST /nxs/lease": "403",
  },
};

describe("access matrix", () => {
  for (const who of Object.keys(matrix) as Who[]) {
    it(`${who}: every collection and route as the audit found it, or closed`, async () => {
      const pb = await clientOf(who);
      const inDoc = { filter: `doc = "${docId}"` };
      // A change as node B (the victim) at a fresh seq: only a replicator or a superuser may write it.
      const forged = {
        // Another doc, so that what a permitted create adds changes no later row.
        doc: `${docId}-w`,
        origin: `${gwB.id}.main`,
        seq: 100 + Object.keys(matrix).indexOf(who),
        last: 100 + Object.keys(matrix).indexOf(who),
        hlc: "01a2530000000000000x",
        changes: {},
        node: gwB.id,
      };
      const got: Record<string, string> = {
        "nxs_changes list": await outcome(pb.collection(Collections.Changes).getFullList(inDoc)),
        "nxs_changes view": await outcome(
          pb.collection(Collections.Changes).getOne(victim[Collections.Changes]!),
        ),
        "nxs_changes create": await outcome(pb.collection(Collections.Changes).create(forged)),
        "nxs_snapshots list": await outcome(pb.collection(Collections.Snapshots).getFullList(inDoc)),
        "nxs_acks list": await outcome(pb.collection(Collections.Acks).getFullList(inDoc)),
        "nxs_acks update": await outcome(
          pb.collection(Collections.Acks).update(victim[Collections.Acks]!, { at: Date.now() }),
        ),
        "nxs_nodes list": await outcome(pb.collection(Collections.Nodes).getFullList()),
        "nxs_nodes create": await outcome(
          pb.collection(Collections.Nodes).create({
            id: recordId(),
            email: `x-${recordId()}@nodes.test`,
            password: "pw-12345678",
            passwordConfirm: "pw-12345678",
          }),
        ),
        "nxs_replicators list": await outcome(pb.collection(Collections.Replicators).getFullList()),
        "nxs_heads list": await outcome(pb.collection(Collections.Heads).getFullList(inDoc)),
        "nxs_change_sizes list": await outcome(pb.collection(Collections.ChangeSizes).getFullList(inDoc)),
        "nxs_snapshot_versions list": await outcome(
          pb.collection(Collections.SnapshotVersions).getFullList(inDoc),
        ),
        "nxs_leases list": await outcome(pb.collection(Collections.Leases).getFullList(inDoc)),
        "nxs_leases create": await outcome(
          pb.collection(Collections.Leases).create({
            doc: docId,
            replica: `${gwB.id}.main`,
            holder: "x",
            until: Date.now() + 60_000,
            node: gwB.id,
          }),
        ),
        // Node B's replica id: a gateway may lease only its own.
        "POST /nxs/lease": await outcome(
          pb.send("/nxs/lease", {
            method: "POST",
            body: { doc: docId, replica: `${gwB.id}.main`, holder: "x", ttlMs: 1000 },
          }),
        ),
      };
      // Deletes last (they remove the victim's change for the next rows when they succeed).
      got["nxs_changes delete"] = await outcome(
        pb.collection(Collections.Changes).delete(victim[Collections.Changes]!),
      );
      if (got["nxs_changes delete"] === "ok") {
        // Put it back for the next identity.
        const admin = server.client();
        const again = await admin.collection(Collections.Changes).create({
          doc: docId,
          origin: `${gwB.id}.main`,
          seq: 1,
          last: 1,
          hlc: "01a2530000000000000x",
          changes: {},
          node: gwB.id,
        });
        victim[Collections.Changes] = again.id;
      }
      expect(got).toEqual(matrix[who]);
    });
  }
});
