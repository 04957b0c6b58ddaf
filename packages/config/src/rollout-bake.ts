/**
 * A staged rollout's bake: while a version staged for some nodes bakes, the caller's health check
 * is called every `checkEveryMs`; the first failing (or throwing) check rolls the version back at
 * once, and a version whose checks all passed for `bakeMs` is promoted to every node.
 */
import type { ConfigBackend } from "./backend.js";
import type { StoreContext } from "./store-context.js";
import type { RolloutOptions } from "./store-types.js";
import type { RolloutRecord, VersionMeta } from "./version.js";

/**
 * Bakes a staged version, then promotes it or rolls it back.
 * @param ctx - The store's shared part (its scheduler and sleep: a close ends the bake).
 * @param meta - The staged version.
 * @param o - `bakeMs`, `checkEveryMs` (default a fifth of `bakeMs`) and `check`.
 * @param ingest - Takes the rollout record of each move into the store's cache.
 * @returns The version and the state it ended in.
 * @throws NxsError `config/not-ready` when the store closes during the bake.
 */
export async function bakeRollout(
  ctx: StoreContext,
  meta: VersionMeta,
  o: Pick<RolloutOptions, "bakeMs" | "checkEveryMs" | "check">,
  ingest: (r: RolloutRecord) => void,
): Promise<{ readonly version: VersionMeta; readonly state: RolloutRecord["state"] }> {
  const { scheduler } = ctx;
  const backend: ConfigBackend = ctx.backend;
  const every = Math.max(1, o.checkEveryMs ?? Math.ceil(o.bakeMs / 5));
  const deadline = scheduler.now() + o.bakeMs;
  for (;;) {
    const left = deadline - scheduler.now();
    if (left > 0) await ctx.sleep(Math.min(every, left));
    let healthy = false;
    let reason = "the health check failed";
    try {
      healthy = await o.check();
    } catch (error) {
      reason = `the health check threw: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (!healthy) {
      const r = await backend.setRollout(meta, "rolled-back", reason);
      ingest(r);
      return { version: meta, state: r.state };
    }
    if (scheduler.now() >= deadline) break;
  }
  const r = await backend.setRollout(meta, "promoted", `baked ${o.bakeMs} ms, every check passed`);
  ingest(r);
  return { version: meta, state: r.state };
}
