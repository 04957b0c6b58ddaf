import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type Change, encodeHlc } from "@nxs-sync/core";
import { type PocketBaseServer, startPocketBase } from "@nxs-sync/testing";
import {
  Collections,
  collectionOfRole,
  createPocketBaseClient,
  encodeChangeRecord,
  ensureNode,
  ensureSchema,
  type NodeAuth,
  NodeRole,
} from "../../src/index.js";

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
  // A replicator logs in to its own auth collection (the replicator and compactor default to it;
  // the collection is spelled out for the other clients a test or bench gives these credentials).
  const auth: NodeAuth = { email, password, collection: collectionOfRole(role) };
  return { id, email, password, auth, role, name };
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

/** What {@link rawChangeRecord} builds a record of: one change, ops as given (even invalid ones). */
export interface RawChange {
  readonly doc: string;
  readonly origin: string;
  readonly seq: number;
  readonly node: string;
  /** Default: a valid HLC of `origin` at 1.7e12 + seq ms. */
  readonly hlc?: string;
  /** Default: one set of `["k", "<seq>"]` to seq. */
  readonly ops?: readonly unknown[];
}

/**
 * The body of an `nxs_changes` record (a pack of one change) written straight through the record
 * API, as a misbehaving or foreign writer would: `override` replaces envelope fields afterwards.
 */
export function rawChangeRecord(
  c: RawChange,
  override: Record<string, unknown> = {},
): Record<string, unknown> {
  const change = {
    doc: c.doc,
    origin: c.origin,
    seq: c.seq,
    hlc: c.hlc ?? encodeHlc({ ms: 1_700_000_000_000 + c.seq, counter: 0, node: c.origin }),
    ops: c.ops ?? [{ kind: "set", path: ["k", String(c.seq)], value: c.seq }],
  } as unknown as Change;
  return { ...encodeChangeRecord([change], c.node), ...override };
}

/**
 * The distinct changes (`origin:seq`, sorted) a server holds for a doc, packs expanded and overlaps
 * counted once, read with node credentials `auth`.
 */
export async function changeKeysOn(
  url: string,
  auth: NodeAuth,
  doc: string,
  origin?: string,
): Promise<string[]> {
  const c = createPocketBaseClient({ url, auth });
  try {
    const rows = await c.call("list changes", (pb) =>
      pb.collection(Collections.Changes).getFullList({
        filter:
          origin === undefined
            ? pb.filter("doc = {:doc}", { doc })
            : pb.filter("doc = {:doc} && origin = {:origin}", { doc, origin }),
        fields: "origin,seq,last",
      }),
    );
    const keys = new Set<string>();
    for (const r of rows) for (let q = r.seq; q <= r.last; q++) keys.add(`${r.origin}:${q}`);
    return [...keys].sort();
  } finally {
    c.close();
  }
}

/** How many distinct changes a server holds for a doc (see {@link changeKeysOn}). */
export async function countChanges(
  url: string,
  auth: NodeAuth,
  doc: string,
  origin?: string,
): Promise<number> {
  return (await changeKeysOn(url, auth, doc, origin)).length;
}
