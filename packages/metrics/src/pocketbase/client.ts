import { isNxsError, type NxsError } from "@nxs-sync/core";
import { type Endpoint, openRoutePool, type RoutePool, type RoutePoolOptions } from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import { type Alert, alertRev, decodeAlert } from "../checks/alert.js";
import type { MetricsClient, PointList, PointRange, RefusedPoint } from "../client.js";
import { deterministicId } from "../hash.js";
import { decodePoint, type MetricsPoint } from "../point.js";
import { ALERTS_COLLECTION, LEASES_COLLECTION, POINTS_COLLECTION } from "./collections.js";

/** Options of {@link createPocketBaseMetricsClient}. */
export interface PocketBaseMetricsClientOptions extends RoutePoolOptions {
  /** Bound of one operation, failovers included (ms). Default 10 000. */
  readonly timeoutMs?: number;
  /** How long a lease record is kept after its slot (ms). Default 1 hour. */
  readonly leaseKeepMs?: number;
}

/** A metrics client over PocketBase, and its pool. */
export interface PocketBaseMetricsClient extends MetricsClient {
  /** The endpoint pool (health, failover). */
  readonly pool: RoutePool["pool"];
  /** Stops the pool when it is the client's own. */
  close(): void;
}

const PAGE = 500;
const EMPTY = { v: 1, b: {}, s: {} };

/**
 * The fields of a point's record in `nxs_metrics_points` (what is created or updated).
 * @param p - The point.
 * @returns The record's body.
 */
export function pointRecord(p: MetricsPoint): Record<string, unknown> & { id: string } {
  return {
    id: p.id,
    node: p.node,
    tier: p.tier,
    start: p.start,
    span: p.span,
    n: p.n,
    rev: p.rev,
    data: p.data,
  };
}

/**
 * Reads the live windows of a range from one server (any authenticated client that may list
 * `nxs_metrics_points`: a gateway, a replicator, a superuser), decoded; malformed records refused.
 * @param pb - An SDK client.
 * @param range - Tier, window starts, nodes.
 * @returns The points and the refused records.
 */
export async function readPoints(pb: PocketBase, range: PointRange): Promise<PointList> {
  const nodes = range.nodes ?? [];
  const nodeFilter = nodes.length === 0 ? "" : ` && (${nodes.map((_, i) => `node = {:n${i}}`).join(" || ")})`;
  const params: Record<string, unknown> = { tier: range.tier, from: range.from, to: range.to };
  nodes.forEach((n, i) => {
    params[`n${i}`] = n;
  });
  const raws = await pb.collection(POINTS_COLLECTION).getFullList({
    batch: PAGE,
    filter: pb.filter(
      `tier = {:tier} && start >= {:from} && start < {:to} && expired = false${nodeFilter}`,
      params,
    ),
    sort: "start,id",
    fields: "id,node,tier,start,span,n,rev,data",
  });
  const points: MetricsPoint[] = [];
  const refused: RefusedPoint[] = [];
  for (const raw of raws) {
    const d = decodePoint(raw);
    if (d.ok) points.push(d.value);
    else refused.push({ id: String(raw.id), reason: d.reason });
  }
  return { points, refused };
}

/**
 * Reads the alerts firing, and those that started at or after `since`, from one server.
 * @param pb - An SDK client.
 * @param since - Start time (ms).
 * @returns The alerts (malformed records left out).
 */
export async function readAlerts(pb: PocketBase, since: number): Promise<Alert[]> {
  const raws = await pb.collection(ALERTS_COLLECTION).getFullList({
    batch: PAGE,
    filter: pb.filter('state = "firing" || startedAt >= {:since}', { since }),
    sort: "startedAt,id",
  });
  return raws.flatMap((r) => decodeAlert(r) ?? []);
}

/** A PocketBase date of a time (`2026-01-01 00:00:00.000Z`). */
const pbDate = (ms: number): string => new Date(ms).toISOString().replace("T", " ");

const isConflict = (e: unknown): boolean => isNxsError(e) && (e as NxsError).code === "conflict";
const isNotFound = (e: unknown): boolean =>
  typeof e === "object" &&
  e !== null &&
  ((e as { status?: unknown }).status === 404 ||
    (e as { cause?: { status?: unknown } }).cause?.status === 404);

const isNotUnique = (e: unknown): boolean =>
  (e as { response?: { data?: { id?: { code?: unknown } } } }).response?.data?.id?.code ===
  "validation_not_unique";

/**
 * Creates the metrics client of a node over its servers (home first), through the failover pool:
 * flushes are created with their deterministic id (a repeat finds the record there), rollups are
 * created or updated, old windows are expired as tombstones (the replicator copies them and purges
 * them everywhere later), and a lease is the creation of a record whose id is derived from its name.
 * @param options - Endpoints (or pool), a gateway account, timings.
 * @returns The client (call `close()` when done).
 * @throws NxsError `config/invalid` when neither `endpoints` nor `pool` is given.
 * @example
 * ```ts
 * const client = createPocketBaseMetricsClient({
 *   endpoints: ["http://10.0.0.1:8090", "http://10.0.0.2:8090"],
 *   auth: { email: "gw-1@fleet.local", password: process.env.NXS_PASSWORD ?? "" },
 * });
 * const metrics = createMetrics({ client, node: "gw-1" });
 * metrics.start();
 * ```
 */
export function createPocketBaseMetricsClient(
  options: PocketBaseMetricsClientOptions,
): PocketBaseMetricsClient {
  const route = openRoutePool("metrics client", options);
  const { pool, scheduler } = route;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const leaseKeepMs = options.leaseKeepMs ?? 3_600_000;
  let lastLeasePrune = 0;

  const call = <T>(what: string, fn: (pb: PocketBase) => Promise<T>): Promise<T> =>
    pool.call(`metrics ${what}`, (ep: Endpoint) => ep.client.call(`metrics ${what}`, fn, { retry: false }), {
      timeoutMs,
    });

  const body = pointRecord;

  return {
    pool,
    async write(point) {
      try {
        await call("write", (pb) => pb.collection(POINTS_COLLECTION).create(body(point)));
        return "created";
      } catch (e) {
        if (isConflict(e)) return "exists";
        throw e;
      }
    },
    async put(point) {
      const { id, ...rest } = body(point);
      await call("put", async (pb) => {
        try {
          await pb.collection(POINTS_COLLECTION).update(id, rest);
        } catch (e) {
          if (!isNotFound(e)) throw e;
          try {
            await pb.collection(POINTS_COLLECTION).create({ id, ...rest });
          } catch (c) {
            // Created meanwhile (the replicator copied the other server's rollup of the window):
            // ours replaces it here, and the replicator keeps the greater rev on both servers.
            if (!isNotUnique(c)) throw c;
            await pb.collection(POINTS_COLLECTION).update(id, rest);
          }
        }
      });
    },
    list: (range) => call("list", (pb) => readPoints(pb, range)),
    async expire(tier, startBefore, limit) {
      const ids = await call("expire list", (pb) =>
        pb.collection(POINTS_COLLECTION).getList(1, Math.min(limit, PAGE), {
          filter: pb.filter("tier = {:tier} && start < {:before} && expired = false", {
            tier,
            before: startBefore,
          }),
          sort: "start",
          fields: "id",
          skipTotal: true,
        }),
      );
      const at = pbDate(scheduler.now());
      for (const r of ids.items) {
        await call("expire", (pb) =>
          pb.collection(POINTS_COLLECTION).update(r.id, { expired: true, expiredAt: at, data: EMPTY }),
        );
      }
      return ids.items.length;
    },
    async claim(name, holder, until) {
      const id = deterministicId(`lease|${name}`);
      try {
        await call("claim", (pb) => pb.collection(LEASES_COLLECTION).create({ id, holder, until }));
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
      // Pruned by the caller's clock (the lease's own end), not this client's: a lease of the
      // slot under way is never older than leaseKeepMs, whichever clock the caller runs on.
      const now = until;
      if (Math.abs(now - lastLeasePrune) >= leaseKeepMs / 4) {
        lastLeasePrune = now;
        const old = await call("lease prune", (pb) =>
          pb.collection(LEASES_COLLECTION).getList(1, 100, {
            filter: pb.filter("until < {:before}", { before: now - leaseKeepMs }),
            fields: "id",
            skipTotal: true,
          }),
        );
        for (const r of old.items) {
          await call("lease prune", (pb) => pb.collection(LEASES_COLLECTION).delete(r.id)).catch(
            () => undefined,
          );
        }
      }
      return true;
    },
    async putAlert(alert: Alert) {
      const { id, ...rest } = {
        ...alert,
        value: Number.isFinite(alert.value) ? alert.value : 0,
        rev: alertRev(alert),
      };
      await call("put alert", async (pb) => {
        try {
          await pb.collection(ALERTS_COLLECTION).create({ id, ...rest });
        } catch (e) {
          const conflict = (e as { status?: number; response?: { data?: { id?: unknown } } }).response?.data
            ?.id;
          if (conflict === undefined) throw e;
          // There already: only a better version changes it (the update rule refuses the others).
          if (alert.state === "resolved") {
            await pb
              .collection(ALERTS_COLLECTION)
              .update(id, rest)
              .catch((u: unknown) => {
                // 404: the rule found as good a version there already.
                if ((u as { status?: number }).status !== 404) throw u;
              });
          }
        }
      });
    },
    listAlerts: (since) => call("list alerts", (pb) => readAlerts(pb, since)),
    close() {
      if (route.ownPool) pool.stop();
    },
  };
}
