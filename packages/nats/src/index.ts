/**
 * `@nxs-sync/nats`: nxs-sync over a NATS JetStream cluster, behind core's `Transport` port (a
 * gateway switches from PocketBase by changing its transport), with acks in a KV bucket and
 * compaction under a lease behind core's transport-neutral stability port.
 * @packageDocumentation
 */
export { NatsError, NatsErrorCode, toNatsTransportError } from "./errors.js";
export {
  createPackOutbox,
  decodePackBody,
  encodePackBody,
  estimateChangeBytes,
  PackHeader,
  type PackLimits,
  type PackOutbox,
} from "./packs.js";
export {
  type NatsGatewayPermissionsOptions,
  type NatsPermissions,
  natsCompactorPermissions,
  natsGatewayPermissions,
} from "./permissions.js";
export { type ReplayResult, replayChanges } from "./replay.js";
export {
  createNatsStabilityStore,
  type NatsStabilityStore,
  type NatsStabilityStoreOptions,
} from "./stability.js";
export { ensureStreams, type StreamSettings } from "./streams.js";
export {
  ackKey,
  changeSubject,
  decodeSubjectToken,
  docChangesFilter,
  encodeSubjectToken,
  leaseKey,
  type NatsNames,
  natsNames,
  originOfSubject,
  packMessageId,
  snapshotSubject,
} from "./subjects.js";
export {
  createNatsTransport,
  NatsHealth,
  type NatsTransport,
  type NatsTransportEvents,
  type NatsTransportOptions,
  type NatsTransportStatus,
} from "./transport.js";
