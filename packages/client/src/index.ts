/**
 * The public API of @nxs-sync/client, browser entry (no Node built-ins, no Node globals): a
 * PocketBase JS SDK client over several servers. The same API for Node is `@nxs-sync/client/node`.
 */
import { LocalAuthStore } from "pocketbase";
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

/** Options of the browser entry's {@link createFleetClient}. */
export interface BrowserFleetClientOptions extends FleetClientOptions {
  /** localStorage key of the default `LocalAuthStore`. Default `pocketbase_auth` (the SDK's). */
  readonly storageKey?: string;
}

/**
 * Creates a fleet client for a browser: one SDK instance over several servers, its session kept in
 * localStorage (a `LocalAuthStore`) unless `authStore` is given.
 * @param options - Endpoints (preferred first), auth store, timeouts, failback.
 * @returns The client, on the first endpoint.
 * @throws FleetError `client/config-invalid` for an empty or malformed `endpoints`.
 * @example
 * ```ts
 * import { createFleetClient } from "@nxs-sync/client";
 * const fleet = createFleetClient({ endpoints: ["https://a.example.com", "https://b.example.com"] });
 * await fleet.pb.collection("users").authWithPassword("ada@example.com", "correct horse");
 * fleet.on("switch", (e) => console.log(`now on ${e.to}: ${e.reason}`));
 * const notes = await fleet.pb.collection("notes").getList(1, 20); // on A, or on B once A is gone
 * ```
 */
export function createFleetClient(options: BrowserFleetClientOptions): FleetClient {
  return buildFleetClient(options, () => new LocalAuthStore(options.storageKey));
}
