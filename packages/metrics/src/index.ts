/**
 * @nxs-sync/metrics: health metrics of an nxs-sync fleet. Counters, gauges and histograms recorded
 * in memory, one compact record per node and flush interval, rollup tiers with retention kept in
 * PocketBase and replicated to every server, queries per node or across the fleet, a node
 * collector (cgroup-aware) and a Prometheus exposition.
 * @packageDocumentation
 */

export { type Alert, AlertState, alertId, alertRev, decodeAlert } from "./checks/alert.js";
export {
  type AlertEvent,
  type Checker,
  type CheckerOptions,
  type CheckReport,
  createChecker,
} from "./checks/checker.js";
export {
  type AlertSink,
  createDelivery,
  type Delivery,
  type DeliveryRetry,
  webhookSink,
} from "./checks/delivery.js";
export {
  type AbsenceCheck,
  absenceCheck,
  type Check,
  type Evaluation,
  evaluateChecks,
  hardwareCapCheck,
  lookbackOf,
  type ThresholdCheck,
} from "./checks/evaluate.js";
export type { MetricsClient, PointList, PointRange, RefusedPoint } from "./client.js";
export {
  type CgroupFigures,
  parseCgroupV1,
  parseCgroupV2,
  parseProcCgroup,
  type ReadText,
  readCgroup,
  statValue,
} from "./collector/cgroup.js";
export {
  type Collector,
  type CollectorOptions,
  createCollector,
  type NodeFigures,
  type Probe,
} from "./collector/collector.js";
export { type HostCpu, parseMeminfo, parseProcStat } from "./collector/host.js";
export {
  configHeadAgeProbe,
  type JobContextLike,
  type QueueLike,
  queueDepthProbe,
  type ReplicaLike,
  type ReplicatorLike,
  replicaProbe,
  replicatorProbe,
  timeJobs,
} from "./collector/probes.js";
export { nodeSystemReader, type SystemReader } from "./collector/system.js";
export { MetricsError, MetricsErrorCode } from "./errors.js";
export { createFlusher, type Flusher, type FlusherOptions } from "./flusher.js";
export { deterministicId, hash53 } from "./hash.js";
export {
  createMaintainer,
  type Maintainer,
  type MaintainerOptions,
  type MaintenanceReport,
} from "./maintainer.js";
export { createMemoryMetricsClient, type MemoryMetricsClient } from "./memory-client.js";
export { createMetrics, type Metrics, type MetricsOptions } from "./metrics.js";
export {
  checkName,
  decodeSeriesKey,
  encodeSeriesKey,
  type Labels,
  NAME_PATTERN,
  type SeriesKey,
} from "./names.js";
export {
  type CounterValue,
  type Decoded,
  decodePoint,
  type GaugeValue,
  type HistogramValue,
  type MetricsPoint,
  makePoint,
  mergeSeriesValue,
  type PointData,
  pointDataSchema,
  pointId,
  pointSchema,
  revisionOf,
  rollupPoints,
  type SeriesValue,
  sortData,
} from "./point.js";
export {
  createPrometheusExposition,
  type PrometheusExposition,
  type PrometheusOptions,
} from "./prometheus.js";
export {
  Agg,
  aggregatePoints,
  type MetricsQuery,
  pickTier,
  type QueryPoint,
  type QueryResult,
  type QuerySeries,
  reduceValue,
  runQuery,
} from "./query.js";
export {
  type Counter,
  type CounterChild,
  createRecorder,
  DEFAULT_BUCKETS,
  DEFAULT_MAX_LABEL_VALUES,
  DEFAULT_MAX_SERIES,
  type Gauge,
  type GaugeChild,
  type Histogram,
  type HistogramChild,
  type HistogramOptions,
  MetricKind,
  type MetricOptions,
  type MetricSnapshot,
  type Recorder,
  type RecorderOptions,
  type SeriesSnapshot,
} from "./recorder.js";
export {
  checkTiers,
  DEFAULT_FLUSH_INTERVAL_MS,
  DEFAULT_RAW_RETENTION_MS,
  DEFAULT_TIERS,
  RAW_TIER,
  type Tier,
  windowStart,
} from "./tiers.js";
