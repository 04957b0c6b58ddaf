import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { getTokenPayload } from "pocketbase";
import { beforeAll, describe, expect, it } from "vitest";
import { SUPERUSERS_COLLECTION_ID } from "../../src/client.js";
import { Collections, createPocketBaseClient, ensureSchema } from "../../src/index.js";
import { makeNode, provision } from "./helpers.js";

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw = makeNode("gw");

beforeAll(async () => {
  server = await servers.start({ name: "auth", batch: false });
  const admin = server.client();
  await ensureSchema(admin);
  await provision(server, [gw]);
  // Short-lived node tokens (PocketBase's minimum is 10 s) to see renewals within a test.
  await admin.collections.update(Collections.Nodes, { authToken: { duration: 10 } });
});

const exp = (token: string) => Number(getTokenPayload(token).exp);

describe("node authentication", () => {
  it("renews a password session before its token expires (requests and health checks)", async () => {
    const c = createPocketBaseClient({ url: server.url, auth: gw.auth, refreshBeforeS: 8 });
    await c.authenticate();
    const first = c.pb.authStore.token;
    await waitFor(
      async () => {
        expect(await c.health()).toBe(true);
        return exp(c.pb.authStore.token) > exp(first);
      },
      { timeoutMs: 8000, intervalMs: 200, description: "a renewed token" },
    );
    const list = await c.call("list", (pb) => pb.collection(Collections.Changes).getList(1, 1));
    expect(list.items).toEqual([]);
  });

  it("authenticates with a ready token and keeps refreshing it", async () => {
    const login = createPocketBaseClient({ url: server.url, auth: gw.auth });
    await login.authenticate();
    const token = login.pb.authStore.token;
    const c = createPocketBaseClient({ url: server.url, auth: { token }, refreshBeforeS: 8 });
    expect(await c.authenticate()).toBe(gw.id);
    await waitFor(
      async () => {
        await c.call("list", (pb) => pb.collection(Collections.Changes).getList(1, 1));
        return exp(c.pb.authStore.token) > exp(token);
      },
      { timeoutMs: 8000, intervalMs: 200, description: "a refreshed token" },
    );
    const bad = createPocketBaseClient({ url: server.url, auth: { token: "not-a-token" } });
    await expect(bad.authenticate()).rejects.toMatchObject({ code: "transport/unauthorized" });
  });
});

// SECURITY-AUDIT.md finding 12: the "never a superuser" guard checked only the collection name, so
// a login through `_superusers`' id (`pbc_3142635823`) listed `nxs_replicators`. Shown on a real
// server: the guard's id is the real one, and neither the id, the name nor a real superuser token
// gets a client; no request is made as a superuser.
describe("the never-a-superuser guard on a real server", () => {
  it("knows the real id of _superusers and refuses a login by id, by name and by a superuser token", async () => {
    const admin = server.client();
    const superusers = await admin.collections.getOne("_superusers");
    expect(superusers.id).toBe(SUPERUSERS_COLLECTION_ID);
    const { email, password } = server.superuser;
    for (const collection of [superusers.id, "_superusers"]) {
      expect(() =>
        createPocketBaseClient({ url: server.url, auth: { email, password, collection } }),
      ).toThrow(expect.objectContaining({ code: "schema/invalid" }));
    }
    expect(() => createPocketBaseClient({ url: server.url, auth: { token: admin.authStore.token } })).toThrow(
      expect.objectContaining({ code: "schema/invalid" }),
    );
  });
});
