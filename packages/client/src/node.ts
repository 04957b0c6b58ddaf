/**
 * The public API of @nxs-sync/client for Node (gateways, scripts, tests): the browser entry's API
 * with an in-memory auth store by default and an EventSource for realtime.
 */
import { BaseAuthStore } from "pocketbase";
import { buildFleetClient, type FleetClient, type FleetClientOptions } from "./fleet-client.js";

export { FleetError, FleetErrorCode, type FleetErrorOptions, isFleetError } from "./errors.js";
export type {
  FleetClient,
  FleetClientEvents,
  FleetClientOptions,
  FleetEndpointState,
  SwitchEvent,
} from "./fleet-client.js";
export { type FleetRequest, isRetriedRequest } from "./retry-rule.js";

/** Options of the Node entry's {@link createFleetClient}. */
export interface NodeFleetClientOptions extends FleetClientOptions {
  /**
   * An `EventSource` class (e.g. the `eventsource` package's) installed as `globalThis.EventSource`
   * when the runtime has none: the SDK's realtime needs one, and Node has none by default.
   */
  readonly EventSource?: unknown;
}

/**
 * Creates a fleet client for Node: one SDK instance over several servers, its session in memory
 * (a `BaseAuthStore`) unless `authStore` is given.
 * @param options - Endpoints (preferred first), auth store, timeouts, failback, EventSource.
 * @returns The client, on the first endpoint.
 * @throws FleetError `client/config-invalid` for an empty or malformed `endpoints`.
 * @example
 * ```ts
 * import { createFleetClient } from "@nxs-sync/client/node";
 * import { EventSource } from "eventsource";
 * const fleet = createFleetClient({ endpoints: ["http://10.0.0.1:8090", "http://10.0.0.2:8090"], EventSource });
 * await fleet.pb.collection("users").authWithPassword("ada@example.com", "correct horse");
 * const me = await fleet.pb.collection("users").getOne(fleet.pb.authStore.record!.id);
 * ```
 */
export function createFleetClient(options: NodeFleetClientOptions): FleetClient {
  const g = globalThis as { EventSource?: unknown };
  if (options.EventSource !== undefined && typeof g.EventSource === "undefined")
    g.EventSource = options.EventSource;
  return buildFleetClient(options, () => new BaseAuthStore());
}
