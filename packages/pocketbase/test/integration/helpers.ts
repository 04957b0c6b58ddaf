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
