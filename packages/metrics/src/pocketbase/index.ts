/**
 * @nxs-sync/metrics/pocketbase: the metrics' PocketBase client (through the failover pool) and
 * collections (replicated by the replicator's collection registry).
 * @packageDocumentation
 */
export {
  createPocketBaseMetricsClient,
  type PocketBaseMetricsClient,
  type PocketBaseMetricsClientOptions,
  pointRecord,
  readAlerts,
  readPoints,
} from "./client.js";
export {
  ALERTS_COLLECTION,
  alertsCollection,
  DEFAULT_EXPIRED_PURGE_MS,
  LEASES_COLLECTION,
  leasesCollection,
  MAX_POINT_DATA,
  metricsCollections,
  POINTS_COLLECTION,
  pointsCollection,
} from "./collections.js";
