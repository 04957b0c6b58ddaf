/**
 * `@nxs-sync/testing`: real PocketBase servers (processes and containers) for the tests, examples and
 * benchmarks of nxs-sync. This entry loads no vitest, so an example's runtime code can import it; the
 * vitest lifecycle helpers (`usePocketBaseServers`…) are in `@nxs-sync/testing/vitest`, and the
 * conformance suites every adapter runs in `@nxs-sync/testing/conformance`.
 * @packageDocumentation
 */

export { findNxsHooksDir } from "./admin.js";
export {
  CHAOS_GATEWAY_CONFIG_ENV,
  CHAOS_KV_KEYS,
  type ChaosCommand,
  type ChaosDocState,
  type ChaosFleet,
  type ChaosGateway,
  type ChaosGatewayMessage,
  type ChaosGatewayOptions,
  type ChaosGatewayState,
  type ChaosLink,
  type ChaosModel,
  type ChaosObserver,
  type ChaosOp,
  ChaosOpKind,
  type ChaosReport,
  type ChaosServer,
  type ChaosTargets,
  type ChaosWorkload,
  type ChaosWrite,
  chaosInitialState,
  createChaosModel,
  createChaosWorkload,
  createEventTally,
  describeFault,
  type EventTally,
  type Fault,
  FaultKind,
  type FaultScheduleOptions,
  faultTargetType,
  formatChaosReport,
  generateFaultSchedule,
  hashChaosState,
  type LostWrite,
  type ModelCheck,
  type ObservedState,
  type ReportedLoss,
  type RunChaosOptions,
  runChaos,
  startChaosGateway,
} from "./chaos/index.js";
export { type PocketBaseCluster, type StartClusterOptions, startCluster } from "./cluster.js";
export {
  applyCollections,
  type CollectionDefinition,
  type CollectionTarget,
  clearCollections,
  timestampFields,
} from "./collections.js";
export {
  type DocSnippet,
  extractDocSnippets,
  extractTsDocExamples,
  writeDocSnippetModule,
} from "./doc-snippets.js";
export { HarnessError, type HarnessErrorCode, isHarnessError } from "./errors.js";
export { installEventSource } from "./event-source.js";
export { type Namespace, withNamespace } from "./namespace.js";
export {
  cachedNatsServerPath,
  DEFAULT_NATS_SERVER_VERSION,
  type EnsureNatsServerBinaryOptions,
  ensureNatsServerBinary,
  type NatsServerBinarySource,
  type ResolvedNatsServerBinary,
  readNatsServerVersion,
} from "./nats-binary.js";
export { type NatsCluster, type NatsClusterOptions, startNatsCluster } from "./nats-cluster.js";
export {
  type NatsServer,
  type NatsServerOptions,
  startNatsServer,
  waitForNatsHealth,
} from "./nats-server.js";
export {
  cachedPocketBasePath,
  DEFAULT_POCKETBASE_VERSION,
  type EnsurePocketBaseBinaryOptions,
  ensurePocketBaseBinary,
  MIN_GO_VERSION,
  type PocketBaseBinarySource,
  pocketBaseCacheDir,
  pocketBaseReleaseAsset,
  type ResolvedPocketBaseBinary,
  readPocketBaseVersion,
} from "./pocketbase-binary.js";
export {
  CONTAINER_PORT,
  type ContainerPocketBase,
  type ContainerPocketBaseOptions,
  createDockerNetwork,
  type DockerStatus,
  dockerAvailable,
  dockerAvailableSync,
  type EnsurePocketBaseImageOptions,
  ensurePocketBaseImage,
  POCKETBASE_DOCKERFILE,
  startPocketBaseContainer,
} from "./pocketbase-container.js";
export {
  findFreePort,
  type ProcessPocketBase,
  type ProcessPocketBaseOptions,
  startPocketBase,
} from "./pocketbase-process.js";
export { type CutMode, startTcpProxy, type TcpProxy } from "./tcp-proxy.js";
export {
  type BatchSettings,
  type CommonPocketBaseOptions,
  DEFAULT_BATCH_SETTINGS,
  type HookFile,
  type PocketBaseMode,
  type PocketBaseServer,
  type Superuser,
} from "./types.js";
export { type WaitForOptions, waitFor } from "./wait-for.js";
