import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  type Change,
  createDoc,
  createReplica,
  type Doc,
  encodeHlc,
  type Replica,
  silentLogger,
} from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { type PocketBaseServer, startPocketBase } from "@nxs-sync/testing";
import type { z } from "zod";
import {
  Collections,
  collectionOfRole,
  createPocketBaseClient,
  createPocketBaseTransport,
  encodeChangeRecord,
  ensureNode,
  ensureSchema,
  type NodeAuth,
  NodeRole,
  type PocketBaseTransport,
  type PocketBaseTransportOptions,
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

/** Installs the schema and provisions `nodes` (same ids) on every server, as an operator would. */
export async function setUpServers(
  servers: readonly PocketBaseServer[],
  nodes: readonly (TestNode & { role: NodeRole; name: string })[],
): Promise<void> {
  for (const s of servers) {
    await ensureSchema(s.client());
    await provision(s, nodes);
  }
}

/** Options of {@link quietGateway}. */
export interface QuietGatewayOptions<S extends z.ZodType> {
  readonly node: TestNode;
  readonly docId: string;
  /** The replica id is `<node id>.<instance>`. */
  readonly instance: string;
  readonly endpoints: readonly string[];
  readonly schema: S;
  readonly initial: z.input<S>;
  /** Extra transport options. */
  readonly transport?: Partial<PocketBaseTransportOptions>;
  /** Where the gateway's stop goes (a test's cleanup list). */
  readonly cleanup: (fn: () => Promise<void>) => void;
}

/**
 * A gateway as most tests need one: a doc on the wall clock, a transport given its origin, a
 * replica on memory storage and real timers, all silent (the tests assert on events instead).
 * Not started.
 */
export function quietGateway<S extends z.ZodType>(
  o: QuietGatewayOptions<S>,
): { doc: Doc<z.output<S>>; replica: Replica<Doc<z.output<S>>>; transport: PocketBaseTransport } {
  const replicaId = `${o.node.id}.${o.instance}`;
  const doc = createDoc({
    schema: o.schema,
    docId: o.docId,
    replicaId,
    clock: Date.now,
    initial: o.initial,
  }) as Doc<z.output<S>>;
  const transport = createPocketBaseTransport({
    endpoints: o.endpoints,
    auth: o.node.auth,
    docId: o.docId,
    origin: replicaId,
    logger: silentLogger,
    ...o.transport,
  });
  const replica = createReplica({
    doc,
    transport,
    storage: createMemoryStorage(),
    scheduler: createTimerScheduler(),
    logger: silentLogger,
  });
  o.cleanup(() => replica.stop());
  return { doc, replica, transport };
}
