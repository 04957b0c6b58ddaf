/**
 * A config store's last-known-good file: written (debounced) after the effective version of a key
 * changed, holding each key's version in use and its rollout record in stored form (secrets sealed);
 * read at boot when no server answers in time. The file's format is cache-file.ts.
 */
import { CACHE_FILE_FORMAT, type CacheFileContent, readCacheFile, writeCacheFile } from "./cache-file.js";
import type { KeyCache } from "./key-cache.js";
import { asNxs, type StoreContext } from "./store-context.js";
import type { StoredVersion } from "./version.js";

/** The file's writer and reader of one store. */
export interface LastKnownGood {
  /** Writes the file `cacheWriteDelayMs` from now, unless a write is due already (no file: nothing). */
  schedule(): void;
  /** Whether a write is due (scheduled, not yet started). */
  pending(): boolean;
  /** Writes the file now (after the writes before it); a failure is logged. */
  writeNow(): Promise<void>;
  /** Resolves once every write started has ended. */
  settled(): Promise<void>;
  /**
   * Reads the file into the cache (rollouts, then versions, then every key recomputed).
   * @returns Whether it was usable (readable, of this environment); why not is logged.
   */
  boot(path: string): Promise<boolean>;
}

/**
 * Makes the last-known-good file of one store.
 * @param ctx - The store's shared part (`cacheFile`: none, nothing is written).
 * @param cache - The store's key cache.
 * @param delayMs - The debounce of writes.
 * @returns The writer and reader.
 */
export function createLastKnownGood(ctx: StoreContext, cache: KeyCache, delayMs: number): LastKnownGood {
  const { env, logger } = ctx;
  let timer: (() => void) | undefined;
  let writing: Promise<void> = Promise.resolve();

  const writeNow = (): Promise<void> => {
    const path = ctx.cacheFile;
    if (path === undefined) return Promise.resolve();
    const versions: StoredVersion[] = [];
    for (const st of cache.keys.values()) if (st.current !== undefined) versions.push(st.current.stored);
    const ids = new Set(versions.map((v) => v.id));
    const content: CacheFileContent = {
      format: CACHE_FILE_FORMAT,
      env,
      savedAt: ctx.clock(),
      versions,
      rollouts: [...cache.rollouts.values()].filter((r) => ids.has(r.id)),
    };
    writing = writing
      .then(() => writeCacheFile(path, content))
      .catch((error: unknown) =>
        logger.warn(`[nxs-sync config] cannot write ${path}: ${asNxs(error).message}`),
      );
    return writing;
  };

  return {
    schedule() {
      if (ctx.cacheFile === undefined || timer !== undefined || ctx.life.closed) return;
      let forget = (): void => {};
      const cancel = ctx.scheduler.schedule(delayMs, () => {
        forget();
        timer = undefined;
        void writeNow();
      });
      const stop = () => {
        cancel();
        timer = undefined;
      };
      timer = stop;
      forget = ctx.addTimer(stop);
    },
    pending: () => timer !== undefined,
    writeNow,
    settled: () => writing,
    async boot(path) {
      const read = await readCacheFile(path);
      if (!read.ok) {
        logger.warn(`[nxs-sync config] cache file ${path} not usable (${read.reason}): ${read.detail}`);
        return false;
      }
      if (read.content.env !== env) {
        logger.warn(`[nxs-sync config] cache file ${path} is of env "${read.content.env}", not "${env}"`);
        return false;
      }
      for (const r of read.content.rollouts) cache.ingestRollout(r);
      for (const v of read.content.versions) cache.ingestVersion(v);
      for (const key of cache.keys.keys()) cache.recompute(key);
      return true;
    },
  };
}
