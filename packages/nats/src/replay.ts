/**
 * Replays one doc's changes from one transport into another with their own identities
 * `(origin, seq)`: the way a PocketBase fleet's docs move onto NATS (docs/nats.md). Pushes are
 * idempotent per `(doc, origin, seq)` on every transport, so a replay interrupted and run again,
 * or run again later to copy what came since, stores nothing twice that readers would apply twice.
 */
import { ErrorCode, type Snapshot, type Transport, TransportError, type VersionVector } from "@nxs-sync/core";

/** What {@link replayChanges} did. */
export interface ReplayResult {
  /** Pages pulled from the source. */
  readonly pages: number;
  /** Changes pushed to the target (each acknowledged). */
  readonly changes: number;
  /** Whether the source's snapshot was handed to `onSnapshot`. */
  readonly snapshot: boolean;
}

/**
 * Pulls every change of the doc that `since` lacks from `from` and pushes it to `to`, page by
 * page, until the target acknowledged all of it. Both transports must be connected and bound to
 * the same doc, and `to` must push for any origin (no `origin` option).
 * @param input - Source, target, where to start, and what to do with a snapshot the source sends
 *   (the changes below it are gone there: store it, e.g. with a stability store's `publishSnapshot`).
 * @returns Pages, changes, snapshot.
 * @throws TransportError `transport/unavailable` when the target acknowledges nothing for 100
 *   pushes in a row; whatever `pull` or `push` throws.
 * @example
 * ```ts
 * const r = await replayChanges({ from: transport, to: transport, since: {} });
 * console.log(`${r.changes} changes in ${r.pages} pages`);
 * ```
 */
export async function replayChanges(input: {
  readonly from: Transport;
  readonly to: Transport;
  readonly since?: VersionVector;
  readonly onSnapshot?: (snapshot: Snapshot) => Promise<void>;
}): Promise<ReplayResult> {
  let pages = 0;
  let changes = 0;
  let snapshot = false;
  for await (const page of input.from.pull(input.since ?? {})) {
    pages++;
    if (page.snapshot !== undefined && input.onSnapshot !== undefined) {
      await input.onSnapshot(page.snapshot);
      snapshot = true;
    }
    let rest = page.changes;
    for (let idle = 0; rest.length > 0; ) {
      const { acked } = await input.to.push(rest);
      if (acked === 0 && ++idle >= 100) {
        throw new TransportError(ErrorCode.TransportUnavailable, "replay: the target acknowledged nothing");
      }
      if (acked > 0) idle = 0;
      changes += acked;
      rest = rest.slice(acked);
    }
  }
  return { pages, changes, snapshot };
}
