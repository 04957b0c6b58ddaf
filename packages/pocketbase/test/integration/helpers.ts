import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type PocketBaseServer, startPocketBase } from "@nxs-sync/testing";
import { ensureNode, ensureSchema, type NodeAuth, NodeRole } from "../../src/index.js";

/** The package's JS migrations (the schema users drop into pb_migrations). */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));

/** A node identity provisioned with the same id on every server of a test. */
export interface TestNode {
  readonly id: string;
  readonly email: string;
  readonly password: string;
  readonly auth: NodeAuth;
}

/** A random PocketBase record id (15 chars of [a-z0-9]). */
export function recordId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return [...randomBytes(15)].map((b) => alphabet[b % alphabet.length]).join("");
}

/** Makes a node spec (not provisioned yet). */
export function makeNode(
  name: string,
  role: NodeRole = NodeRole.Gateway,
): TestNode & { role: NodeRole; name: string } {
  const id = recordId();
  const email = `${name}-${id}@nodes.test`;
  const password = `pw-${id}-secret`;
  return { id, email, password, auth: { email, password }, role, name };
}

/** Provisions nodes on a server (superuser set-up, as an operator would). */
export async function provision(
  server: PocketBaseServer,
  nodes: readonly (TestNode & { role: NodeRole; name: string })[],
): Promise<void> {
  const admin = server.client();
  for (const n of nodes) {
    await ensureNode(admin, { id: n.id, email: n.email, password: n.password, name: n.name, role: n.role });
  }
}

/** Starts a server with the nxs-sync schema (by `ensureSchema`, or by the migration file). */
export async function startSchemaServer(
  name: string,
  how: "ensureSchema" | "migration" = "ensureSchema",
): Promise<PocketBaseServer> {
  const server = await startPocketBase({
    name,
    batch: false,
    ...(how === "migration" ? { migrationsDir: MIGRATIONS_DIR } : {}),
  });
  if (how === "ensureSchema") await ensureSchema(server.client());
  return server;
}

/** A stable string of a JSON value (sorted keys), for state hashes. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** A TCP proxy in front of a server: `cut()` drops every connection and refuses new ones until `heal()`. */
export interface LinkProxy {
  /** The URL to use instead of the server's. */
  readonly url: string;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

/**
 * Starts a TCP proxy to `target` (an `http://host:port` URL) on a free loopback port: a network link
 * the test can cut (a partition between the replicator and one server) while clients that talk to the
 * server directly go on.
 */
export async function startLinkProxy(target: string): Promise<LinkProxy> {
  const { createServer, connect } = await import("node:net");
  const t = new URL(target);
  const sockets = new Set<import("node:net").Socket>();
  let cut = false;
  const server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(t.port), t.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    heal() {
      cut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut = true;
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
