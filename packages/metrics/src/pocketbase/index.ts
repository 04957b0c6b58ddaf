/**
 * @nxs-sync/metrics/pocketbase: the metrics' PocketBase client (through the failover pool) and
 * collections (replicated by the replicator's collection registry).
 * @packageDocumentation
 */

export { type AckLagProbeOptions, ackLagOf, ackLagProbe, type ServerAckLag } from "./ack-lag.js";
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
  MAILS_COLLECTION,
  MAX_POINT_DATA,
  METRICS_HOOKS,
  mailsCollection,
  metricsCollections,
  metricsHookPiece,
  metricsHooksPath,
  OPERATOR_TOKEN_DURATION_S,
  operatorsCollection,
  POINTS_COLLECTION,
  pointsCollection,
} from "./collections.js";
export { ALERT_MAIL_PATH, pocketBaseAlertMail } from "./mail.js";
