import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createPocketBaseClient, SUPERUSERS_COLLECTION_ID } from "../../src/client.js";
import { NXS_HOOKS_VERSION, NXS_SCHEMA_VERSION } from "../../src/hooks.js";

/** An unsigned JWT with `claims` (the client reads claims only; the server checks signatures). */
const token = (claims: Record<string, unknown>): string =>
  `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
const inHours = (h: number) => Math.floor(Date.now() / 1000) + h * 3600;

/** A fake server: logins answer `record` with a token of `lifetimeS`; counts logins and requests. */
async function fakeServer(record: Record<string, unknown>, lifetimeS = 6 * 3600) {
  const seen = { logins: 0, lists: 0 };
  const server: Server = createServer((req, res) => {
    res.setHeader("Content-Type", "application/json");
    if (req.url?.includes("/auth-with-password") || req.url?.includes("/auth-refresh")) {
      seen.logins++;
      const t = token({
        id: record.id,
        collectionId: record.collectionId,
        type: "auth",
        exp: Math.floor(Date.now() / 1000) + lifetimeS,
      });
      res.end(JSON.stringify({ token: t, record }));
    } else if (req.url?.startsWith("/nxs/version")) {
      res.end(JSON.stringify({ name: "nxs-sync", hooks: NXS_HOOKS_VERSION, schema: NXS_SCHEMA_VERSION }));
    } else {
      seen.lists++;
      res.end(JSON.stringify({ page: 1, perPage: 1, items: [], totalItems: -1, totalPages: -1 }));
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe("the never-a-superuser guard", () => {
  const url = "http://127.0.0.1:1";
  it.each([
    ["the collection name", { email: "a@b.c", password: "x", collection: "_superusers" }],
    ["the collection id", { email: "a@b.c", password: "x", collection: SUPERUSERS_COLLECTION_ID }],
    [
      "a superuser token",
      { token: token({ id: "x", collectionId: SUPERUSERS_COLLECTION_ID, exp: inHours(1) }) },
    ],
    [
      "a superuser token under a node collection",
      {
        token: token({ id: "x", collectionId: SUPERUSERS_COLLECTION_ID, exp: inHours(1) }),
        collection: "nxs_nodes",
      },
    ],
  ])("refuses %s", (_what, auth) => {
    expect(() => createPocketBaseClient({ url, auth })).toThrow(
      expect.objectContaining({ code: "schema/invalid" }),
    );
  });

  it("accepts a node token", () => {
    const auth = { token: token({ id: "x", collectionId: "pbc_nxs_nodes", exp: inHours(1) }) };
    expect(() => createPocketBaseClient({ url, auth }).close()).not.toThrow();
  });

  it("refuses a login the server answers with a superuser record, and keeps no token", async () => {
    const fake = await fakeServer({
      id: "su",
      collectionId: SUPERUSERS_COLLECTION_ID,
      collectionName: "_superusers",
    });
    closers.push(fake.close);
    const c = createPocketBaseClient({
      url: fake.url,
      auth: { email: "a@b.c", password: "x", collection: "nxs_nodes" },
    });
    closers.push(async () => c.close());
    await expect(c.authenticate()).rejects.toMatchObject({ code: "schema/invalid" });
    expect(c.pb.authStore.token).toBe("");
  });

  it("refuses a superuser token saved into its auth store, and clears it", async () => {
    const fake = await fakeServer({ id: "n1", collectionId: "pbc_nxs_nodes", collectionName: "nxs_nodes" });
    closers.push(fake.close);
    const c = createPocketBaseClient({ url: fake.url, auth: { email: "a@b.c", password: "x" } });
    closers.push(async () => c.close());
    c.pb.authStore.save(token({ id: "su", collectionId: SUPERUSERS_COLLECTION_ID, exp: inHours(1) }), null);
    await expect(c.call("list", (pb) => pb.collection("nxs_changes").getList(1, 1))).rejects.toMatchObject({
      code: "schema/invalid",
    });
    expect(c.pb.authStore.token).toBe("");
    expect(fake.seen.lists).toBe(0);
  });
});

describe("token lifetime", () => {
  it("a 6-hour token is used until refreshBeforeS before it expires: one login for many requests", async () => {
    const fake = await fakeServer({ id: "n1", collectionId: "pbc_nxs_nodes", collectionName: "nxs_nodes" });
    closers.push(fake.close);
    const c = createPocketBaseClient({ url: fake.url, auth: { email: "a@b.c", password: "x" } });
    closers.push(async () => c.close());
    for (let i = 0; i < 5; i++) await c.call("list", (pb) => pb.collection("nxs_changes").getList(1, 1));
    expect(fake.seen).toEqual({ logins: 1, lists: 5 });
  });

  it("a token shorter-lived than refreshBeforeS is renewed halfway, not at every request", async () => {
    const fake = await fakeServer(
      { id: "n1", collectionId: "pbc_nxs_nodes", collectionName: "nxs_nodes" },
      300,
    );
    closers.push(fake.close);
    const c = createPocketBaseClient({
      url: fake.url,
      auth: { email: "a@b.c", password: "x" },
      refreshBeforeS: 600,
    });
    closers.push(async () => c.close());
    for (let i = 0; i < 5; i++) await c.call("list", (pb) => pb.collection("nxs_changes").getList(1, 1));
    expect(fake.seen).toEqual({ logins: 1, lists: 5 });
  });
});
