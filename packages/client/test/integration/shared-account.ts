import { randomBytes } from "node:crypto";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import type { ServerTracker } from "@nxs-sync/testing/vitest";

/** The account both servers hold, as the lead's account replication will leave it. */
export interface SharedUser {
  readonly id: string;
  readonly email: string;
  readonly password: string;
}

/** Two servers with one account and one note in common. */
export interface SharedAccountServers {
  readonly a: ProcessPocketBase;
  readonly b: ProcessPocketBase;
  readonly user: SharedUser;
  /** Id of a note present on both servers. */
  readonly noteId: string;
}

/**
 * A hook that makes a server answer 503 to everything (as a fenced server does) while
 * `POST /fleet-test/fence {"on": true}` (superuser) has switched it on.
 */
export const FENCE_HOOK = {
  file: "fleet-test-fence.pb.js",
  source: `
routerUse((e) => {
  if (e.request.url.path !== "/fleet-test/fence" && $app.store().get("fleetTestFenced") === true) {
    return e.json(503, { message: "fenced (test)" });
  }
  return e.next();
});
routerAdd("POST", "/fleet-test/fence", (e) => {
  $app.store().set("fleetTestFenced", !!e.requestInfo().body.on);
  return e.json(200, { fenced: $app.store().get("fleetTestFenced") });
}, $apis.requireSuperuserAuth());
`,
} as const;

const randomId = () => randomBytes(12).toString("hex").slice(0, 15);

/**
 * Starts two servers and gives them what account replication gives a real fleet: the same `users`
 * auth-token secret (set by `PATCH /api/collections/users`), the same user (same id, password and
 * token key, the token key set through the superuser record API), and a `notes` collection (any
 * signed-in user reads and writes) with one note of the same id on both.
 * @param servers - The file's server tracker.
 * @param prefix - Server names' prefix.
 * @returns Servers, user and note.
 */
export async function startSharedAccountServers(
  servers: ServerTracker,
  prefix: string,
): Promise<SharedAccountServers> {
  const [a, b] = await Promise.all(
    ["a", "b"].map((n) =>
      servers.start({ name: `${prefix}-${n}`, nxsHooks: false, batch: false, hookFiles: [FENCE_HOOK] }),
    ),
  );
  const secret = randomBytes(32).toString("hex");
  const tokenKey = randomBytes(25).toString("hex");
  const user: SharedUser = { id: randomId(), email: "ada@example.test", password: "correct-horse-battery" };
  const noteId = randomId();
  const signedIn = '@request.auth.id != ""';
  for (const server of [a!, b!]) {
    const su = server.client();
    await su.collections.update("users", { authToken: { secret } });
    await su.collection("users").create({
      id: user.id,
      email: user.email,
      password: user.password,
      passwordConfirm: user.password,
      verified: true,
      tokenKey,
    });
    await su.collections.create({
      name: "notes",
      type: "base",
      fields: [{ name: "text", type: "text" }],
      listRule: signedIn,
      viewRule: signedIn,
      createRule: signedIn,
      updateRule: signedIn,
    });
    await su.collection("notes").create({ id: noteId, text: "on both servers" });
  }
  return { a: a!, b: b!, user, noteId };
}

/**
 * Switches the test fence of a server on or off (see {@link FENCE_HOOK}).
 * @param server - The server.
 * @param on - Fenced (503 to everything) or not.
 */
export async function setFenced(server: ProcessPocketBase, on: boolean): Promise<void> {
  await server.client().send("/fleet-test/fence", { method: "POST", body: { on } });
}
