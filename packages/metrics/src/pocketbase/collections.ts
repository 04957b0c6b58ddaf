import { fileURLToPath } from "node:url";
import { ValidationError } from "@nxs-sync/core";
import {
  AuthRules,
  type CollectionDef,
  type CollectionDefinition,
  DeletePolicies,
  type FieldDef,
  type HookPiece,
  hookPieceFromFile,
  MergeRules,
  OPERATORS_COLLECTION,
  type RecordCheck,
} from "@nxs-sync/pocketbase";
import { AlertState, decodeAlert } from "../checks/alert.js";
import { decodePoint } from "../point.js";

const ALERT_STATES = [AlertState.Firing, AlertState.Resolved] as const;

/** Every node's windows (flushes and rollups): replicated, merged by `rev`, retention as tombstones. */
export const POINTS_COLLECTION = "nxs_metrics_points";
/** The maintenance leases of one server (never replicated). */
export const LEASES_COLLECTION = "nxs_metrics_leases";
/** The alert changes one server mailed (markers: at most one mail per change and server; never replicated). */
export const MAILS_COLLECTION = "nxs_metrics_mails";
/** The metrics' hook piece: name, version and file (`pb_hooks/nxs-metrics.pb.js` of this package). */
export const METRICS_HOOKS = { name: "metrics", version: 1, file: "nxs-metrics.pb.js" } as const;
/** Alerts raised by the checks: replicated, `resolved` wins over `firing`. */
export const ALERTS_COLLECTION = "nxs_metrics_alerts";
/** The largest `data` of one record (JSON bytes). */
export const MAX_POINT_DATA = 2_000_000;
/** How long an expired window's tombstone is kept before the replicator purges it everywhere (1 hour). */
export const DEFAULT_EXPIRED_PURGE_MS = 3_600_000;

const READ = `${AuthRules.gateway} || ${AuthRules.replicator}`;
/** Who reads the windows and alerts: the fleet's accounts, and operators (the dashboard's login). */
const READ_OR_OPERATOR = `${READ} || ${AuthRules.operator}`;
/** How long an operator's login lasts (8 hours: a working day on the dashboard). */
export const OPERATOR_TOKEN_DURATION_S = 8 * 60 * 60;
const num = (name: string): FieldDef => ({ name, type: "number" });
const text = (name: string, max: number): FieldDef => ({ name, type: "text", max });
const created: FieldDef = { name: "created", type: "autodate", onCreate: true, onUpdate: false };
const updated: FieldDef = { name: "updated", type: "autodate", onCreate: true, onUpdate: true };

/** `nxs_metrics_points`: one record per node, tier and window (`id` derived from the three). */
export function pointsCollection(): CollectionDef {
  return {
    id: "pbc_nxs_metrics_points",
    name: POINTS_COLLECTION,
    type: "base",
    fields: [
      text("node", 200),
      text("tier", 16),
      num("start"),
      num("span"),
      num("n"),
      num("rev"),
      { name: "data", type: "json", maxSize: MAX_POINT_DATA },
      { name: "expired", type: "bool" },
      // A date, empty on a live window: the tombstone's purge time.
      { name: "expiredAt", type: "date" },
      created,
      updated,
    ],
    indexes: [
      "CREATE INDEX idx_nxs_metrics_points_tier ON nxs_metrics_points (tier, start)",
      "CREATE INDEX idx_nxs_metrics_points_node ON nxs_metrics_points (node, tier, start)",
    ],
    // Gateways write their flushes and the rollups of their maintenance, and expire old windows;
    // replicators copy everything and purge old tombstones; operators read.
    listRule: READ_OR_OPERATOR,
    viewRule: READ_OR_OPERATOR,
    createRule: READ,
    updateRule: READ,
    deleteRule: `${AuthRules.replicator} && expired = true`,
  };
}

/** `nxs_metrics_leases`: one record per maintenance slot taken (`id` derived from the slot). */
export function leasesCollection(): CollectionDef {
  return {
    id: "pbc_nxs_metrics_leases",
    name: LEASES_COLLECTION,
    type: "base",
    fields: [text("holder", 200), num("until"), created],
    indexes: [],
    listRule: AuthRules.gateway,
    viewRule: AuthRules.gateway,
    createRule: AuthRules.gateway,
    updateRule: null,
    deleteRule: AuthRules.gateway,
  };
}

/** `nxs_metrics_alerts`: one record per check, node, series and start (`id` derived from the four). */
export function alertsCollection(): CollectionDef {
  return {
    id: "pbc_nxs_metrics_alerts",
    name: ALERTS_COLLECTION,
    type: "base",
    fields: [
      text("check", 100),
      text("node", 200),
      text("series", 2000),
      { name: "state", type: "select", maxSelect: 1, values: [...ALERT_STATES] },
      text("severity", 32),
      num("startedAt"),
      num("endedAt"),
      num("value"),
      // alertRev: the greater wins (a resolution; of two, the earlier end).
      num("rev"),
      text("message", 2000),
      created,
      updated,
    ],
    indexes: [
      "CREATE INDEX idx_nxs_metrics_alerts_state ON nxs_metrics_alerts (state, startedAt)",
      "CREATE INDEX idx_nxs_metrics_alerts_node ON nxs_metrics_alerts (node, startedAt)",
    ],
    listRule: READ_OR_OPERATOR,
    viewRule: READ_OR_OPERATOR,
    createRule: READ,
    // A better version only (a resolution; of two, the earlier end): never back to firing.
    updateRule: `(${READ}) && @request.body.rev > rev`,
    deleteRule: null,
  };
}

/**
 * `nxs_operators` (auth): people who read the fleet's health on the dashboard. They read
 * `nxs_metrics_points` and `nxs_metrics_alerts` and write nothing; each sees its own account only.
 * Made by a superuser (`nxs-sync node add NAME --role operator`, or `ensureNode` with role
 * `operator`), with the same id on every server. Not replicated: the CLI writes every server.
 */
export function operatorsCollection(): CollectionDef {
  const self = "id = @request.auth.id";
  return {
    id: "pbc_nxs_operators",
    name: OPERATORS_COLLECTION,
    type: "auth",
    fields: [
      { name: "name", type: "text", max: 200 },
      { name: "created", type: "autodate", onCreate: true, onUpdate: false },
    ],
    indexes: [],
    listRule: self,
    viewRule: self,
    createRule: null,
    updateRule: null,
    deleteRule: null,
    passwordAuth: { enabled: true, identityFields: ["email"] },
    authToken: { duration: OPERATOR_TOKEN_DURATION_S },
  };
}

/** `nxs_metrics_mails`: one marker per alert change mailed by this server (`id` from alert and change). */
export function mailsCollection(): CollectionDef {
  return {
    id: "pbc_nxs_metrics_mails",
    name: MAILS_COLLECTION,
    type: "base",
    fields: [text("alert", 15), text("change", 16), created],
    indexes: [],
    // The hook route writes them; superusers read them in the Admin UI.
    listRule: null,
    viewRule: null,
    createRule: null,
    updateRule: null,
    deleteRule: null,
  };
}

/**
 * Where the hook piece's file is (`pb_hooks/nxs-metrics.pb.js` of this package).
 * @returns The absolute path.
 */
export function metricsHooksPath(): string {
  // src/pocketbase/ (sources) and dist/ (the build) both reach pb_hooks/ from the package root.
  const up = /[\\/]src[\\/]pocketbase[\\/]?$/.test(fileURLToPath(new URL(".", import.meta.url)))
    ? "../../pb_hooks/"
    : "../pb_hooks/";
  return fileURLToPath(new URL(`${up}${METRICS_HOOKS.file}`, import.meta.url));
}

/**
 * The metrics' server hooks as a hook piece (`metrics`): `POST /nxs/metrics/alert-mail` (alert
 * mail through the server's mailer) and `GET /nxs/metrics/dashboard` (the fleet dashboard).
 * Register it beside the collections; `writeHooksBundle(dir, registry)` writes it into a server's
 * hooks dir.
 * @returns The piece (its source is read when first asked for).
 * @example
 * ```ts
 * import { createNxsCollectionRegistry, writeHooksBundle } from "@nxs-sync/pocketbase";
 * const registry = createNxsCollectionRegistry().register(...metricsCollections()).registerHooks(metricsHookPiece());
 * await writeHooksBundle("/srv/pocketbase/pb_hooks", registry); // then restart the server
 * ```
 */
export function metricsHookPiece(): HookPiece {
  return hookPieceFromFile({ ...METRICS_HOOKS, path: metricsHooksPath() });
}

const checkAlert: RecordCheck = (record) =>
  decodeAlert(record) === undefined
    ? new ValidationError(
        `${ALERTS_COLLECTION} record ${String(record.id)}: not an alert, or its id is not its own`,
      )
    : undefined;

/** A tombstone keeps its id, node, tier and window; its data is emptied. */
const checkPoint: RecordCheck = (record) => {
  const d = decodePoint(record);
  return d.ok
    ? undefined
    : new ValidationError(`${POINTS_COLLECTION} record ${String(record.id)}: ${d.reason}`);
};

/**
 * The metrics collections, to register after the nxs-sync ones:
 * `createNxsCollectionRegistry().register(...metricsCollections())`. `nxs_metrics_points` is
 * replicated with key `id` (derived from node, tier and window, so two servers that rolled up one
 * window hold one record) and `MergeRules.lww("rev")` (the version covering more flushes wins;
 * equal coverage by digest); retention expires windows as tombstones
 * (`DeletePolicies.tombstone("expired")`: an expired copy wins over a live one, so a delete does not
 * come back from another server), purged everywhere after `expiredPurgeMs`. Every copy is
 * validated: a malformed record is quarantined by the replicator. `nxs_metrics_alerts` is
 * replicated with key `id` (derived from check, node, series and start) and `lww("rev")` (a
 * resolution wins over the firing alert, of two resolutions the earlier end). `nxs_metrics_leases`
 * and `nxs_metrics_mails` stay on each server.
 * @param options - `expiredPurgeMs` (default {@link DEFAULT_EXPIRED_PURGE_MS}).
 * @returns The definitions, in creation order.
 * @throws NxsError `config/invalid` for a purge delay that is not a positive number.
 * @example
 * ```ts
 * import { createNxsCollectionRegistry, ensureSchema } from "@nxs-sync/pocketbase";
 * const registry = createNxsCollectionRegistry().register(...metricsCollections());
 * await ensureSchema(pb, { collections: registry }); // pb: a superuser client
 * ```
 */
export function metricsCollections(
  options: { readonly expiredPurgeMs?: number } = {},
): CollectionDefinition[] {
  return [
    {
      schema: pointsCollection(),
      replication: {
        key: ["id"],
        merge: MergeRules.lww("rev"),
        validate: checkPoint,
        deletes: DeletePolicies.tombstone("expired", {
          purgeAfterMs: options.expiredPurgeMs ?? DEFAULT_EXPIRED_PURGE_MS,
          at: "expiredAt",
        }),
      },
    },
    {
      schema: alertsCollection(),
      replication: {
        key: ["id"],
        merge: MergeRules.lww("rev"),
        validate: checkAlert,
      },
    },
    { schema: leasesCollection() },
    { schema: mailsCollection() },
    { schema: operatorsCollection() },
  ];
}
