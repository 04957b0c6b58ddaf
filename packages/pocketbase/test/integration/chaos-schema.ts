/**
 * The chaos document's zod schema (the shape is `ChaosDocState` of `@nxs-sync/testing`): shared by
 * the gateway workers and the servers' rebuilds.
 * @module
 */
import { addWinsSet, counter } from "@nxs-sync/core";
import { z } from "zod";

/**
 * The chaos document's schema for a set of gateways.
 * @param gateways - The run's gateway names (one counter each).
 * @returns The schema: `kv` (LWW strings), `counters`, `tags` (add-wins set).
 */
export function chaosSchema(gateways: readonly string[]) {
  return z.object({
    kv: z.record(z.string(), z.string()),
    counters: z.object(Object.fromEntries(gateways.map((g) => [g, counter()]))),
    tags: addWinsSet(z.string()),
  });
}
