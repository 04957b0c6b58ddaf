import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import PocketBase, { type ClientResponseError } from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createNxsCollectionRegistry,
  createReplicator,
  ensureSchema,
  NodeRole,
  type RecordConflict,
  type Replicator,
  readSecrets,
  readSecretsDigest,
  recordsCollections,
  recordsHookPiece,
  writeSecrets,
} from "../../src/index.js";
import { makeNode, provision, recordId } from "./helpers.js";

// Issue 21: accounts and app collections on every server, through the `records` hook piece and
// the replicator. Real servers; the cut is the replicator stopped while both servers take writes.

const servers = usePocketBaseServers();
const COLLECTIONS = ["users", "posts"];
let a: ProcessPocketBase;
let b: ProcessPocketBase;
const repl = makeNode("repl", NodeRole.Replicator);
const gw = makeNode("gw");
let replicator: Replicator | undefined;
const conflicts: RecordConflict[] = [];

const registry = () => createNxsCollectionRegistry().register(...recordsCollections());

/** `posts`: an app collection of the frontend (any signed-in user writes). */
const posts = {
  id: "pbc_app_posts0001",
  name: "posts",
  type: "base",
  fields: [
    { name: "title", type: "text" },
    { name: "tags", type: "json" },
    { name: "author", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 },
    { name: "created", type: "autodate", onCreate: true, onUpdate: false },
    { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
  ],
  listRule: "@request.auth.id != ''",
  viewRule: "@request.auth.id != ''",
  createRule: "@request.auth.id != ''",
  updateRule: "@request.auth.id != ''",
  deleteRule: "@request.auth.id != ''",
};

function startReplicator(): Replicator {
  const r = createReplicator({
    servers: [a, b].map((s) => ({ url: s.url, auth: repl.auth })),
    collections: registry(),
    records: COLLECTIONS,
    intervalMs: 300,
    // Tombstones held by both servers go after a second here (7 days by default).
    recordTombstoneRetentionMs: 1000,
  });
  r.on("conflict", (c) => conflicts.push(c));
  return r;
}

const guest = (s: ProcessPocketBase): PocketBase => {
  const pb = new PocketBase(s.url);
  pb.autoCancellation(false);
  return pb;
};

async function signUp(s: ProcessPocketBase, email: string, password = "a-long-password-1"): Promise<string> {
  const r = await guest(s)
    .collection("users")
    .create({ email, password, passwordConfirm: password, name: email });
  return r.id;
}

async function login(
  s: ProcessPocketBase,
  email: string,
  password = "a-long-password-1",
): Promise<PocketBase> {
  const pb = guest(s);
  await pb.collection("users").authWithPassword(email, password);
  return pb;
}

const until = <T>(check: () => Promise<T | undefined>, description: string) =>
  waitFor(check, { timeoutMs: 20_000, intervalMs: 100, description });

/** Waits until `s` holds the account (read as a superuser: logins are rate limited), then logs in. */
async function loginOnceThere(
  s: ProcessPocketBase,
  email: string,
  password = "a-long-password-1",
): Promise<PocketBase> {
  await until(
    async () =>
      (await s
        .client()
        .collection("users")
        .getFirstListItem(s.client().filter("email = {:email}", { email }))
        .catch(() => undefined)) ?? undefined,
    `${email} on ${s.url}`,
  );
  return login(s, email, password);
}

beforeAll(async () => {
  const piece = recordsHookPiece({ collections: COLLECTIONS });
  a = await servers.start({ name: "accounts-a", hookFiles: [piece] });
  b = await servers.start({ name: "accounts-b", hookFiles: [piece] });
  for (const s of [a, b]) {
    const admin = s.client();
    await ensureSchema(admin, { collections: registry() });
    await provision(s, [repl, gw]);
    await admin.collections.create(posts);
    // Every test user logs in from 127.0.0.1: raise the per-IP login limit of `users` (PocketBase's
    // "*:auth", 2 per 3 s, stays for every other collection).
    const settings = await admin.settings.getAll();
    const rules = [
      ...((settings.rateLimits?.rules as unknown[]) ?? []),
      { label: "users:auth", audience: "", duration: 1, maxRequests: 100 },
    ];
    await admin.settings.update({ rateLimits: { enabled: true, rules } });
  }
  // A's mail settings: setup copies them with the token secrets.
  await a.client().settings.update({
    meta: { senderName: "NXS", senderAddress: "nxs@example.test" },
    smtp: {
      enabled: false,
      host: "smtp.example.test",
      port: 587,
      username: "mailer",
      password: "mail-secret",
    },
  });
  // The same token secrets on both (what `nxs-sync setup` does).
  const { secrets } = await readSecrets(a.client(), "users");
  await writeSecrets(b.client(), "users", secrets);
  replicator = startReplicator();
  await replicator.start();
});
afterAll(async () => {
  await replicator?.stop();
});

describe("accounts on every server", () => {
  it("sign up on A, log in on B with the same password; A's token works on B", async () => {
    const email = `ann-${recordId()}@example.test`;
    const id = await signUp(a, email);
    const onB = await until(
      async () => (await login(b, email).catch(() => undefined)) ?? undefined,
      "login on B",
    );
    expect(onB.authStore.record?.id).toBe(id);
    await expect(login(b, email, "the-wrong-password")).rejects.toMatchObject({ status: 400 });
    // A session made on A is accepted by B (same user id, token key and secret).
    const onA = await login(a, email);
    const viaB = guest(b);
    viaB.authStore.save(onA.authStore.token, onA.authStore.record);
    const refreshed = await viaB.collection("users").authRefresh();
    expect(refreshed.record.id).toBe(id);
    expect(await readSecretsDigest(a.client(), "users")).toBe(await readSecretsDigest(b.client(), "users"));
    // The mail settings came along: a reset mail from B goes out the way A's would.
    const mailOnB = (await readSecrets(b.client(), "users")).secrets.mail;
    expect(mailOnB).toMatchObject({
      senderAddress: "nxs@example.test",
      smtp: { host: "smtp.example.test", port: 587 },
    });
  });

  it("a password change on B ends A's sessions once replicated", async () => {
    const email = `bob-${recordId()}@example.test`;
    await signUp(a, email);
    const sessionOnA = await login(a, email);
    const onB = await until(
      async () => (await login(b, email).catch(() => undefined)) ?? undefined,
      "login on B",
    );
    await onB.collection("users").update(onB.authStore.record!.id, {
      oldPassword: "a-long-password-1",
      password: "another-password-2",
      passwordConfirm: "another-password-2",
    });
    // The new hash and token key reach A: the old session is refused there, the new password works.
    await until(
      async () =>
        (await sessionOnA
          .collection("users")
          .authRefresh()
          .then(
            () => false,
            (e: ClientResponseError) => e.status === 401,
          )) || undefined,
      "A's old session refused",
    );
    await until(
      async () => (await login(a, email, "another-password-2").catch(() => undefined)) ?? undefined,
      "the new password on A",
    );
  });

  it("a delete on A stays deleted on B, also after anti-entropy", async () => {
    const email = `cy-${recordId()}@example.test`;
    const id = await signUp(a, email);
    await loginOnceThere(b, email);
    await a.client().collection("users").delete(id);
    const gone = async (s: ProcessPocketBase) =>
      s
        .client()
        .collection("users")
        .getOne(id)
        .then(
          () => false,
          (e: ClientResponseError) => e.status === 404,
        );
    await until(async () => (await gone(b)) || undefined, "deleted on B");
    await replicator?.sync({ full: true });
    await replicator?.sync({ full: true });
    expect(await gone(a)).toBe(true);
    expect(await gone(b)).toBe(true);
    // Both servers hold the tombstone: past the retention it is collected on both, and the record
    // stays deleted (no live copy is left anywhere to bring it back).
    const tombstones = (s: ProcessPocketBase) =>
      s
        .client()
        .collection("nxs_tombstones")
        .getFullList({ filter: `record = "${id}"` });
    expect(await tombstones(a)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1100));
    await replicator?.sync({ full: true });
    expect(await tombstones(a)).toEqual([]);
    expect(await tombstones(b)).toEqual([]);
    await replicator?.sync({ full: true });
    expect(await gone(a)).toBe(true);
    expect(await gone(b)).toBe(true);
  });

  it("app records: create, update and delete replicate, fields and times kept", async () => {
    const email = `dee-${recordId()}@example.test`;
    await signUp(a, email);
    const user = await login(a, email);
    const post = await user
      .collection("posts")
      .create({ title: "hello", tags: ["x", { y: 1 }], author: user.authStore.record!.id });
    const onB = async () =>
      b
        .client()
        .collection("posts")
        .getOne(post.id)
        .catch(() => undefined);
    const copied = await until(onB, "the post on B");
    expect(copied).toMatchObject({
      title: "hello",
      tags: ["x", { y: 1 }],
      created: post.created,
      updated: post.updated,
    });
    await user.collection("posts").update(post.id, { title: "hello again" });
    await until(async () => ((await onB())?.title === "hello again" ? true : undefined), "the update on B");
    await user.collection("posts").delete(post.id);
    await until(async () => ((await onB()) === undefined ? true : undefined), "the delete on B");
  });

  it("the routes answer replicators and superusers only", async () => {
    const email = `eve-${recordId()}@example.test`;
    await signUp(a, email);
    const user = await login(a, email);
    const node = guest(a);
    await node.collection("nxs_nodes").authWithPassword(gw.email, gw.password);
    const calls: [string, string, Record<string, unknown> | undefined][] = [
      ["POST", "/nxs/records/users/export", {}],
      ["POST", "/nxs/records/users/import", { records: [] }],
      ["GET", "/nxs/records/users/secrets?full=1", undefined],
      ["POST", "/nxs/records/users/secrets", { secrets: {} }],
      ["GET", "/nxs/records/users/digest", undefined],
    ];
    for (const [who, pb, status] of [
      ["a guest", guest(a), 401],
      ["a user", user, 403],
      ["a gateway", node, 403],
    ] as const) {
      for (const [method, path, body] of calls) {
        const answer = await pb
          .send(path, { method, ...(body === undefined ? {} : { body }), requestKey: null })
          .then(
            () => 200,
            (e: ClientResponseError) => e.status,
          );
        expect(`${who} ${method} ${path}: ${answer}`).toBe(`${who} ${method} ${path}: ${status}`);
      }
    }
    // A replicator does reach it (and a superuser: the CLI's setup and status).
    const r = guest(a);
    await r.collection("nxs_replicators").authWithPassword(repl.email, repl.password);
    const page = await r.send<{ records: { data: { password: string } }[] }>("/nxs/records/users/export", {
      method: "POST",
      body: {},
      requestKey: null,
    });
    expect(page.records[0]?.data.password).toMatch(/^\$2a\$/);
    // Only the collections the piece was written for.
    await expect(
      r.send("/nxs/records/nxs_nodes/digest", { method: "GET", requestKey: null }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it("writes made on top of each other (A, then B, then two quick ones on A) are not reported as conflicts", async () => {
    const email = `hal-${recordId()}@example.test`;
    const id = await signUp(a, email);
    await loginOnceThere(b, email);
    conflicts.length = 0;
    const nameOn = async (s: ProcessPocketBase) => (await s.client().collection("users").getOne(id)).name;
    const settled = (s: ProcessPocketBase, name: string) =>
      until(async () => ((await nameOn(s)) === name ? true : undefined), `${name} on ${s.url}`);
    await a.client().collection("users").update(id, { name: "one" });
    await settled(b, "one");
    await b.client().collection("users").update(id, { name: "two" });
    await settled(a, "two");
    await a.client().collection("users").update(id, { name: "three" });
    await a.client().collection("users").update(id, { name: "four" });
    await settled(b, "four");
    await replicator?.sync({ full: true });
    await replicator?.sync({ full: true });
    expect(await nameOn(a)).toBe("four");
    expect(conflicts.filter((c) => c.id === id)).toEqual([]);
  });

  it("during a cut: one record updated on both sides, and one email signed up on both, resolve the same on both", async () => {
    const email = `fay-${recordId()}@example.test`;
    const id = await signUp(a, email);
    await loginOnceThere(b, email);
    await replicator?.stop();
    conflicts.length = 0;
    const dup = `Gus-${recordId()}@Example.test`;
    let first = "";
    let second = "";
    try {
      // The cut: each server takes writes the other does not see.
      await a.client().collection("users").update(id, { name: "from A" });
      await new Promise((r) => setTimeout(r, 20));
      await b.client().collection("users").update(id, { name: "from B" });
      first = await signUp(b, dup.toLowerCase());
      await new Promise((r) => setTimeout(r, 20));
      second = await signUp(a, dup);
    } finally {
      replicator = startReplicator();
      await replicator.start();
    }
    await replicator.sync({ full: true });
    await replicator.sync({ full: true });
    const read = async (s: ProcessPocketBase, rid: string) => s.client().collection("users").getOne(rid);
    // The later write wins on both servers.
    expect((await read(a, id)).name).toBe("from B");
    expect((await read(b, id)).name).toBe("from B");
    // One email, one account: the one created first keeps it, on both servers.
    const all = async (s: ProcessPocketBase) =>
      (await s.client().collection("users").getFullList({ filter: `email ~ "gus-"` }))
        .map((u) => [u.id, u.email])
        .sort();
    const onA = await all(a);
    expect(onA).toEqual(await all(b));
    // The first keeps it; the second's own address (its case too) gets its id.
    const at = dup.lastIndexOf("@");
    expect(onA).toEqual(
      [
        [first, dup.toLowerCase()],
        [second, `${dup.slice(0, at)}+nxs-dup-${second}${dup.slice(at)}`],
      ].sort(),
    );
    expect(conflicts.some((c) => c.id === id && c.conflict.lost !== undefined)).toBe(true);
    expect(conflicts.some((c) => c.conflict.email !== undefined)).toBe(true);
  });
});
