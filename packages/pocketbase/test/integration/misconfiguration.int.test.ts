import { createServer, type Server } from "node:net";
import { ConflictError, isNxsError, type NxsError, TransportError } from "@nxs-sync/core";
import { findFreePort, type ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { ClientResponseError } from "pocketbase";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isUniqueViolation } from "../../src/client.js";
import {
  createPocketBaseClient,
  createPocketBaseTransport,
  ensureNode,
  ensureSchema,
  NodeRole,
} from "../../src/index.js";
import { makeNode, provision, recordId } from "./helpers.js";

// Item 3 of issue 12 (client layer): misconfiguration is an early error that names the fix.

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw = makeNode("gw");
const repl = makeNode("repl", NodeRole.Replicator);

beforeAll(async () => {
  server = await servers.start({ name: "misconfig", batch: false });
  await ensureSchema(server.client());
  await provision(server, [gw, repl]);
});

/** What a promise rejects with, as an NxsError (fails the test when it resolves or is no NxsError). */
async function failure(p: Promise<unknown>): Promise<NxsError> {
  const e = await p.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!isNxsError(e)) throw new Error(`expected an NxsError, got ${String(e)}`);
  return e;
}

describe("a server without the nxs-sync schema", () => {
  it("fails the gateway's connect with server/incompatible naming ensureSchema and the migrations", async () => {
    const bare = await servers.start({ name: "no-schema", batch: false });
    const t = createPocketBaseTransport({ endpoints: [bare.url], auth: gw.auth, docId: `d-${recordId()}` });
    try {
      const err = await failure(t.connect());
      expect(err.code).toBe("server/incompatible");
      expect(err.message).toContain(bare.url);
      expect(err.message).toMatch(/nxs_nodes.*ensureSchema.*pb_migrations/);
    } finally {
      await t.close();
    }
  });
});

describe("PocketBase answers are mapped once, by the client", () => {
  it("a write on a unique index is a ConflictError naming the index's fields, tried once", async () => {
    const c = createPocketBaseClient({ url: server.url, auth: gw.auth });
    try {
      const node = await c.authenticate();
      const body = { doc: `d-${recordId()}`, replica: gw.id, version: {}, at: 1, node };
      await c.call("write ack", (pb) => pb.collection("nxs_acks").create(body));
      let attempts = 0;
      const err = await failure(
        c.call("write ack", (pb) => {
          attempts++;
          return pb.collection("nxs_acks").create(body);
        }),
      );
      expect(err).toBeInstanceOf(ConflictError);
      expect(err).toMatchObject({ code: "conflict", retryable: false, fields: ["doc", "replica"] });
      expect(err.message).toMatch(/^write ack: conflict: a record with the same doc, replica exists/);
      expect(err.cause).toBeInstanceOf(ClientResponseError);
      expect(isUniqueViolation(err, ["doc", "replica"])).toBe(true);
      expect(attempts).toBe(1);
    } finally {
      c.close();
    }
  });

  it("a request to a collection the server lacks is server/incompatible naming it and the schema fix", async () => {
    const c = createPocketBaseClient({ url: server.url, auth: gw.auth });
    try {
      const err = await failure(c.call("list", (pb) => pb.collection("nxs_missing").getList(1, 1)));
      expect(err).toBeInstanceOf(TransportError);
      expect(err).toMatchObject({ code: "server/incompatible", retryable: false, status: 404 });
      expect(err.message).toMatch(
        /^list: the server has no collection nxs_missing \(404 .*ensureSchema.*pb_migrations/,
      );
      // A missing record of an existing collection stays a plain refusal.
      const record = await failure(
        c.call("read", (pb) => pb.collection("nxs_acks").getOne("missingrecord00")),
      );
      expect(record.code).toBe("transport/rejected");
    } finally {
      c.close();
    }
  });
});

describe("refused logins", () => {
  it("say which auth collection was tried, at which URL, and what to check", async () => {
    const wrong = createPocketBaseClient({
      url: server.url,
      auth: { email: gw.email, password: "wrong-pw-1" },
    });
    const err = await failure(wrong.authenticate());
    expect(err.code).toBe("transport/unauthorized");
    expect(err.message).toContain(`login to nxs_nodes at ${server.url}`);
    expect(err.message).toMatch(/check the email and password/);
    expect(err.cause).toBeInstanceOf(ClientResponseError);
    wrong.close();
  });

  it("point a replicator account used as a gateway to nxs_replicators", async () => {
    const t = createPocketBaseTransport({
      endpoints: [server.url],
      auth: { email: repl.email, password: repl.password },
      docId: `d-${recordId()}`,
    });
    try {
      const err = await failure(t.connect());
      expect(err.code).toBe("transport/unauthorized");
      expect(err.message).toContain(`login to nxs_nodes at ${server.url}`);
      expect(err.message).toMatch(/auth\.collection "nxs_replicators"/);
    } finally {
      await t.close();
    }
  });

  it("say so for the replicators' collection too", async () => {
    const c = createPocketBaseClient({ url: server.url, auth: { ...repl.auth, password: "wrong-pw-1" } });
    const err = await failure(c.authenticate());
    expect(err.code).toBe("transport/unauthorized");
    expect(err.message).toContain(`login to nxs_replicators at ${server.url}`);
    c.close();
  });
});

describe("connection errors keep their cause", () => {
  it("ECONNREFUSED: a closed port of 127.0.0.1", async () => {
    const url = `http://127.0.0.1:${await findFreePort()}`;
    const c = createPocketBaseClient({ url, auth: gw.auth, retry: { retries: 0 } });
    const err = await failure(c.authenticate());
    expect(err.code).toBe("transport/unavailable");
    expect(err.message).toContain("ECONNREFUSED");
    expect(err.message).toContain(url);
    expect((err.cause as { code?: string }).code).toBe("ECONNREFUSED");
    c.close();
  });

  it("ENOTFOUND: a host under .invalid (never resolves)", async () => {
    const url = "http://nxs-sync-test.invalid:8090";
    const c = createPocketBaseClient({ url, auth: gw.auth, retry: { retries: 0 } });
    const err = await failure(c.authenticate());
    expect(err.code).toBe("transport/unavailable");
    expect(err.message).toContain("ENOTFOUND");
    expect((err.cause as { code?: string }).code).toBe("ENOTFOUND");
    c.close();
  });

  describe("timeout", () => {
    let silent: Server;
    let port: number;
    beforeAll(async () => {
      // Accepts connections and never answers: a frozen server, as seen by the client.
      silent = createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      port = (silent.address() as { port: number }).port;
    });
    afterAll(async () => {
      silent.close();
    });

    it("names the timeout in the message and keeps it as cause", async () => {
      const c = createPocketBaseClient({
        url: `http://127.0.0.1:${port}`,
        auth: gw.auth,
        requestTimeoutMs: 200,
        retry: { retries: 0 },
      });
      const err = await failure(c.authenticate());
      expect(err.code).toBe("transport/unavailable");
      expect(err.message).toMatch(/timeout: request timed out after 200 ms/);
      expect((err.cause as Error).name).toBe("TimeoutError");
      c.close();
    });
  });
});

describe("ensureNode", () => {
  it("requires an explicit, well-formed id: config/invalid", async () => {
    const admin = server.client();
    const err = await failure(
      ensureNode(admin, { email: `n-${recordId()}@nodes.test`, password: "pw-1234567890" } as never),
    );
    expect(err.code).toBe("config/invalid");
    expect(err.message).toMatch(/15 chars of \[a-z0-9\].*same on every server/);
    const bad = await failure(
      ensureNode(admin, { id: "Not-An-Id", email: `n-${recordId()}@nodes.test`, password: "pw-1234567890" }),
    );
    expect(bad.code).toBe("config/invalid");
  });

  it("maps an invalid email to config/invalid, keeping the server's answer as cause", async () => {
    const err = await failure(
      ensureNode(server.client(), { id: recordId(), email: "not an email", password: "pw-1234567890" }),
    );
    expect(err.code).toBe("config/invalid");
    expect(err.message).toMatch(/email/);
    expect(err.cause).toBeInstanceOf(ClientResponseError);
  });

  it("refuses an account whose email exists under another id (ids must be equal on every server)", async () => {
    const err = await failure(
      ensureNode(server.client(), { id: recordId(), email: gw.email, password: gw.password }),
    );
    expect(err.code).toBe("config/invalid");
    expect(err.message).toContain(`exists with id ${gw.id}`);
  });

  it("is idempotent with the same id", async () => {
    await expect(
      ensureNode(server.client(), { id: gw.id, email: gw.email, password: gw.password }),
    ).resolves.toBe(gw.id);
    await provision(server, [gw]);
  });

  it("names the schema fix on a server without the collections", async () => {
    const bare = await servers.start({ name: "no-schema-node", batch: false });
    const err = await failure(
      ensureNode(bare.client(), {
        id: recordId(),
        email: `n-${recordId()}@nodes.test`,
        password: "pw-1234567890",
      }),
    );
    expect(err.code).toBe("server/incompatible");
    expect(err.message).toMatch(/ensureSchema/);
  });
});
