/**
 * An in-memory {@link MetricsClient} (tests, single-process use). Records may be added raw with
 * `insertRaw` to test how readers treat hostile ones.
 */
import { type Alert, alertRev } from "./checks/alert.js";
import type { MetricsClient, PointList, PointRange, RefusedPoint } from "./client.js";
import { decodePoint, type MetricsPoint } from "./point.js";

/** A memory client, plus what a test needs to look inside. */
export interface MemoryMetricsClient extends MetricsClient {
  /** Every live record (raw form), by id. */
  records(): ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** Ids expired so far. */
  expired(): ReadonlySet<string>;
  /** Writes a record as is (no check): a hostile writer. */
  insertRaw(record: Readonly<Record<string, unknown>>): void;
  /** How many calls each method had. */
  calls(): Readonly<Record<string, number>>;
}

/**
 * Creates a memory client.
 * @returns The client.
 */
export function createMemoryMetricsClient(): MemoryMetricsClient {
  const records = new Map<string, Readonly<Record<string, unknown>>>();
  const gone = new Set<string>();
  const leases = new Map<string, string>();
  const alerts = new Map<string, Alert>();
  const calls: Record<string, number> = {};
  const count = (m: string) => {
    calls[m] = (calls[m] ?? 0) + 1;
  };
  const asRecord = (p: MetricsPoint): Record<string, unknown> => JSON.parse(JSON.stringify(p));
  return {
    async write(point) {
      count("write");
      if (records.has(point.id) || gone.has(point.id)) return "exists";
      records.set(point.id, asRecord(point));
      return "created";
    },
    async put(point) {
      count("put");
      if (gone.has(point.id)) return;
      records.set(point.id, asRecord(point));
    },
    async list(range: PointRange): Promise<PointList> {
      count("list");
      const points: MetricsPoint[] = [];
      const refused: RefusedPoint[] = [];
      for (const [id, raw] of records) {
        if (raw.tier !== range.tier) continue;
        const start = raw.start;
        if (typeof start !== "number" || start < range.from || start >= range.to) continue;
        if (range.nodes !== undefined && !range.nodes.includes(String(raw.node))) continue;
        const d = decodePoint(raw);
        if (d.ok) points.push(d.value);
        else refused.push({ id, reason: d.reason });
      }
      points.sort((a, b) => a.start - b.start || a.id.localeCompare(b.id));
      return { points, refused };
    },
    async expire(tier, startBefore, limit) {
      count("expire");
      let n = 0;
      for (const [id, raw] of records) {
        if (n >= limit) break;
        if (raw.tier === tier && typeof raw.start === "number" && raw.start < startBefore) {
          records.delete(id);
          gone.add(id);
          n++;
        }
      }
      return n;
    },
    async claim(name, holder) {
      count("claim");
      if (leases.has(name)) return false;
      leases.set(name, holder);
      return true;
    },
    async putAlert(alert) {
      count("putAlert");
      const prev = alerts.get(alert.id);
      // Only a better version replaces it (the collection's rule and merge do the same).
      if (prev !== undefined && alertRev(alert) <= alertRev(prev)) return;
      alerts.set(alert.id, alert);
    },
    async listAlerts(since) {
      count("listAlerts");
      return [...alerts.values()].filter((a) => a.state === "firing" || a.startedAt >= since);
    },
    records: () => records,
    expired: () => gone,
    insertRaw(record) {
      records.set(String(record.id), record);
    },
    calls: () => ({ ...calls }),
  };
}
