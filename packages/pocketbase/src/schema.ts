import { ErrorCode, NxsError } from "@nxs-sync/core";
import type PocketBase from "pocketbase";
import { ClientResponseError } from "pocketbase";
import {
  NODES_COLLECTION,
  OPERATORS_COLLECTION,
  REPLICATORS_COLLECTION,
  toTransportError,
} from "./client.js";

/** Collection names used by nxs-sync. */
export const Collections = {
  Nodes: NODES_COLLECTION,
  /** Replicator accounts (auth): the replicator and the compactor. */
  Replicators: REPLICATORS_COLLECTION,
  Changes: "nxs_changes",
  Snapshots: "nxs_snapshots",
  Acks: "nxs_acks",
  /** Per (doc, replica id), the live process holding it (written by the hooks bundle only). */
  Leases: "nxs_leases",
  /** A view: per (doc, origin), the highest seq held and the number of records (the anti-entropy digest). */
  Heads: "nxs_heads",
  /**
   * A view of `nxs_changes` for pulls: every envelope with the byte size of its `changes`
   * (`bytes`), and `changes` itself only when it is at most {@link INLINE_CHANGES_BYTES} (else
   * null: the reader fetches it by id, within its byte budget, or never when too large).
   */
  ChangeSizes: "nxs_change_sizes",
  /**
   * A view of `nxs_snapshots` without `state` (id, doc, version, node, created): readers list the
   * newest snapshots' claims and fetch only the state of the one they adopt.
   */
  SnapshotVersions: "nxs_snapshot_versions",
  /**
   * Schema 4. One row per replicator (its record id is the replicator account's): its last
   * anti-entropy round (`updated`, the server's time), rounds run, last error and the servers it
   * sees. Local to each server (not replicated): `nxs-sync status` reads it.
   */
  ReplicatorStatus: "nxs_replicator_status",
} as const;
/** The union of nxs-sync collection names. */
export type CollectionName = (typeof Collections)[keyof typeof Collections];

/**
 * Roles of an identity provisioned by {@link ensureNode}: a `gateway` is a record of `nxs_nodes`
 * and writes only its own records; a `replicator` is a record of `nxs_replicators` and may write
 * (and compact) records authored by any node; an `operator` is a record of `nxs_operators`, a
 * person who reads what a package grants it (the metrics and their dashboard) and writes nothing.
 */
export const NodeRole = {
  Gateway: "gateway",
  Replicator: "replicator",
  Operator: "operator",
} as const;
/** The union of node roles. */
export type NodeRole = (typeof NodeRole)[keyof typeof NodeRole];

/** Largest `changes` JSON of one change record, a pack of changes (bytes). */
export const MAX_CHANGES_BYTES = 8 * 1024 * 1024;
/**
 * Largest `changes` JSON the {@link Collections.ChangeSizes} view carries inline (bytes): a page of
 * 1000 envelopes is then at most ~4 MiB of bodies, and small packs (most writes) need no second
 * request.
 */
export const INLINE_CHANGES_BYTES = 4096;
/** Largest `version` JSON of one snapshot or ack record (bytes). */
export const MAX_VERSION_BYTES = 1024 * 1024;
/** Largest `state` JSON of one snapshot record (bytes). */
export const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;

/**
 * Lifetime of a node or replicator token (`authToken.duration` of `nxs_nodes` and
 * `nxs_replicators`), in seconds: 6 hours (PocketBase's default is 7 days, 604800 s). A leaked token
 * is good for at most this long; clients renew theirs `refreshBeforeS` (default 600 s) before it
 * expires, so a shorter lifetime costs one login or refresh per client every few hours.
 */
export const NODE_TOKEN_DURATION_S = 6 * 60 * 60;

/** A field definition as sent to the collections API. */
export type FieldDef = Readonly<Record<string, unknown>> & { readonly name: string; readonly type: string };

/** A collection definition as sent to the collections API. */
export interface CollectionDef {
  readonly id: string;
  readonly name: string;
  readonly type: "base" | "auth" | "view";
  readonly fields: readonly FieldDef[];
  readonly indexes: readonly string[];
  readonly listRule: string | null;
  readonly viewRule: string | null;
  readonly createRule: string | null;
  readonly updateRule: string | null;
  readonly deleteRule: string | null;
  readonly [key: string]: unknown;
}

/** The query of the `nxs_heads` view. */
export const HEADS_QUERY =
  "SELECT (doc || ':' || origin) AS id, doc, origin, MAX(last) AS head, COUNT(*) AS n FROM nxs_changes GROUP BY doc, origin";

/**
 * The query of the `nxs_change_sizes` view. `octet_length` (SQLite 3.43+) gives the stored size in
 * bytes (as stored: PocketBase keeps JSON with `<`, `>` and `&` escaped, as it answers it); a page
 * that lists a 7 MB pack answers in a few ms and a few hundred bytes for it.
 */
export const CHANGE_SIZES_QUERY = `SELECT id, doc, origin, seq, last, hlc, node, CAST(octet_length(changes) AS INTEGER) AS bytes, iif(octet_length(changes) <= ${INLINE_CHANGES_BYTES}, changes, NULL) AS changes FROM nxs_changes`;

/** The query of the `nxs_snapshot_versions` view. */
export const SNAPSHOT_VERSIONS_QUERY = "SELECT id, doc, version, node, created FROM nxs_snapshots";

/** One PocketBase rate-limit rule (settings `rateLimits.rules`): at most `maxRequests` per `duration` s per client IP. */
export interface RateLimitRule {
  /** `<collection>:<action>`, `*:<action>`, a path prefix ending in `/`, or `[METHOD ]/path`. */
  readonly label: string;
  /** `""` everyone, `"@guest"` requests without a token, `"@auth"` requests with a record token. */
  readonly audience: "" | "@guest" | "@auth";
  /** Window in seconds (a fixed window: the count resets `duration` s after its first request). */
  readonly duration: number;
  readonly maxRequests: number;
}

/** The record actions the fleet performs on each nxs-sync collection (the API tags PocketBase limits by). */
const FLEET_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  [NODES_COLLECTION]: ["list", "view"],
  nxs_changes: ["list", "view", "create", "delete"],
  nxs_snapshots: ["list", "view", "create", "delete"],
  nxs_acks: ["list", "view", "create", "update", "delete"],
  nxs_leases: ["list", "view", "delete"],
  nxs_heads: ["list", "view"],
};

/**
 * The rate-limit rules {@link ensureSchema} adds (per client IP; superusers are never limited). All
 * gateways of a node, and often the replicator, share one IP, so the fleet's own traffic gets
 * collection-specific ceilings for authenticated requests, which win over any wildcard rule:
 * - logins: `nxs_nodes:auth` and `nxs_replicators:auth` 120 per 60 s each (a restart storm of up to
 *   ~100 gateways on one IP passes, with room for failover logins; a password guesser gets 2 tries
 *   per second at most, hopeless against the long random passwords nodes get);
 *   `*:auth` 2 per 3 s (PocketBase's default) for every other auth collection, `_superusers` included;
 * - token refreshes of nodes and replicators: 120 per 60 s;
 * - records of the nxs collections (push, pull, acks, compaction) by an authenticated account:
 *   20 000 per 10 s per collection and action, far above what one server serves (~2k creates/s);
 * - `/api/batch` by an authenticated account (pushes, replicator copies): 200 per second;
 * - `/api/realtime` (the SSE connect carries no token) and `/api/health`: 3000 per 10 s;
 * - guests: PocketBase's defaults, `*:create` 20 per 5 s (sign-up floods), `/api/batch` 3 per s,
 *   `/api/` 300 per 10 s.
 * - the hooks bundle's routes (`/nxs/lease`, `/nxs/version`): 3000 per 10 s by an authenticated
 *   account (a gateway renews each lease about three times per TTL), 300 per 10 s by guests.
 */
export function fleetRateLimitRules(): readonly RateLimitRule[] {
  const auth = "@auth" as const;
  return [
    { label: `${NODES_COLLECTION}:auth`, audience: "", duration: 60, maxRequests: 120 },
    { label: `${REPLICATORS_COLLECTION}:auth`, audience: "", duration: 60, maxRequests: 120 },
    { label: "*:auth", audience: "", duration: 3, maxRequests: 2 },
    { label: `${NODES_COLLECTION}:authRefresh`, audience: auth, duration: 60, maxRequests: 120 },
    { label: `${REPLICATORS_COLLECTION}:authRefresh`, audience: auth, duration: 60, maxRequests: 120 },
    ...Object.entries(FLEET_ACTIONS).flatMap(([collection, actions]) =>
      actions.map((a) => ({
        label: `${collection}:${a}`,
        audience: auth,
        duration: 10,
        maxRequests: 20_000,
      })),
    ),
    { label: "/api/batch", audience: auth, duration: 1, maxRequests: 200 },
    { label: "/api/realtime", audience: "", duration: 10, maxRequests: 3000 },
    { label: "/api/health", audience: "", duration: 10, maxRequests: 3000 },
    { label: "/nxs/", audience: auth, duration: 10, maxRequests: 3000 },
    { label: "/nxs/", audience: "@guest", duration: 10, maxRequests: 300 },
    { label: "*:create", audience: "@guest", duration: 5, maxRequests: 20 },
    { label: "/api/batch", audience: "@guest", duration: 1, maxRequests: 3 },
    { label: "/api/", audience: "@guest", duration: 10, maxRequests: 300 },
  ];
}

/** PocketBase's stock rules (present but off on a new server; they would throttle the fleet). */
const STOCK_RULES: readonly RateLimitRule[] = [
  { label: "*:auth", audience: "", duration: 3, maxRequests: 2 },
  { label: "*:create", audience: "", duration: 5, maxRequests: 20 },
  { label: "/api/batch", audience: "", duration: 1, maxRequests: 3 },
  { label: "/api/", audience: "", duration: 10, maxRequests: 300 },
];

/** The settings `rateLimits` object. */
export interface RateLimitsSettings {
  readonly enabled?: boolean;
  readonly rules?: readonly RateLimitRule[];
  readonly excludedIPs?: readonly string[];
}

const sameKey = (a: RateLimitRule, b: RateLimitRule): boolean =>
  a.label === b.label && (a.audience ?? "") === (b.audience ?? "");

/**
 * Merges `wanted` into the server's rate limits, never weakening a rule in force: every existing
 * rule stays as it is (a rule of the same label and audience as a wanted one wins, and keeps its
 * place, so it also comes first among its label's rules), wanted rules with a new label and
 * audience are appended, `excludedIPs` is kept and the limits are turned on. When the limits were
 * off, PocketBase's stock rules (never in force, and too strict for the fleet) are dropped first.
 * @param current - The server's `rateLimits` settings.
 * @param wanted - Rules to add (default {@link fleetRateLimitRules}).
 * @returns The merged settings.
 */
export function mergeRateLimits(
  current: RateLimitsSettings | undefined,
  wanted: readonly RateLimitRule[] = fleetRateLimitRules(),
): Required<RateLimitsSettings> {
  const now = normalizeRateLimits(current);
  const isStock = (r: RateLimitRule): boolean =>
    STOCK_RULES.some((s) => sameKey(s, r) && s.duration === r.duration && s.maxRequests === r.maxRequests);
  const rules = now.rules.filter((r) => now.enabled || !isStock(r));
  for (const w of wanted) if (!rules.some((r) => sameKey(r, w))) rules.push(normalizeRule(w));
  return { enabled: true, rules, excludedIPs: now.excludedIPs };
}

/** `current` in the form {@link mergeRateLimits} returns (for a change check). */
export function normalizeRateLimits(current: RateLimitsSettings | undefined): Required<RateLimitsSettings> {
  return {
    enabled: current?.enabled === true,
    rules: (current?.rules ?? []).map(normalizeRule),
    excludedIPs: [...(current?.excludedIPs ?? [])],
  };
}

/** A rule with its fields in one order and the audience set. */
function normalizeRule(r: RateLimitRule): RateLimitRule {
  return { label: r.label, audience: r.audience ?? "", duration: r.duration, maxRequests: r.maxRequests };
}

/** A node identity to provision with {@link ensureNode}. */
export interface NodeSpec {
  /**
   * Record id: 15 chars of `[a-z0-9]`, required. Give the same id on every server: replicated
   * records relate to their author by id, and a gateway's replica ids (change origins) are this id
   * or `<id>.<instance>`. Generate it once per node (e.g. with `openssl rand -hex 8 | cut -c1-15`)
   * and keep it with the node's credentials.
   */
  readonly id: string;
  readonly email: string;
  readonly password: string;
  /** Human-readable name. */
  readonly name?: string;
  /**
   * `gateway` (default): a record of `nxs_nodes`. `replicator`: a record of `nxs_replicators`
   * (clients of the replicator and the compactor log in there by default). `operator`: a record
   * of `nxs_operators` (its collection comes with `@nxs-sync/metrics`).
   */
  readonly role?: NodeRole;
}

/** The form of a PocketBase record id, which {@link NodeSpec.id} must have. */
export const NODE_ID_PATTERN = /^[a-z0-9]{15}$/;

/**
 * The auth collection of an identity of `role`.
 * @param role - Gateway (default), replicator or operator.
 * @returns `nxs_nodes`, `nxs_replicators` or `nxs_operators`.
 */
export function collectionOfRole(role: NodeRole = NodeRole.Gateway): string {
  if (role === NodeRole.Operator) return OPERATORS_COLLECTION;
  return role === NodeRole.Replicator ? Collections.Replicators : Collections.Nodes;
}

/** The field errors of a PocketBase 400 answer, as `field: message` text. */
function fieldErrors(e: unknown): string {
  if (!(e instanceof ClientResponseError)) return "";
  const data = (e.response?.data ?? {}) as Record<string, { code?: string; message?: string }>;
  return Object.entries(data)
    .map(([k, v]) => `${k}: ${v?.message ?? v?.code ?? "invalid"}`)
    .join("; ");
}

/**
 * Creates a node (or replicator) record with the given id, or resets its password and name when
 * the email exists in the collection of its role with that id. Set-up only. The id is required
 * (never generated): it must be equal on every server, and a random one per server would split
 * the fleet (each server would know another author for the same account).
 * @param pb - An SDK client authenticated as a superuser.
 * @param spec - The identity.
 * @returns The record id (`spec.id`).
 * @throws NxsError `config/invalid` for a missing or malformed id, an invalid email or password
 *   (the server's field messages are in the message, its `ClientResponseError` in `cause`), or an
 *   account whose email exists under another id; TransportError `transport/unauthorized` without
 *   superuser rights, `server/incompatible` when the schema is missing, `transport/unavailable`
 *   when the server is unreachable.
 */
export async function ensureNode(pb: PocketBase, spec: NodeSpec): Promise<string> {
  const collection = collectionOfRole(spec.role);
  const label = `ensureNode ${JSON.stringify(spec.email)} in ${collection} at ${pb.baseURL}`;
  if (typeof spec.id !== "string" || !NODE_ID_PATTERN.test(spec.id)) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `${label}: id ${JSON.stringify(spec.id)} is not 15 chars of [a-z0-9]: give every node an explicit id, the same on every server (it is also the node's change origin)`,
    );
  }
  const body = {
    email: spec.email,
    password: spec.password,
    passwordConfirm: spec.password,
    name: spec.name ?? spec.email,
    verified: true,
  };
  const records = pb.collection(collection);
  try {
    const page = await records.getList(1, 1, {
      filter: pb.filter("email = {:email}", { email: spec.email }),
      skipTotal: true,
      requestKey: null,
    });
    const found = page.items[0];
    if (found !== undefined) {
      if (found.id !== spec.id) {
        throw new NxsError(
          ErrorCode.ConfigInvalid,
          `${label}: the account exists with id ${found.id}, not ${spec.id}: node ids must be equal on every server (delete the account on this server, or use its id everywhere)`,
        );
      }
      await records.update(found.id, body, { requestKey: null });
      return found.id;
    }
    const rec = await records.create({ ...body, id: spec.id }, { requestKey: null });
    return rec.id;
  } catch (e) {
    if (e instanceof NxsError) throw e;
    const status = (e as { status?: unknown }).status;
    if (status === 400) {
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        `${label}: refused by the server (${fieldErrors(e) || (e as Error).message}): fix the spec (a valid email, a password of at least 8 chars, an id no other account uses on this server)`,
        { cause: e },
      );
    }
    if (status === 404) {
      throw new NxsError(
        ErrorCode.ServerIncompatible,
        collection === OPERATORS_COLLECTION
          ? `${label}: no collection ${collection} (404): operator accounts come with @nxs-sync/metrics: register its collections (metricsCollections()) and run ensureSchema() or nxs-sync setup first`
          : `${label}: no collection ${collection} (404): run ensureSchema() first, or copy the migrations into pb_migrations`,
        { cause: e },
      );
    }
    throw toTransportError(e, label);
  }
}
