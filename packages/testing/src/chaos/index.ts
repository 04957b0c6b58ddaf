/**
 * The chaos suite's engine: a seeded fault schedule over real processes (servers, gateways, links),
 * a model of acknowledged writes, and the report. The fleet (servers, replicator, gateway worker) is
 * the adapter's: see `packages/pocketbase/test/integration/chaos-fleet.ts` and docs/testing.md.
 * @module
 */
export { type ChaosGateway, type ChaosGatewayOptions, startChaosGateway } from "./gateway-process.js";
export {
  type ChaosModel,
  type ChaosObserver,
  type ChaosWrite,
  createChaosModel,
  type LostWrite,
  type ModelCheck,
} from "./model.js";
export {
  CHAOS_GATEWAY_CONFIG_ENV,
  type ChaosCommand,
  type ChaosGatewayMessage,
  type ChaosGatewayState,
} from "./protocol.js";
export {
  type ChaosReport,
  createEventTally,
  type EventTally,
  formatChaosReport,
  type ReportedLoss,
} from "./report.js";
export {
  type ChaosFleet,
  type ChaosLink,
  type ChaosServer,
  hashChaosState,
  type ObservedState,
  type RunChaosOptions,
  runChaos,
} from "./runner.js";
export {
  type ChaosTargets,
  describeFault,
  type Fault,
  FaultKind,
  type FaultScheduleOptions,
  faultTargetType,
  generateFaultSchedule,
} from "./schedule.js";
export {
  CHAOS_KV_KEYS,
  type ChaosDocState,
  type ChaosOp,
  ChaosOpKind,
  type ChaosWorkload,
  chaosInitialState,
  createChaosWorkload,
} from "./workload.js";
