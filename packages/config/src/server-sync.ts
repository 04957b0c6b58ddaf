/**
 * How a config store follows its server: a read of the environment's heads and rollouts (the truth
 * after every (re)connect: single flight, retried `retryMs` after a failure), and the watcher the
 * backend tells of realtime versions, rollouts, quarantined records and resyncs.
 */
import { NxsError } from "@nxs-sync/core";
import type { ConfigWatcher } from "./backend.js";
import { ConfigErrorCode } from "./errors.js";
import type { KeyCache } from "./key-cache.js";
import { asNxs, type StoreContext } from "./store-context.js";
import type { WatchDelivery } from "./watch-delivery.js";

/** The sync of one store. */
export interface ServerSync {
  /**
   * Reads heads and rollouts into the cache (joins a read in flight, which then reads again).
   * @returns Whether the read succeeded.
   */
  sync(): Promise<boolean>;
  /** The watcher to give `backend.watch`. */
  readonly watcher: ConfigWatcher;
  /** Called after each successful read (the boot waits for the first). */
  onSynced: (() => void) | undefined;
  /** Called when the backend says every server definitely failed (the boot may use its cache file). */
  onUnreachable: ((reason: string) => void) | undefined;
}

/**
 * Makes the sync of one store.
 * @param ctx - The store's shared part.
 * @param cache - The store's key cache.
 * @param watches - The store's watches (told of realtime versions, refilled after a read).
 * @param retryMs - The wait before a read is tried again after a failure.
 * @returns The sync (nothing read yet).
 */
export function createServerSync(
  ctx: StoreContext,
  cache: KeyCache,
  watches: WatchDelivery,
  retryMs: number,
): ServerSync {
  const { backend, env, schemas, logger, life } = ctx;

  /** Reads heads and rollouts (the truth after a (re)connect) into the cache. */
  const loadFromServer = async (): Promise<void> => {
    const [heads, rolls] = await Promise.all([backend.heads(env), backend.rollouts(env)]);
    for (const r of rolls) cache.ingestRollout(r);
    const changed = heads.filter((h) => cache.ingestVersion(h));
    const incomplete: string[] = [];
    for (const h of heads) {
      if (!Object.hasOwn(schemas, h.key)) continue;
      cache.recompute(h.key);
      if (cache.keys.get(h.key)?.current?.stored.id !== h.id && changed.includes(h)) incomplete.push(h.key);
    }
    for (const key of incomplete) await cache.loadMore(key);
  };

  let syncing: Promise<boolean> | undefined;
  let syncAgain = false;
  let retrying = false;
  const self: ServerSync = {
    onSynced: undefined,
    onUnreachable: undefined,
    sync(): Promise<boolean> {
      if (syncing !== undefined) {
        syncAgain = true;
        return syncing;
      }
      syncing = (async () => {
        let ok = false;
        do {
          syncAgain = false;
          try {
            await loadFromServer();
            ok = true;
          } catch (error) {
            ok = false;
            logger.warn(`[nxs-sync config] cannot read ${env} from ${backend.name}: ${asNxs(error).message}`);
          }
        } while (syncAgain && !life.closed);
        return ok;
      })().finally(() => {
        syncing = undefined;
      });
      return syncing.then((ok) => {
        if (life.closed) return ok;
        if (ok) {
          life.synced = true;
          if (life.degraded) {
            life.degraded = false;
            ctx.emit({ type: "recovered" });
          }
          self.onSynced?.();
          watches.refill();
        } else if (!retrying) {
          // One retry chain at most, whoever asked for the failed read.
          retrying = true;
          ctx.sleep(retryMs).then(
            () => {
              retrying = false;
              void self.sync();
            },
            () => {},
          );
        }
        return ok;
      });
    },
    watcher: {
      onVersion(v) {
        if (life.closed) return;
        if (cache.ingestVersion(v)) cache.recompute(v.key);
        watches.onVersion(v);
      },
      onRollout(r) {
        if (!life.closed) cache.ingestRollout(r);
      },
      onInvalid(raw, reason) {
        const key =
          typeof (raw as { key?: unknown } | null)?.key === "string" ? (raw as { key: string }).key : "";
        ctx.emit({
          type: "invalid",
          key,
          error: new NxsError(
            ConfigErrorCode.InvalidRecord,
            `a malformed version record was quarantined: ${reason}`,
          ),
        });
      },
      onResync() {
        if (!life.closed) void self.sync();
      },
      onUnreachable(reason) {
        if (!life.closed && !life.synced) self.onUnreachable?.(reason);
      },
    },
  };
  return self;
}
