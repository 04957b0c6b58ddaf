/**
 * A config store's watches: one cursor per listener (watch-cursor.ts), fed by realtime versions and
 * by queries (after it is added, and after every resync), each through its own queue so that a
 * listener sees versions in order, with no gap and no repeat; a version of a cut's losing side is a
 * `conflict` event.
 */
import { callGuarded } from "@nxs-sync/core";
import type { KeyCache } from "./key-cache.js";
import { asNxs, type StoreContext } from "./store-context.js";
import type { ConfigWatchEvent } from "./store-types.js";
import type { StoredVersion, VersionMeta } from "./version.js";
import { toVersionMeta } from "./version-meta.js";
import { createWatchCursor, type WatchCursor } from "./watch-cursor.js";

const LIST_PAGE = 1000;

interface KeyWatch {
  readonly key: string;
  readonly cursor: WatchCursor;
  readonly listener: (event: ConfigWatchEvent<unknown>) => void;
  queue: Promise<void>;
  closed: boolean;
}

/** The watches of one store. */
export interface WatchDelivery {
  /**
   * Adds a listener of a key from a version on (it reads what came after first).
   * @returns The function that stops it.
   */
  add(key: string, listener: (event: ConfigWatchEvent<unknown>) => void, fromVersion: number): () => void;
  /** A version realtime told: delivered to the watches of its key (in their order). */
  onVersion(v: StoredVersion): void;
  /** After a resync: each watch reads what it may have missed. */
  refill(): void;
  /** Stops every watch (at close). */
  closeAll(): void;
}

/**
 * Makes the watches of one store.
 * @param ctx - The store's shared part.
 * @param cache - The store's key cache (what the queries read goes in there too).
 * @returns The watches, none yet.
 */
export function createWatchDelivery(ctx: StoreContext, cache: KeyCache): WatchDelivery {
  const { backend, env, logger } = ctx;
  const watches = new Set<KeyWatch>();

  const enqueue = (w: KeyWatch, task: () => Promise<void>): void => {
    w.queue = w.queue
      .then(() => (w.closed || ctx.life.closed ? undefined : task()))
      .catch((error: unknown) =>
        logger.warn(
          `[nxs-sync config] watch of ${env}/${w.key}: ${asNxs(error).message} (retried at the next resync)`,
        ),
      );
  };
  const metaIn = (key: string, pos: { id: string }): VersionMeta | undefined => {
    const v = cache.keys.get(key)?.versions.get(pos.id);
    return v === undefined ? undefined : toVersionMeta(v);
  };
  const tell = (w: KeyWatch, event: ConfigWatchEvent<unknown>): void => {
    callGuarded(`a watch listener of "${w.key}"`, w.listener, [event], (err) =>
      logger.warn(`[nxs-sync config] ${err.message}`),
    );
  };
  const fill = async (w: KeyWatch): Promise<void> => {
    let after = w.cursor.queryAfter();
    for (;;) {
      const page = await backend.list({ env, key: w.key, afterVersion: after, limit: LIST_PAGE });
      for (const v of page) if (cache.ingestVersion(v)) cache.recompute(v.key);
      await deliver(w, page, true);
      if (page.length < LIST_PAGE) return;
      const next = Math.max(after + 1, page[page.length - 1]!.version - 1);
      after = next;
    }
  };
  const deliver = async (
    w: KeyWatch,
    versions: readonly StoredVersion[],
    fromQuery: boolean,
  ): Promise<void> => {
    for (const v of versions) {
      if (w.closed || v.compacted) continue;
      let d = w.cursor.decide(v, fromQuery);
      if (d.kind === "hole") {
        await fill(w);
        d = w.cursor.decide(v, true);
      }
      if (d.kind === "repeat") continue;
      const meta = toVersionMeta(v);
      if (d.kind === "conflict") {
        w.cursor.handled(v);
        tell(w, { type: "conflict", key: w.key, winner: metaIn(w.key, d.winner) ?? meta, loser: meta });
        continue;
      }
      if (d.kind !== "deliver") continue;
      w.cursor.delivered(v);
      if (d.sibling !== undefined) {
        tell(w, { type: "conflict", key: w.key, winner: meta, loser: metaIn(w.key, d.sibling) ?? meta });
      }
      const r = cache.check(cache.stateOf(v.key), v);
      tell(
        w,
        r.ok
          ? { type: "version", version: meta, value: r.value }
          : { type: "invalid", version: meta, error: r.error },
      );
    }
  };

  return {
    add(key, listener, fromVersion) {
      const w: KeyWatch = {
        key,
        cursor: createWatchCursor(fromVersion),
        listener,
        queue: Promise.resolve(),
        closed: false,
      };
      watches.add(w);
      enqueue(w, () => fill(w));
      return () => {
        w.closed = true;
        watches.delete(w);
      };
    },
    onVersion(v) {
      for (const w of watches) if (w.key === v.key) enqueue(w, () => deliver(w, [v], false));
    },
    refill() {
      for (const w of watches) enqueue(w, () => fill(w));
    },
    closeAll() {
      for (const w of watches) w.closed = true;
      watches.clear();
    },
  };
}
