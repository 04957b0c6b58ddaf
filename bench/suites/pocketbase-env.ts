/**
 * Plumbing of `npm run bench -- pocketbase`: servers with the nxs-sync schema, node accounts, the
 * raw collection (the same fields, indexes and create rule shape as `nxs_changes`), a byte-counting
 * TCP proxy, and event-driven waits (no polling intervals inside measured sections).
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { collectionOfRole, ensureNode, ensureSchema, type NodeAuth, NodeRole } from "@nxs-sync/pocketbase";
import {
  applyCollections,
  type CollectionDefinition,
  type PocketBaseServer,
  type ProcessPocketBase,
  type ProcessPocketBaseOptions,
  startPocketBase,
  timestampFields,
} from "@nxs-sync/testing";

/** Name of the collection the raw SDK subjects write to. */
export const RAW_COLLECTION = "bench_raw";

/** A random PocketBase record id (15 chars of [a-z0-9]). */
export function recordId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return [...randomBytes(15)].map((b) => alphabet[b % alphabet.length]).join("");
}

/** A node identity, provisioned with the same id on every server of the bench. */
export interface BenchNode {
  readonly id: string;
  readonly email: string;
  readonly password: string;
  readonly auth: NodeAuth & { readonly email: string; readonly password: string };
  readonly role: NodeRole;
  readonly name: string;
}

export function makeNode(name: string, role: NodeRole = NodeRole.Gateway): BenchNode {
  const id = recordId();
  const email = `${name}-${id}@nodes.bench`;
  const password = `pw-${id}-secret`;
  // A replicator logs in to its own auth collection (the replicator and compactor default to it;
  // the collection is spelled out for the other clients a test or bench gives these credentials).
  const auth = { email, password, collection: collectionOfRole(role) };
  return { id, email, password, auth, role, name };
}

/**
 * The raw floor's collection: the fields of `nxs_changes` (doc, origin, seq, hlc, ops json, node
 * relation, created), the same unique index on (doc, origin, seq), readable and writable by any
 * authenticated node (the raw clients log in as the same node accounts as the gateways).
 */
function rawCollection(): CollectionDefinition {
  const isNode = `@request.auth.collectionName = "nxs_nodes"`;
  return {
    name: RAW_COLLECTION,
    type: "base",
    fields: [
      { name: "doc", type: "text", required: true, max: 64 },
      { name: "origin", type: "text", required: true, max: 64 },
      { name: "seq", type: "number", required: true, onlyInt: true, min: 1 },
      { name: "hlc", type: "text", required: true, max: 64 },
      { name: "ops", type: "json", maxSize: 8 * 1024 * 1024 },
      { name: "node", type: "relation", required: true, collectionId: "pbc_nxs_nodes", maxSelect: 1 },
      ...timestampFields().filter((f) => f.name === "created"),
    ],
    indexes: [`CREATE UNIQUE INDEX idx_bench_raw_doc_origin_seq ON ${RAW_COLLECTION} (doc, origin, seq)`],
    listRule: isNode,
    viewRule: isNode,
    createRule: `${isNode} && @request.body.node = @request.auth.id`,
    updateRule: null,
    deleteRule: null,
  };
}

/** Puts the nxs-sync schema, the raw collection and the node accounts on a server. */
export async function prepareServer(server: PocketBaseServer, nodes: readonly BenchNode[]): Promise<void> {
  const admin = server.client();
  await ensureSchema(admin, { batchMaxRequests: 1000 });
  await applyCollections(server, [rawCollection()], { deleteMissing: false });
  for (const n of nodes) {
    await ensureNode(admin, { id: n.id, email: n.email, password: n.password, name: n.name, role: n.role });
  }
}

/** Starts one PocketBase process with the bench schema and nodes. */
export async function startBenchServer(
  name: string,
  nodes: readonly BenchNode[],
  options: Omit<ProcessPocketBaseOptions, "name"> = {},
): Promise<ProcessPocketBase> {
  const server = await startPocketBase({ ...options, name });
  try {
    await prepareServer(server, nodes);
  } catch (e) {
    await server.destroy().catch(() => undefined);
    throw e;
  }
  return server;
}

/**
 * A condition that is re-checked whenever `check()` is called (from the event handlers that may
 * make it true) and resolves with `performance.now()` at the first check that passes. A safety
 * timeout rejects so a broken run never hangs the bench.
 */
export interface Trigger {
  readonly promise: Promise<number>;
  check(): void;
}

export function trigger(cond: () => boolean, timeoutMs: number, what: string): Trigger {
  let resolve!: (t: number) => void;
  let reject!: (e: Error) => void;
  let done = false;
  const promise = new Promise<number>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    reject(new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`));
  }, timeoutMs);
  const check = () => {
    if (done || !cond()) return;
    done = true;
    clearTimeout(timer);
    resolve(performance.now());
  };
  check();
  return { promise, check };
}

/** Polls `pred` (not inside measured sections): for set-up and post-run checks only. */
export async function until<T>(pred: () => Promise<T> | T, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await pred();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Hands values measured by one case to a sibling case (two metrics from one experiment), per subject. */
export function createStash() {
  const queues = new Map<string, number[]>();
  return {
    put(subject: string, value: number) {
      const q = queues.get(subject) ?? [];
      q.push(value);
      queues.set(subject, q);
    },
    has(subject: string): boolean {
      return (queues.get(subject)?.length ?? 0) > 0;
    },
    take(subject: string): number {
      const v = queues.get(subject)?.shift();
      if (v === undefined) throw new Error(`bench: no stashed value for ${subject}`);
      return v;
    },
  };
}
