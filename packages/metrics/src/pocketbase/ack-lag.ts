/**
 * Replication lag per record, from `nxs_acks`: each replica's ack record (one per doc and replica,
 * `at` its last acknowledgement) is on every server once the replicator copied it, so the copies'
 * `at` on the servers say how far each server is behind the newest copy of that record.
 */
import type { Endpoint } from "@nxs-sync/pocketbase";
import type { Probe } from "../collector/collector.js";
import type { PocketBaseMetricsClient } from "./client.js";

/** The acks collection of `@nxs-sync/pocketbase`. */
const ACKS = "nxs_acks";

/** Options of {@link ackLagProbe}. */
export interface AckLagProbeOptions {
  /** How often the acks are read (one list request per server). Default 60 000 ms. */
  readonly everyMs?: number;
  /** Told when a server's list fails (that server is left out of the round). */
  readonly onError?: (error: unknown) => void;
}

/** The lag of one server, as {@link ackLagOf} computes it. */
export interface ServerAckLag {
  /** The largest lag of a record there (ms): the newest copy's `at` minus its own, or, for a record it lacks, `now` minus the newest `at`. */
  readonly lagMs: number;
  /** Records whose copy there is older than the newest, or missing. */
  readonly behind: number;
}

/**
 * The lag of each server from the ack records each holds.
 * @param copies - Per server URL, its records (`doc`, `replica`, `at`).
 * @param now - The time (ms).
 * @returns Per server, its largest lag and how many records are behind.
 */
export function ackLagOf(
  copies: ReadonlyMap<
    string,
    readonly { readonly doc: string; readonly replica: string; readonly at: number }[]
  >,
  now: number,
): Map<string, ServerAckLag> {
  const newest = new Map<string, number>();
  const held = new Map<string, Map<string, number>>();
  for (const [server, records] of copies) {
    const mine = new Map<string, number>();
    for (const r of records) {
      const key = `${r.doc}\u0000${r.replica}`;
      mine.set(key, r.at);
      newest.set(key, Math.max(newest.get(key) ?? 0, r.at));
    }
    held.set(server, mine);
  }
  const out = new Map<string, ServerAckLag>();
  for (const [server, mine] of held) {
    let lagMs = 0;
    let behind = 0;
    for (const [key, at] of newest) {
      const own = mine.get(key);
      if (own === at) continue;
      behind += 1;
      lagMs = Math.max(lagMs, own === undefined ? Math.max(0, now - at) : at - own);
    }
    out.set(server, { lagMs, behind });
  }
  return out;
}

/**
 * A probe of the replication lag per record: every `everyMs` it lists `nxs_acks` (doc, replica,
 * at) on each server of the client's pool and sets `nxs_replication_ack_lag_seconds{server}` (the
 * largest lag of a record on that server against the newest copy anywhere) and
 * `nxs_replication_acks_behind{server}` (how many records are behind there). Both are 0 on every
 * server of a converged fleet; a server cut off from the replicator grows while the replicas keep
 * acknowledging on the others. Run it on one node (the replicator's, for example): it reads every
 * ack record of every server.
 * @param client - A metrics client whose pool lists the servers (its account may read `nxs_acks`:
 *   a gateway or a replicator).
 * @param options - `everyMs`, `onError`.
 * @returns The probe (pass it in `createCollector({ probes })`).
 */
export function ackLagProbe(
  client: Pick<PocketBaseMetricsClient, "pool">,
  options: AckLagProbeOptions = {},
): Probe {
  const everyMs = options.everyMs ?? 60_000;
  let last: number | undefined;
  return async (m, now) => {
    if (last !== undefined && now - last < everyMs) return;
    last = now;
    const copies = new Map<string, { doc: string; replica: string; at: number }[]>();
    await Promise.all(
      client.pool.endpoints.map(async (ep: Endpoint) => {
        try {
          const records = await ep.client.call(
            "metrics ack lag",
            (pb) => pb.collection(ACKS).getFullList({ batch: 1000, fields: "doc,replica,at" }),
            { retry: false },
          );
          copies.set(
            ep.url,
            records.flatMap((r) =>
              typeof r.doc === "string" && typeof r.replica === "string" && typeof r.at === "number"
                ? [{ doc: r.doc, replica: r.replica, at: r.at }]
                : [],
            ),
          );
        } catch (e) {
          options.onError?.(e);
        }
      }),
    );
    if (copies.size === 0) return;
    const lag = m.gauge("nxs_replication_ack_lag_seconds", {
      help: "Largest lag of an ack record on the server against its newest copy",
      labels: ["server"],
    });
    const behind = m.gauge("nxs_replication_acks_behind", {
      help: "Ack records older than their newest copy, or missing, on the server",
      labels: ["server"],
    });
    for (const [server, l] of ackLagOf(copies, now)) {
      lag.set({ server }, l.lagMs / 1000);
      behind.set({ server }, l.behind);
    }
  };
}
