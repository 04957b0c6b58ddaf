/**
 * The storage port of the metrics: where the windows of every node are kept (PocketBase through
 * `@nxs-sync/metrics/pocketbase`, or memory). Semantic and small: the rollup, retention and query
 * logic lives in this package's core, not in the adapters.
 */
import type { Alert } from "./checks/alert.js";
import type { MetricsPoint } from "./point.js";

/** A stored record that does not decode: skipped (quarantined) by every reader. */
export interface RefusedPoint {
  readonly id: string;
  readonly reason: string;
}

/** What {@link MetricsClient.list} returns. */
export interface PointList {
  /** The points, by start then id. */
  readonly points: readonly MetricsPoint[];
  /** Records in the range that do not decode. */
  readonly refused: readonly RefusedPoint[];
}

/** A range of windows of one tier. */
export interface PointRange {
  readonly tier: string;
  /** Window starts from (inclusive), ms. */
  readonly from: number;
  /** Window starts to (exclusive), ms. */
  readonly to: number;
  /** Only these nodes (default all). */
  readonly nodes?: readonly string[];
}

/** The port: 7 methods. */
export interface MetricsClient {
  /**
   * Stores a window that was not stored (a flush).
   * @returns `created`, or `exists` when a record of that id is there already.
   * @throws NxsError `transport/unavailable` when no server is reachable.
   */
  write(point: MetricsPoint): Promise<"created" | "exists">;
  /**
   * Stores a window, replacing the record of its id if any (a rollup; the caller decides by `rev`).
   * @throws NxsError `transport/unavailable` when no server is reachable.
   */
  put(point: MetricsPoint): Promise<void>;
  /** The live (not expired) windows of a range. */
  list(range: PointRange): Promise<PointList>;
  /**
   * Expires (tombstones, then the replicator purges everywhere) up to `limit` windows of `tier`
   * starting before `startBefore`.
   * @returns How many were expired.
   */
  expire(tier: string, startBefore: number, limit: number): Promise<number>;
  /**
   * Takes a named lease until `until` (ms): true for the first taker of that name, false for the others.
   */
  claim(name: string, holder: string, until: number): Promise<boolean>;
  /**
   * Stores an alert (created, or its record replaced: a resolution).
   * @throws NxsError `transport/unavailable` when no server is reachable.
   */
  putAlert(alert: Alert): Promise<void>;
  /** The alerts firing, and those that started at or after `since` (ms). Malformed records are left out. */
  listAlerts(since: number): Promise<readonly Alert[]>;
}
