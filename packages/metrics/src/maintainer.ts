/**
 * Rollups and retention, run by one node per server at a time (a lease per maintenance slot):
 * each tier's recent closed windows are rolled up from the tier before it, per node, and written
 * when they cover more flushes than the stored version (or differ at equal coverage, ordered by
 * digest); windows past a tier's retention are expired. The result of a window depends only on
 * its inputs, so two servers that rolled up on both sides of a cut converge to one record once the
 * replicator has brought them the same inputs.
 */
import { isNxsError, type Scheduler } from "@nxs-sync/core";
import type { MetricsClient, RefusedPoint } from "./client.js";
import { MetricsError, MetricsErrorCode } from "./errors.js";
import { type MetricsPoint, rollupPoints } from "./point.js";
import { RAW_TIER, type Tier, windowStart } from "./tiers.js";

/** Options of {@link createMaintainer}. */
export interface MaintainerOptions {
  readonly client: MetricsClient;
  /** Who takes the lease (this node). */
  readonly holder: string;
  readonly tiers: readonly Tier[];
  readonly flushIntervalMs: number;
  readonly rawRetentionMs: number;
  readonly scheduler: Scheduler;
  /** Length of a maintenance slot (one lease each). Default 60 s. */
  readonly intervalMs?: number;
  /** Closed windows of each tier recomputed at each pass (late flushes, replicated inputs). Default 3. */
  readonly lateWindows?: number;
  /** How long after a window's end its last flush may still arrive. Default two flush intervals. */
  readonly graceMs?: number;
  /** Expired per tier and pass, at most. Default 500. */
  readonly expireLimit?: number;
  /** A refused record (each reported once per process). */
  readonly onQuarantine?: (refused: RefusedPoint, error: MetricsError) => void;
}

/** What one pass did. */
export interface MaintenanceReport {
  /** False when another node held this slot's lease (nothing done). */
  readonly leased: boolean;
  /** Rollup records written, by tier. */
  readonly written: Readonly<Record<string, number>>;
  /** Windows expired, by tier (`raw` included). */
  readonly expired: Readonly<Record<string, number>>;
  /** Records refused on the way. */
  readonly refused: number;
}

/** The maintenance of the stored windows. */
export interface Maintainer {
  /**
   * One pass at the scheduler's time: the slot's lease, then rollups and retention.
   * @param options - `force`: skip the lease (a test, or a one-off run by an operator).
   * @returns What it did.
   * @throws NxsError `transport/unavailable` when the server cannot be reached.
   */
  runOnce(options?: { readonly force?: boolean }): Promise<MaintenanceReport>;
}

/**
 * Creates a maintainer.
 * @param options - Client, tiers, retention, scheduler.
 * @returns The maintainer (no loop of its own: `createMetrics` runs it every `intervalMs`).
 */
export function createMaintainer(options: MaintainerOptions): Maintainer {
  const { client, tiers, scheduler } = options;
  const intervalMs = options.intervalMs ?? 60_000;
  const late = options.lateWindows ?? 3;
  const grace = options.graceMs ?? 2 * options.flushIntervalMs;
  const expireLimit = options.expireLimit ?? 500;
  const reported = new Set<string>();

  const quarantine = (refused: readonly RefusedPoint[]) => {
    for (const r of refused) {
      if (reported.has(r.id)) continue;
      reported.add(r.id);
      options.onQuarantine?.(
        r,
        new MetricsError(MetricsErrorCode.InvalidRecord, `metrics record ${r.id} is refused: ${r.reason}`),
      );
    }
  };

  return {
    async runOnce(opts = {}) {
      const now = scheduler.now();
      if (opts.force !== true) {
        const slot = windowStart(now, intervalMs);
        let leased: boolean;
        try {
          leased = await client.claim(`maintain|${slot}`, options.holder, slot + intervalMs);
        } catch (e) {
          throw isNxsError(e) ? e : new MetricsError(MetricsErrorCode.FlushFailed, String(e), { cause: e });
        }
        if (!leased) return { leased: false, written: {}, expired: {}, refused: 0 };
      }
      const written: Record<string, number> = {};
      const expired: Record<string, number> = {};
      let refusedCount = 0;
      let source = RAW_TIER;
      for (const tier of tiers) {
        const to = windowStart(now - grace, tier.spanMs);
        const from = to - late * tier.spanMs;
        const [inputs, existing] = await Promise.all([
          client.list({ tier: source, from, to }),
          client.list({ tier: tier.name, from, to }),
        ]);
        quarantine(inputs.refused);
        quarantine(existing.refused);
        refusedCount += inputs.refused.length + existing.refused.length;
        const stored = new Map(existing.points.map((p) => [p.id, p]));
        const groups = new Map<string, MetricsPoint[]>();
        for (const p of inputs.points) {
          const key = `${p.node}\u0000${windowStart(p.start, tier.spanMs)}`;
          const g = groups.get(key);
          if (g === undefined) groups.set(key, [p]);
          else g.push(p);
        }
        let n = 0;
        for (const [key, group] of groups) {
          const [node, start] = key.split("\u0000") as [string, string];
          const r = rollupPoints(node, tier.name, Number(start), tier.spanMs, group);
          const have = stored.get(r.id);
          if (have !== undefined && have.rev >= r.rev) continue;
          await client.put(r);
          n++;
        }
        written[tier.name] = n;
        source = tier.name;
      }
      for (const [tier, retention, span] of [
        [RAW_TIER, options.rawRetentionMs, options.flushIntervalMs] as const,
        ...tiers.map((t) => [t.name, t.retentionMs, t.spanMs] as const),
      ]) {
        expired[tier] = await client.expire(tier, now - retention - span, expireLimit);
      }
      return { leased: true, written, expired, refused: refusedCount };
    },
  };
}
