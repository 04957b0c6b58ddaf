import { createHash } from "node:crypto";
import {
  Collections,
  checkHooksVersion,
  closeSdkClient,
  readSecretsDigest,
  TOMBSTONES_COLLECTION,
  toTransportError,
} from "@nxs-sync/pocketbase";
import type PocketBase from "pocketbase";
import { connectSuperuser } from "./connect.js";
import type { Credentials } from "./credentials.js";
import { type FleetHealth, loadMetricsLib, readNodeHealth } from "./node-health.js";

/** Per origin, the highest seq held (a version vector as the servers store it). */
export type Vector = Record<string, number>;

/** One server as `status` saw it. */
export interface ServerState {
  readonly url: string;
  readonly reachable: boolean;
  /** Why it could not be read (unreachable, login refused): the error's code and message. */
  readonly error?: { readonly code: string; readonly message: string };
  /** The hooks bundle's and schema's versions (`GET /nxs/version`), or why it is not usable. */
  readonly hooks?: number;
  readonly schema?: number;
  readonly hooksProblem?: string;
  /** Jobs per state (when `nxs_jobs` exists). */
  readonly queue?: Record<string, number>;
  /** Per config environment: keys and a digest of their heads (when `nxs_config_versions` exists). */
  readonly config?: Record<string, { readonly keys: number; readonly digest: string }>;
  /**
   * Per collection replicated through the records piece: its records, a digest of their ids and
   * `updated` and of its tombstones, and for an auth collection a digest of its token secrets
   * (equal on every server unless one drifted, e.g. an `authRule` edit regenerated a secret:
   * `nxs-sync setup` copies them again); `problem` when the piece could not read it.
   */
  readonly records?: Record<
    string,
    {
      readonly count?: number;
      readonly digest?: string;
      readonly secrets?: string;
      readonly problem?: string;
    }
  >;
}

/** One doc on one server. */
export interface DocOnServer {
  readonly vector: Vector;
  /** Change records held. */
  readonly records: number;
  /** Digest of the doc's heads (origin, highest seq, record count): equal on servers that agree. */
  readonly digest: string;
  /** Changes this server lacks against the highest seq any server holds, summed over origins. */
  readonly behind: number;
  /** Newest snapshot: when it was made, and how many changes it covers (the compaction frontier). */
  readonly snapshotCreated?: string;
  readonly snapshotCovers?: number;
}

/** One doc across the fleet. */
export interface DocState {
  readonly doc: string;
  readonly servers: Readonly<Record<string, DocOnServer>>;
  /** Whether the servers' digests differ. */
  readonly diverged: boolean;
}

/** A replica's last ack on one server. */
export interface ReplicaState {
  readonly doc: string;
  readonly replica: string;
  readonly server: string;
  /** When the server stored it. */
  readonly acked: string;
  /** Changes it has not acked, against the highest seq any server holds. */
  readonly lag: number;
}

/** An account (gateway or replicator) and the servers that have it. */
export interface MemberState {
  readonly id: string;
  readonly name: string;
  readonly role: "gateway" | "replicator";
  /** The URLs of the servers holding this account (with this id). */
  readonly on: readonly string[];
}

/** A replicator's heartbeat row on one server (`nxs_replicator_status`, schema 4). */
interface BeatRow {
  readonly id: string;
  readonly rounds: number;
  readonly intervalMs: number;
  readonly lastError: string;
  readonly servers: unknown;
  readonly updated: string;
}

/** A replicator as its heartbeat rows show it (the newest row across the servers). */
export interface ReplicatorState {
  /** Its account's id (the row's id). */
  readonly id: string;
  /** Its account's name, when a server lists the account. */
  readonly name?: string;
  /** When it last wrote its row (the server's time, after an anti-entropy round); absent: never. */
  readonly lastRound?: string;
  /** Ms since then, by this reading's clock. */
  readonly ageMs?: number;
  readonly rounds?: number;
  readonly intervalMs?: number;
  /** What its last round could not do (servers unreachable or refusing, records failing); "" when nothing. */
  readonly lastError?: string;
  /** The servers it replicates between and its view of each (ok, unreachable, refused). */
  readonly sees?: readonly { readonly url: string; readonly state: string }[];
  /** The servers (of this reading) holding its row. */
  readonly on: readonly string[];
  /** Whether its last round is older than the threshold: the process is gone, stuck or cut off. */
  readonly stale: boolean;
}

/** The fleet, read once. */
export interface FleetStatus {
  readonly at: string;
  readonly servers: readonly ServerState[];
  /** Every gateway and replicator account, and where it exists (`node add/remove` show here). */
  readonly members: readonly MemberState[];
  readonly docs: readonly DocState[];
  readonly replicas: readonly ReplicaState[];
  /**
   * Every replicator account and its last round (its `nxs_replicator_status` rows): an account
   * with no row has never run a round against these servers (or is a compactor's), and is not
   * counted stale.
   */
  readonly replicators: readonly ReplicatorState[];
  /** Past this many ms since its last round, a replicator is stale. */
  readonly staleAfterMs: number;
  /**
   * Whether every server answered and runs the hooks, and every doc, account, config head and
   * count of jobs per state agrees everywhere.
   */
  readonly converged: boolean;
  /**
   * Each node's health from the metrics collections of the first server that answered (each holds
   * every node's): last flush, CPU, memory, disk, what is over the 75% cap, alerts firing. Absent
   * when `@nxs-sync/metrics` is not installed or no node has flushed metrics there.
   */
  readonly health?: FleetHealth;
}

const JOB_STATES = ["waiting", "active", "completed", "failed", "cancelled"] as const;

const sha = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, 12);

async function collectionExists(pb: PocketBase, name: string): Promise<boolean> {
  try {
    await pb.collections.getOne(name, { requestKey: null, fields: "id" });
    return true;
  } catch (e) {
    if ((e as { status?: number }).status === 404) return false;
    throw e;
  }
}

interface ServerRead {
  readonly state: ServerState;
  readonly heads: { doc: string; origin: string; head: number; n: number }[];
  readonly snapshots: { doc: string; version: unknown; created: string }[];
  readonly acks: { doc: string; replica: string; version: unknown; updated: string }[];
  readonly members: { id: string; name: string; role: MemberState["role"] }[];
  readonly beats: BeatRow[];
}

/**
 * Superuser sessions kept between readings (`status --watch` logs in once per server, not at every
 * refresh: PocketBase limits logins per IP).
 */
export interface Sessions {
  get(url: string, credentials: Credentials, timeoutMs: number): Promise<PocketBase>;
  /** Forgets a server's session (after an error: the next reading logs in again). */
  drop(url: string): void;
  close(): void;
}

/** @returns An empty session cache. */
export function createSessions(): Sessions {
  const clients = new Map<string, PocketBase>();
  return {
    async get(url, credentials, timeoutMs) {
      const have = clients.get(url);
      if (have !== undefined) return have;
      const pb = await connectSuperuser(url, credentials, timeoutMs);
      clients.set(url, pb);
      return pb;
    },
    drop(url) {
      const pb = clients.get(url);
      if (pb !== undefined) closeSdkClient(pb);
      clients.delete(url);
    },
    close() {
      for (const url of [...clients.keys()]) this.drop(url);
    },
  };
}

/** Reads one server (read-only): version, heads, snapshots, acks, queue and config. */
/** Node health from the first readable server holding metrics (undefined without any). */
async function readHealth(
  reads: readonly ServerRead[],
  credentialsOf: (url: string) => Credentials,
  timeoutMs: number,
  sessions: Sessions,
  now: number,
): Promise<FleetHealth | undefined> {
  const libs = await loadMetricsLib();
  if (libs === undefined) return undefined;
  for (const r of reads) {
    if (r.state.error !== undefined) continue;
    try {
      const pb = await sessions.get(r.state.url, credentialsOf(r.state.url), timeoutMs);
      if (!(await collectionExists(pb, libs[1].POINTS_COLLECTION))) return undefined;
      const health = await readNodeHealth(pb, libs[0], libs[1], now);
      return health.nodes.length === 0 && health.alerts.length === 0 ? undefined : health;
    } catch {
      // the next server
    }
  }
  return undefined;
}

/** A server's digests of the collections replicated through the records piece. */
async function readRecords(pb: PocketBase, names: readonly string[]): Promise<ServerState["records"]> {
  const out: NonNullable<ServerState["records"]> = {};
  for (const name of names) {
    try {
      const d = await pb.send<{ count: number; digest: string; tombstoneDigest: string }>(
        `/nxs/records/${encodeURIComponent(name)}/digest`,
        { method: "GET", requestKey: null },
      );
      let secrets: string | undefined;
      try {
        secrets = await readSecretsDigest(pb, name);
      } catch {
        secrets = undefined; // not an auth collection
      }
      out[name] = {
        count: d.count,
        digest: sha(`${d.digest}|${d.tombstoneDigest}`),
        ...(secrets === undefined ? {} : { secrets }),
      };
    } catch (e) {
      out[name] = { problem: (e as Error).message };
    }
  }
  return out;
}

async function readServer(
  url: string,
  credentials: Credentials,
  timeoutMs: number,
  sessions: Sessions,
  recordNames: readonly string[] = [],
): Promise<ServerRead> {
  let pb: PocketBase;
  try {
    pb = await sessions.get(url, credentials, timeoutMs);
  } catch (e) {
    const err = e as { code?: string; message: string };
    return {
      state: {
        url,
        reachable: err.code !== "transport/unavailable",
        error: { code: err.code ?? "unexpected", message: err.message },
      },
      heads: [],
      snapshots: [],
      acks: [],
      members: [],
      beats: [],
    };
  }
  try {
    let hooks: Partial<ServerState> = {};
    try {
      const body = await pb.send("/nxs/version", { method: "GET", requestKey: null });
      const v = checkHooksVersion(url, 200, body);
      hooks = { hooks: v.hooks, schema: v.schema };
    } catch (e) {
      const status = (e as { status?: number }).status;
      const got = (e as { response?: unknown }).response as { hooks?: number; schema?: number } | undefined;
      try {
        if (status === 404) checkHooksVersion(url, 404, undefined);
        hooks = { hooks: got?.hooks, schema: got?.schema, hooksProblem: (e as Error).message };
      } catch (problem) {
        hooks = { hooksProblem: (problem as Error).message };
      }
    }
    const hasSchema = await collectionExists(pb, Collections.Changes);
    const list = <T>(collection: string, fields: string) =>
      pb.collection(collection).getFullList({ fields, batch: 1000, requestKey: null }) as Promise<T[]>;
    const heads = hasSchema
      ? await list<ServerRead["heads"][number]>(Collections.Heads, "doc,origin,head,n")
      : [];
    const snapshots = hasSchema
      ? await list<ServerRead["snapshots"][number]>(Collections.SnapshotVersions, "doc,version,created")
      : [];
    const acks = hasSchema
      ? await list<ServerRead["acks"][number]>(Collections.Acks, "doc,replica,version,updated")
      : [];
    const members: ServerRead["members"] = [];
    if (hasSchema) {
      for (const [collection, role] of [
        [Collections.Nodes, "gateway"],
        [Collections.Replicators, "replicator"],
      ] as const) {
        for (const m of await list<{ id: string; name: string }>(collection, "id,name")) {
          members.push({ id: m.id, name: m.name, role });
        }
      }
    }
    const beats = (await collectionExists(pb, Collections.ReplicatorStatus))
      ? await list<BeatRow>(Collections.ReplicatorStatus, "id,rounds,intervalMs,lastError,servers,updated")
      : [];
    let queue: Record<string, number> | undefined;
    if (await collectionExists(pb, "nxs_jobs")) {
      queue = {};
      for (const s of JOB_STATES) {
        const page = await pb.collection("nxs_jobs").getList(1, 1, {
          filter: pb.filter("state = {:s}", { s }),
          fields: "id",
          requestKey: null,
        });
        queue[s] = page.totalItems;
      }
    }
    let config: ServerState["config"];
    if (await collectionExists(pb, "nxs_config_versions")) {
      const rows = await list<{ env: string; key: string; version: number; compacted?: boolean }>(
        "nxs_config_versions",
        "env,key,version,compacted",
      );
      const heads = new Map<string, Map<string, number>>();
      for (const r of rows) {
        if (r.compacted === true) continue;
        const env = heads.get(r.env) ?? new Map<string, number>();
        heads.set(r.env, env);
        env.set(r.key, Math.max(env.get(r.key) ?? 0, r.version));
      }
      // Sorted by environment: servers list records in their own order, and the maps are compared.
      config = Object.fromEntries(
        [...heads]
          .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
          .map(([env, keys]) => [
            env,
            {
              keys: keys.size,
              digest: sha(
                [...keys]
                  .sort(([a], [b]) => (a < b ? -1 : 1))
                  .map(([k, v]) => `${k}@${v}`)
                  .join("\n"),
              ),
            },
          ]),
      );
    }
    // Records only where they are set up (setup made nxs_tombstones with the records piece).
    const records =
      recordNames.length > 0 && (await collectionExists(pb, TOMBSTONES_COLLECTION))
        ? await readRecords(pb, recordNames)
        : undefined;
    return {
      state: {
        url,
        reachable: true,
        ...hooks,
        ...(queue ? { queue } : {}),
        ...(config ? { config } : {}),
        ...(records ? { records } : {}),
      },
      heads,
      snapshots,
      acks,
      members,
      beats,
    };
  } catch (e) {
    const err = toTransportError(e, `read ${url}`);
    return {
      state: {
        url,
        reachable: err.code !== "transport/unavailable",
        error: { code: err.code, message: err.message },
      },
      heads: [],
      snapshots: [],
      acks: [],
      members: [],
      beats: [],
    };
  } finally {
    closeSdkClient(pb);
  }
}

const vectorOf = (v: unknown): Vector =>
  v !== null && typeof v === "object" && !Array.isArray(v)
    ? (Object.fromEntries(Object.entries(v).filter(([, n]) => typeof n === "number")) as Vector)
    : {};
const missing = (max: Vector, have: Vector): number =>
  Object.entries(max).reduce((n, [o, s]) => n + Math.max(0, s - (have[o] ?? 0)), 0);

/** Default of {@link ReadStatusOptions.staleAfterMs}: two minutes (four rounds at the default interval). */
export const DEFAULT_STALE_AFTER_MS = 120_000;

/** How {@link readFleetStatus} judges what it reads. */
export interface ReadStatusOptions {
  /** The reading's clock (ms since the epoch). Default `Date.now`; tests inject it. */
  readonly now?: () => number;
  /**
   * A replicator whose last round is older than this (ms) is stale; a replicator with a longer
   * interval gets twice its interval. Default {@link DEFAULT_STALE_AFTER_MS}.
   */
  readonly staleAfterMs?: number;
  /** Collections replicated through the records piece, compared across servers. Default none. */
  readonly records?: readonly string[];
  /** Read each node's health from the metrics collections (when installed). Default true. */
  readonly health?: boolean;
}

/** A PocketBase autodate (`2026-12-07 10:20:33.686Z`) in ms since the epoch. */
export const timeOf = (at: string): number => Date.parse(at.replace(" ", "T"));

/** Every replicator account, and its newest heartbeat row across the servers. */
function replicatorsOf(
  reads: readonly ServerRead[],
  members: readonly MemberState[],
  now: number,
  staleAfterMs: number,
): ReplicatorState[] {
  const newest = new Map<string, { row: BeatRow; on: string[] }>();
  for (const r of reads) {
    for (const row of r.beats) {
      const have = newest.get(row.id);
      if (have === undefined) newest.set(row.id, { row, on: [r.state.url] });
      else {
        have.on.push(r.state.url);
        if (timeOf(row.updated) > timeOf(have.row.updated)) have.row = row;
      }
    }
  }
  const ids = new Set([...members.filter((m) => m.role === "replicator").map((m) => m.id), ...newest.keys()]);
  return [...ids].sort().map((id) => {
    const name = members.find((m) => m.id === id)?.name;
    const beat = newest.get(id);
    if (beat === undefined) return { id, ...(name === undefined ? {} : { name }), on: [], stale: false };
    const { row } = beat;
    const ageMs = Math.max(0, now - timeOf(row.updated));
    const limit = Math.max(staleAfterMs, 2 * (row.intervalMs || 0));
    const sees = Array.isArray(row.servers)
      ? (row.servers as { url?: unknown; state?: unknown }[]).map((x) => ({
          url: String(x.url),
          state: String(x.state),
        }))
      : [];
    return {
      id,
      ...(name === undefined ? {} : { name }),
      lastRound: row.updated,
      ageMs,
      rounds: row.rounds,
      intervalMs: row.intervalMs,
      lastError: row.lastError,
      sees,
      on: beat.on,
      stale: !(ageMs <= limit),
    };
  });
}

/**
 * Reads the fleet once (read-only: lists and a version route, as a superuser).
 * @param urls - The servers.
 * @param credentialsOf - Each server's superuser credentials.
 * @param timeoutMs - Per-request timeout.
 * @param sessions - Logins to reuse (the caller closes them).
 * @param options - The clock and the replicators' stale threshold.
 * @returns Every server, doc, replica and replicator.
 */
export async function readFleetStatus(
  urls: readonly string[],
  credentialsOf: (url: string) => Credentials,
  timeoutMs: number,
  sessions: Sessions = createSessions(),
  options: ReadStatusOptions = {},
): Promise<FleetStatus> {
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const reads = await Promise.all(
    urls.map((u) => readServer(u, credentialsOf(u), timeoutMs, sessions, options.records ?? [])),
  );
  const docNames = new Set(reads.flatMap((r) => r.heads.map((h) => h.doc)));
  const max = new Map<string, Vector>();
  for (const r of reads) {
    for (const h of r.heads) {
      const v = max.get(h.doc) ?? {};
      v[h.origin] = Math.max(v[h.origin] ?? 0, h.head);
      max.set(h.doc, v);
    }
  }
  const docs: DocState[] = [...docNames].sort().map((doc) => {
    const servers: Record<string, DocOnServer> = {};
    for (const r of reads) {
      if (r.state.error !== undefined) continue;
      const heads = r.heads.filter((h) => h.doc === doc).sort((a, b) => (a.origin < b.origin ? -1 : 1));
      const vector: Vector = Object.fromEntries(heads.map((h) => [h.origin, h.head]));
      const snap = r.snapshots
        .filter((s) => s.doc === doc)
        .sort((a, b) => (a.created < b.created ? 1 : -1))[0];
      servers[r.state.url] = {
        vector,
        records: heads.reduce((n, h) => n + h.n, 0),
        digest: sha(heads.map((h) => `${h.origin}:${h.head}:${h.n}`).join("\n")),
        behind: missing(max.get(doc) ?? {}, vector),
        ...(snap === undefined
          ? {}
          : {
              snapshotCreated: snap.created,
              snapshotCovers: Object.values(vectorOf(snap.version)).reduce((n, s) => n + s, 0),
            }),
      };
    }
    const digests = new Set(Object.values(servers).map((s) => s.digest));
    return { doc, servers, diverged: digests.size > 1 || Object.values(servers).some((s) => s.behind > 0) };
  });
  const replicas: ReplicaState[] = reads.flatMap((r) =>
    r.acks.map((a) => ({
      doc: a.doc,
      replica: a.replica,
      server: r.state.url,
      acked: a.updated,
      lag: missing(max.get(a.doc) ?? {}, vectorOf(a.version)),
    })),
  );
  const servers = reads.map((r) => r.state);
  const byId = new Map<string, MemberState>();
  for (const r of reads) {
    for (const m of r.members) {
      const have = byId.get(m.id) ?? { ...m, on: [] };
      byId.set(m.id, { ...have, on: [...have.on, r.state.url] });
    }
  }
  const members = [...byId.values()].sort((x, y) =>
    x.role === y.role ? (x.name < y.name ? -1 : 1) : x.role === "replicator" ? -1 : 1,
  );
  const readable = reads.filter((r) => r.state.error === undefined).length;
  const configDiverged = servers.some(
    (s) => JSON.stringify(s.config ?? {}) !== JSON.stringify(servers[0]?.config ?? {}),
  );
  // Jobs per state equal everywhere: a restored server that still holds the backup's job states
  // (a job completed since is waiting there) is not converged until the replicator copied them.
  const queueDiverged = servers.some(
    (s) => JSON.stringify(s.queue ?? {}) !== JSON.stringify(servers[0]?.queue ?? {}),
  );
  // Records of the records piece: equal digests (and token secrets) everywhere.
  const recordsDiverged = servers.some(
    (s) => JSON.stringify(s.records ?? {}) !== JSON.stringify(servers[0]?.records ?? {}),
  );
  const now = (options.now ?? Date.now)();
  const health =
    options.health === false ? undefined : await readHealth(reads, credentialsOf, timeoutMs, sessions, now);
  return {
    ...(health === undefined ? {} : { health }),
    at: new Date(now).toISOString(),
    servers,
    members,
    docs,
    replicas,
    replicators: replicatorsOf(reads, members, now, staleAfterMs),
    staleAfterMs,
    converged:
      servers.every((s) => s.error === undefined && s.hooksProblem === undefined) &&
      docs.every((d) => !d.diverged) &&
      members.every((m) => m.on.length === readable) &&
      !configDiverged &&
      !queueDiverged &&
      !recordsDiverged,
  };
}
