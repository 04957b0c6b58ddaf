// Shared set-up of the metrics' integration tests: real PocketBase servers with the metrics
// collections, gateway and replicator accounts, clients and metrics on a manual clock.
import { randomBytes } from "node:crypto";
import { createManualScheduler, type ManualScheduler, silentLogger } from "@nxs-sync/core";
import {
  createMetrics,
  type Metrics,
  type MetricsOptions,
  type ThresholdCheck,
  type Tier,
} from "@nxs-sync/metrics";
import {
  createPocketBaseMetricsClient,
  metricsCollections,
  metricsHookPiece,
  POINTS_COLLECTION,
  type PocketBaseMetricsClient,
} from "@nxs-sync/metrics/pocketbase";
import {
  createNxsCollectionRegistry,
  createReplicator,
  ensureNode,
  ensureSchema,
  NodeRole,
  type Replicator,
} from "@nxs-sync/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import type { ServerTracker } from "@nxs-sync/testing/vitest";

/** Tombstones of expired windows are purged 1 s after their expiry (tests). */
export const registry = () =>
  createNxsCollectionRegistry().register(...metricsCollections({ expiredPurgeMs: 1_000 }));

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
export const newId = (): string => [...randomBytes(15)].map((x) => ALPHABET[x % 36]).join("");
const account = (role: NodeRole) => {
  const n = newId();
  return { id: n, email: `${n}@metrics.test`, password: `pw-${n}-secret`, role };
};
export const gateway = account(NodeRole.Gateway);
export const replicatorAccount = account(NodeRole.Replicator);
export const authOf = (a: { email: string; password: string }) => ({ email: a.email, password: a.password });

/** Starts a server with the metrics collections, the shared accounts and (optionally) the metrics hook piece. */
export async function startMetricsServer(
  servers: ServerTracker,
  name: string,
  options: { readonly hooks?: boolean; readonly env?: Record<string, string> } = {},
): Promise<ProcessPocketBase> {
  const piece = metricsHookPiece();
  const s = await servers.start({
    name,
    ...(options.hooks === true ? { hookFiles: [{ file: piece.file, source: piece.source }] } : {}),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  await ensureSchema(s.client(), { collections: registry(), rateLimits: false });
  for (const a of [gateway, replicatorAccount]) await ensureNode(s.client(), a);
  return s;
}

/** Two servers (`<prefix>-a`, `<prefix>-b`) as {@link startMetricsServer} makes them, and a replicator between them. */
export async function startPair(
  servers: ServerTracker,
  prefix: string,
  options: Parameters<typeof startMetricsServer>[2] = {},
): Promise<{ a: ProcessPocketBase; b: ProcessPocketBase; replicator: Replicator }> {
  const [a, b] = await Promise.all([
    startMetricsServer(servers, `${prefix}-a`, options),
    startMetricsServer(servers, `${prefix}-b`, options),
  ]);
  return { a, b, replicator: await replicatorOf([a, b]) };
}

/** A started replicator between the servers (the metrics registry, a 300 ms anti-entropy round). */
export async function replicatorOf(servers: readonly ProcessPocketBase[]): Promise<Replicator> {
  const replicator = createReplicator({
    servers: servers.map((s) => ({ url: s.url, auth: authOf(replicatorAccount) })),
    collections: registry(),
    intervalMs: 300,
    logger: silentLogger,
  });
  await replicator.start();
  return replicator;
}

/** A memory check with hysteresis: above 75 for 30 s fires, below 70 for 20 s resolves. */
export const memHigh: ThresholdCheck = {
  kind: "threshold",
  name: "mem-high",
  series: "mem_percent",
  when: "above",
  threshold: 75,
  clearThreshold: 70,
  forMs: 30_000,
  clearForMs: 20_000,
};

export const FAST_FAILOVER = {
  failureThreshold: 1,
  downAfterMs: 300,
  healthIntervalMs: 200,
  healthTimeoutMs: 300,
};

/** Small tiers for tests: 1 m kept 30 min, 10 m kept 2 h; flushes kept 10 min. */
export const TIERS: readonly Tier[] = [
  { name: "1m", spanMs: 60_000, retentionMs: 30 * 60_000 },
  { name: "10m", spanMs: 600_000, retentionMs: 2 * 3_600_000 },
];
export const RAW_RETENTION_MS = 10 * 60_000;

/**
 * A start time 3 hours ago on a 10-minute boundary: windows are in the past for the replicator's
 * clock (a tombstone's purge time is the metrics' clock), and the tests move the manual clock on.
 */
export const pastStart = (): number => Math.floor((Date.now() - 3 * 3_600_000) / 600_000) * 600_000;

const clients: PocketBaseMetricsClient[] = [];
const opened: Metrics[] = [];
/** A metrics client of the gateway over `endpoints`. */
export function clientOf(endpoints: readonly string[]): PocketBaseMetricsClient {
  const c = createPocketBaseMetricsClient({
    endpoints,
    auth: authOf(gateway),
    failover: FAST_FAILOVER,
    logger: silentLogger,
  });
  clients.push(c);
  return c;
}

/** A node's metrics on `endpoints`, on a manual clock starting at `now`, maintenance by hand. */
export function metricsOf(
  node: string,
  endpoints: readonly string[],
  now: number,
  extra: Partial<MetricsOptions> = {},
): { metrics: Metrics; scheduler: ManualScheduler; client: PocketBaseMetricsClient } {
  const scheduler = createManualScheduler({ now });
  const client = clientOf(endpoints);
  const metrics = createMetrics({
    client,
    node,
    scheduler,
    tiers: TIERS,
    rawRetentionMs: RAW_RETENTION_MS,
    maintain: false,
    logger: silentLogger,
    ...extra,
  });
  opened.push(metrics);
  metrics.start();
  return { metrics, scheduler, client };
}

export function closeAll(): void {
  opened.splice(0);
  for (const c of clients.splice(0)) c.close();
}

/** Moves a node's clock by `ms` in flush-sized steps, writing each flush before the next. */
export async function runFor(
  m: { metrics: Metrics; scheduler: ManualScheduler },
  ms: number,
  each?: (second: number) => void,
): Promise<void> {
  for (let t = 0; t < ms; t += 1_000) {
    each?.(t / 1_000);
    m.scheduler.advance(1_000);
    if (m.scheduler.now() % 10_000 === 0) await m.metrics.flush();
  }
}

/** A server's records of the points collection (superuser, tombstones included), by id. */
export async function pointsOn(
  s: ProcessPocketBase,
  filter = "",
): Promise<Map<string, Record<string, unknown>>> {
  const pb = s.client();
  const all = await pb
    .collection(POINTS_COLLECTION)
    .getFullList({ batch: 1000, ...(filter === "" ? {} : { filter }) });
  return new Map(all.map((r) => [r.id, r as Record<string, unknown>]));
}

/** The content that must be equal on two servers (server-local autodates left out). */
export const contentOf = (r: Record<string, unknown>) => {
  const { created: _c, updated: _u, collectionId: _i, collectionName: _n, ...rest } = r;
  return rest;
};
