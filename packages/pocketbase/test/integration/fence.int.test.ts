import { ErrorCode } from "@nxs-sync/core";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Collections,
  createPocketBaseClient,
  ensureSchema,
  liftFence,
  NodeRole,
  type PocketBaseClient,
  readFence,
  setFence,
} from "../../src/index.js";
import { makeNode, provision, rawChangeRecord, recordId } from "./helpers.js";

// The write fence (pb_hooks/nxs-fence.pb.js), on a real server: what a fenced server refuses and
// lets through, how clients read the refusal, and that the fence outlives a restore's restart.

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw = makeNode("gw");
const repl = makeNode("repl", NodeRole.Replicator);
const clients: PocketBaseClient[] = [];

beforeAll(async () => {
  server = await servers.start({ name: "fence" });
  await ensureSchema(server.client());
  await provision(server, [gw, repl]);
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await liftFence(server.client());
});

const client = (auth: typeof gw.auth): PocketBaseClient => {
  const c = createPocketBaseClient({ url: server.url, auth });
  clients.push(c);
  return c;
};
const change = (seq: number, doc = "fenced") =>
  rawChangeRecord({ doc, origin: `${gw.id}.a`, seq, node: gw.id });
const unavailable = expect.objectContaining({
  code: ErrorCode.TransportUnavailable,
  retryable: true,
  message: expect.stringMatching(/fenced \(a test\)/i),
});

describe("the write fence", () => {
  it("refuses a gateway's creates, batches and leases as unavailable (503); reads, replicators and superusers go through", async () => {
    const g = client(gw.auth);
    await g.call("create", (pb) => pb.collection(Collections.Changes).create(change(1)));
    const fenced = await setFence(server.client(), { reason: "a test", ttlMs: 60_000 });
    expect(fenced).toMatchObject({ fenced: true, reason: "a test" });
    expect(fenced.until - fenced.now).toBe(60_000);

    await expect(
      g.call("create", (pb) => pb.collection(Collections.Changes).create(change(2))),
    ).rejects.toEqual(unavailable);
    // In a batch: PocketBase answers 400 with the item's 503; clients read it as the server's answer.
    await expect(
      g.call("batch", (pb) => {
        const batch = pb.createBatch();
        batch.collection(Collections.Changes).create(change(3));
        return batch.send({ requestKey: null });
      }),
    ).rejects.toEqual(expect.objectContaining({ code: ErrorCode.TransportUnavailable }));
    await expect(
      g.call("lease", (pb) =>
        pb.send("/nxs/lease", {
          method: "POST",
          body: { doc: "fenced", replica: `${gw.id}.a`, holder: "h1", ttlMs: 5000 },
          requestKey: null,
        }),
      ),
    ).rejects.toEqual(unavailable);
    // Reads go on; a replicator copies a record in; a superuser writes.
    const read = await g.call("read", (pb) =>
      pb.collection(Collections.Changes).getFullList({ requestKey: null }),
    );
    expect(read.map((r) => r.seq)).toEqual([1]);
    await client(repl.auth).call("copy", (pb) => pb.collection(Collections.Changes).create(change(4)));
    await server.client().collection(Collections.Changes).create(change(5));
    expect((await readFence(server.client())).fenced).toBe(true);

    expect(await liftFence(server.client())).toMatchObject({ fenced: false, until: 0 });
    await g.call("create", (pb) => pb.collection(Collections.Changes).create(change(6)));
    const seqs = (await server.client().collection(Collections.Changes).getFullList({ requestKey: null }))
      .map((r) => r.seq)
      .sort((x, y) => x - y);
    expect(seqs).toEqual([1, 4, 5, 6]);
  });

  it("outlives a restore's in-place restart, and lapses by itself at its time", async () => {
    const admin = server.client();
    const key = `fence_${recordId()}.zip`;
    await admin.backups.create(key, { requestKey: null });
    await setFence(admin, { reason: "a test", ttlMs: 60_000 });
    // A record written after the backup (a superuser passes the fence): gone once the restore ran.
    const marker = await admin.collection(Collections.Changes).create(change(1, `marker-${recordId()}`));
    await admin.backups.restore(key, { requestKey: null });
    await waitFor(
      async () => {
        const c = server.client();
        const gone = await c
          .collection(Collections.Changes)
          .getOne(marker.id, { requestKey: null })
          .then(
            () => false,
            (e: { status?: number }) => e.status === 404,
          );
        return gone || undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, description: "the restore and its restart" },
    );
    // The restarted process read the fence back: still fenced, gateways still refused.
    expect(await readFence(server.client())).toMatchObject({ fenced: true, reason: "a test" });
    await expect(
      client(gw.auth).call("create", (pb) => pb.collection(Collections.Changes).create(change(7))),
    ).rejects.toEqual(unavailable);
    // Renewed with a short time: it lapses on its own, no lift needed.
    await setFence(server.client(), { reason: "a test", ttlMs: 1000 });
    await waitFor(async () => !(await readFence(server.client())).fenced || undefined, {
      timeoutMs: 10_000,
      intervalMs: 100,
      description: "the fence lapsing",
    });
    await client(gw.auth).call("create", (pb) => pb.collection(Collections.Changes).create(change(8)));
  });
});
