/**
 * Probes of nxs-sync's own figures, each reading what its subject already exposes (no extra
 * request): the replicator's servers and last round, a replica's outbox, config heads' age, and a
 * queue handler wrapper timing waits and runs; and the queue's depth (one count query per
 * `everyMs`).
 */
import type { Recorder } from "../recorder.js";
import type { Probe } from "./collector.js";

/** What {@link replicatorProbe} reads of a replicator (`createReplicator`'s result fits). */
export interface ReplicatorLike {
  status(): { readonly servers: readonly { readonly url: string; readonly state: string }[] };
  on(
    event: "sync",
    listener: (stats: { readonly copied: number; readonly quarantined: number }) => void,
  ): () => void;
}

/**
 * Replication figures: `nxs_replication_server_ok{server}` (1 when the replicator reaches and is
 * accepted by it), `nxs_replication_round_age_seconds` (since the last finished anti-entropy round:
 * the bound on how far behind a server can be while realtime is lost), and counters of records
 * copied and quarantined.
 * @param replicator - The replicator of this node.
 * @param now - The clock of the round times (ms). Default `Date.now`.
 * @returns The probe (it subscribes to the replicator's `sync` events at once).
 */
export function replicatorProbe(replicator: ReplicatorLike, now: () => number = Date.now): Probe {
  let lastRound: number | undefined;
  let copied = 0;
  let quarantined = 0;
  replicator.on("sync", (s) => {
    lastRound = now();
    copied += s.copied;
    quarantined += s.quarantined;
  });
  return (m) => {
    const ok = m.gauge("nxs_replication_server_ok", {
      help: "1 when the replicator reaches the server",
      labels: ["server"],
    });
    for (const s of replicator.status().servers) ok.set({ server: s.url }, s.state === "ok" ? 1 : 0);
    if (lastRound !== undefined) {
      m.gauge("nxs_replication_round_age_seconds", { help: "Seconds since the last anti-entropy round" }).set(
        Math.max(0, (now() - lastRound) / 1000),
      );
    }
    m.counter("nxs_replication_copied_total", { help: "Records copied between servers" }).inc(copied);
    m.counter("nxs_replication_quarantined_total", { help: "Records refused by validation" }).inc(
      quarantined,
    );
    copied = 0;
    quarantined = 0;
  };
}

/** What {@link replicaProbe} reads of a replica (`createReplica`'s result fits). */
export interface ReplicaLike {
  status(): { readonly pendingChanges: number; readonly connected: boolean; readonly heldChanges: number };
}

/**
 * A replica's figures: `nxs_replica_outbox_depth{doc}` (local changes not yet acknowledged: the
 * replica's lag behind the server), `nxs_replica_connected{doc}`, `nxs_replica_held_changes{doc}`.
 * @param name - The doc's name (a label value).
 * @param replica - The replica.
 * @returns The probe.
 */
export function replicaProbe(name: string, replica: ReplicaLike): Probe {
  return (m) => {
    const s = replica.status();
    m.gauge("nxs_replica_outbox_depth", { help: "Local changes not yet acknowledged", labels: ["doc"] }).set(
      { doc: name },
      s.pendingChanges,
    );
    m.gauge("nxs_replica_connected", { help: "1 while connected", labels: ["doc"] }).set(
      { doc: name },
      s.connected ? 1 : 0,
    );
    m.gauge("nxs_replica_held_changes", { help: "Remote changes held past a gap", labels: ["doc"] }).set(
      { doc: name },
      s.heldChanges,
    );
  };
}

/**
 * Config heads' age: `nxs_config_head_age_seconds{key}`, the time since each key's head version was
 * written (read with `store.version(key)?.createdAt`).
 * @param heads - Returns each key's head time (ms), undefined for a key without a version.
 * @returns The probe.
 */
export function configHeadAgeProbe(heads: () => Readonly<Record<string, number | undefined>>): Probe {
  return (m, now) => {
    const g = m.gauge("nxs_config_head_age_seconds", {
      help: "Seconds since the key's head version was written",
      labels: ["key"],
    });
    for (const [key, at] of Object.entries(heads()))
      if (at !== undefined) g.set({ key }, Math.max(0, (now - at) / 1000));
  };
}

/** What {@link timeJobs} reads of a job handler's context (`@nxs-sync/queue`'s `JobContext` fits). */
export interface JobContextLike {
  readonly job: { readonly queue: string; readonly runAt: number };
}

/**
 * Wraps a queue handler: `nxs_queue_wait_ms{queue}` (from the job's `runAt` to its start) and
 * `nxs_queue_run_ms{queue,outcome}` (the handler's time, `ok` or `error`).
 * @param metrics - The recorder.
 * @param handler - The handler.
 * @param now - The clock (ms). Default `Date.now`.
 * @returns The wrapped handler.
 */
export function timeJobs<C extends JobContextLike, R>(
  metrics: Recorder,
  handler: (context: C) => R | Promise<R>,
  now: () => number = Date.now,
): (context: C) => Promise<R> {
  const buckets = [5, 25, 100, 500, 2_500, 10_000, 60_000, 300_000];
  const wait = metrics.histogram("nxs_queue_wait_ms", {
    help: "Time from runAt to the start of a run",
    labels: ["queue"],
    buckets,
  });
  const run = metrics.histogram("nxs_queue_run_ms", {
    help: "Handler time",
    labels: ["queue", "outcome"],
    buckets,
  });
  return async (context) => {
    const started = now();
    wait.observe({ queue: context.job.queue }, Math.max(0, started - context.job.runAt));
    try {
      const r = await handler(context);
      run.observe({ queue: context.job.queue, outcome: "ok" }, now() - started);
      return r;
    } catch (e) {
      run.observe({ queue: context.job.queue, outcome: "error" }, now() - started);
      throw e;
    }
  };
}

/** What {@link queueDepthProbe} reads of a queue (`@nxs-sync/queue`'s `Queue` fits). */
export interface QueueLike {
  readonly name: string;
  /** Jobs per state (`waiting`, `active`, `completed`, `failed`, …, and `delayed`). */
  counts(): Promise<Readonly<Record<string, number>>>;
}

/**
 * A queue's depth: `nxs_queue_jobs{queue,state}`, the jobs of each state as the backend counts
 * them (`waiting` includes `delayed`, the waiting jobs whose `runAt` is ahead). Unlike the other
 * probes it makes a request (a count query): at most one per `everyMs`; a failed count leaves
 * the last values and is reported through `onError`.
 * @param queue - The queue.
 * @param options - `everyMs` (default 60 000), `states` (default waiting, delayed, active, failed),
 *   `onError`.
 * @returns The probe.
 */
export function queueDepthProbe(
  queue: QueueLike,
  options: {
    readonly everyMs?: number;
    readonly states?: readonly string[];
    readonly onError?: (error: unknown) => void;
  } = {},
): Probe {
  const everyMs = options.everyMs ?? 60_000;
  const states = options.states ?? ["waiting", "delayed", "active", "failed"];
  let last: number | undefined;
  return async (m, now) => {
    if (last !== undefined && now - last < everyMs) return;
    last = now;
    let counts: Readonly<Record<string, number>>;
    try {
      counts = await queue.counts();
    } catch (e) {
      options.onError?.(e);
      return;
    }
    const g = m.gauge("nxs_queue_jobs", { help: "Jobs of the queue per state", labels: ["queue", "state"] });
    for (const state of states) {
      const n = counts[state];
      if (typeof n === "number") g.set({ queue: queue.name, state }, n);
    }
  };
}
