// Shared set-up of the queue's integration tests: real PocketBase servers with the queue's
// collections and hook piece, gateway and replicator accounts, and backends.
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { silentLogger } from "@nxs-sync/core";
import {
  createNxsCollectionRegistry,
  createReplicator,
  ensureNode,
  ensureSchema,
  NodeRole,
  type Replicator,
} from "@nxs-sync/pocketbase";
import type { ClaimedJob, JobId, NewJob, QueueBackend } from "@nxs-sync/queue";
import {
  createPocketBaseQueueBackend,
  type PocketBaseQueueBackend,
  type PocketBaseQueueBackendOptions,
  queueCollections,
  queueHookPiece,
} from "@nxs-sync/queue/pocketbase";
import { type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import type { ServerTracker } from "@nxs-sync/testing/vitest";
import { afterEach } from "vitest";

export const registry = () => createNxsCollectionRegistry().register(...queueCollections());

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
/** A random record id (15 chars of [a-z0-9]). */
export const newId = (): string => [...randomBytes(15)].map((x) => ALPHABET[x % 36]).join("");

export interface Account {
  readonly id: string;
  readonly email: string;
  readonly password: string;
  readonly role: NodeRole;
}
export const account = (role: NodeRole = NodeRole.Gateway): Account => {
  const n = newId();
  return { id: n, email: `${n}@queue.test`, password: `pw-${n}-secret`, role };
};
export const authOf = (a: Account) => ({ email: a.email, password: a.password });

export const gateway = account(NodeRole.Gateway);
export const replicatorAccount = account(NodeRole.Replicator);

/** Starts a server with the queue's collections, hook piece and the shared accounts. */
export async function startQueueServer(servers: ServerTracker, name: string): Promise<ProcessPocketBase> {
  const s = await servers.start({ name, hookFiles: [queueHookPiece()] });
  await ensureSchema(s.client(), { collections: registry(), rateLimits: false });
  for (const a of [gateway, replicatorAccount]) await ensureNode(s.client(), a);
  return s;
}

/** Fast failover for tests. */
export const FAST_FAILOVER = {
  failureThreshold: 1,
  downAfterMs: 300,
  healthIntervalMs: 200,
  healthTimeoutMs: 300,
};

const backends: PocketBaseQueueBackend[] = [];
/** A backend as the gateway account (closed by {@link closeBackends}). */
export function backendOf(
  endpoints: readonly string[],
  options: Partial<PocketBaseQueueBackendOptions> = {},
): PocketBaseQueueBackend {
  const b = createPocketBaseQueueBackend({
    endpoints,
    auth: authOf(gateway),
    failover: FAST_FAILOVER,
    logger: silentLogger,
    ...options,
  });
  backends.push(b);
  return b;
}
export async function closeBackends(): Promise<void> {
  await Promise.all(backends.splice(0).map((b) => b.close()));
}

/** A new job of `queue` (3 attempts, no timeout). */
export const newJob = (queue: string, extra: Partial<NewJob> = {}): NewJob => ({
  id: newId() as JobId,
  queue,
  payload: { n: 1 },
  maxAttempts: 3,
  backoff: {},
  timeoutMs: 0,
  ...extra,
});
export const newJobs = (queue: string, n: number): NewJob[] => Array.from({ length: n }, () => newJob(queue));

/** Claims one job as soon as one is ready (a lapsed lease, a delay), polling. */
export const claimWhenReady = (
  backend: QueueBackend,
  queue: string,
  worker: string,
  leaseMs: number,
  description: string,
  timeoutMs = 5000,
): Promise<ClaimedJob> =>
  waitFor(async () => (await backend.claim({ queue, worker, leaseMs, max: 1 }))[0], {
    timeoutMs,
    intervalMs: 100,
    description,
  });

/** The path of a file beside this one. */
export const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/**
 * A new replicator between `servers` (the queue's registry, a 300 ms round), started. A stopped
 * replicator does not start again: a heal after a cut makes a new one.
 */
export async function startReplicatorBetween(servers: readonly ProcessPocketBase[]): Promise<Replicator> {
  const replicator = createReplicator({
    servers: servers.map((s) => ({ url: s.url, auth: authOf(replicatorAccount) })),
    collections: registry(),
    intervalMs: 300,
    logger: silentLogger,
  });
  await replicator.start();
  return replicator;
}

/**
 * Child processes of one test file (`node --import tsx <file> <config JSON>`, IPC to the parent),
 * each message handed to `onMessage`; `afterEach` SIGKILLs those still alive.
 */
export function useChildProcesses<M>(file: string, onMessage: (m: M) => void) {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const p of children.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  });
  return (config: unknown): ChildProcess => {
    const proc = fork(here(file), [JSON.stringify(config)], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.push(proc);
    proc.on("message", (m: M) => onMessage(m));
    return proc;
  };
}
