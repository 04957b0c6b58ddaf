/**
 * What the parts of a config store share: its backend, environment, node, schemas and keyring, its
 * clocks and logger, how it tells its `onEvent` listener, its lifecycle flags (started, closed,
 * synced, degraded) and its timers (a sleep that `close()` cancels). Made once by
 * `createConfigStore`; each part (the key cache, the watch delivery, the sync, files, rollouts)
 * takes it.
 */
import {
  callGuarded,
  type HlcClock,
  isNxsError,
  type Logger,
  NxsError,
  type Scheduler,
  type WallClock,
} from "@nxs-sync/core";
import type { z } from "zod";
import type { ConfigBackend } from "./backend.js";
import { ConfigErrorCode } from "./errors.js";
import type { Keyring } from "./secrets.js";
import type { ConfigSchemas, ConfigStoreEvent } from "./store-types.js";

/** A config store's lifecycle flags (one object, read and set by its parts). */
export interface StoreLifecycle {
  started: boolean;
  closed: boolean;
  /** A read of the server succeeded once (the boot is over; what arrives now is news). */
  synced: boolean;
  /** Booted from the cache file and no server read has succeeded since. */
  degraded: boolean;
}

/** What the parts of one store share. */
export interface StoreContext {
  readonly backend: ConfigBackend;
  readonly env: string;
  readonly node: string;
  readonly schemas: ConfigSchemas;
  readonly keyring: Keyring | undefined;
  readonly scheduler: Scheduler;
  readonly clock: WallClock;
  readonly logger: Logger;
  readonly hlc: HlcClock;
  readonly newId: () => string;
  readonly cacheFile: string | undefined;
  readonly life: StoreLifecycle;
  /** Tells the store's `onEvent` listener (a throw is logged, never propagated). */
  emit(event: ConfigStoreEvent): void;
  /**
   * The schema of a key.
   * @throws NxsError `config/unknown-key`.
   */
  schemaOf(key: string): z.ZodType;
  /**
   * Resolves after `ms` on the store's scheduler.
   * @throws NxsError `config/not-ready` when the store is (or gets) closed first.
   */
  sleep(ms: number): Promise<void>;
  /** Adds a timer's stop function, called by {@link StoreContext.stopTimers}; returns its removal. */
  addTimer(stop: () => void): () => void;
  /** Stops every timer (at close). */
  stopTimers(): void;
}

/** What {@link createStoreContext} takes (the store's options, resolved). */
export interface StoreContextOptions
  extends Omit<StoreContext, "life" | "emit" | "schemaOf" | "sleep" | "addTimer" | "stopTimers"> {
  readonly onEvent: ((event: ConfigStoreEvent) => void) | undefined;
}

/**
 * An NxsError of a config code.
 * @param code - The code.
 * @param message - What happened.
 * @returns The error (not thrown).
 */
export const fail = (
  code: (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode],
  message: string,
): NxsError => new NxsError(code, message);

/**
 * Anything thrown, as an NxsError (`config/invalid-record` for what is not one).
 * @param error - What was thrown.
 * @returns The NxsError.
 */
export const asNxs = (error: unknown): NxsError =>
  isNxsError(error)
    ? error
    : new NxsError(ConfigErrorCode.InvalidRecord, error instanceof Error ? error.message : String(error), {
        cause: error,
      });

/**
 * Makes the shared part of a store.
 * @param o - The store's resolved options.
 * @returns The context (lifecycle flags all false).
 */
export function createStoreContext(o: StoreContextOptions): StoreContext {
  const life: StoreLifecycle = { started: false, closed: false, synced: false, degraded: false };
  const timers = new Set<() => void>();
  const { onEvent, ...rest } = o;
  return {
    ...rest,
    life,
    emit(event) {
      callGuarded("onEvent", onEvent, [event], (err) => o.logger.warn(`[nxs-sync config] ${err.message}`));
    },
    schemaOf(key) {
      const schema = Object.hasOwn(o.schemas, key) ? o.schemas[key] : undefined;
      if (schema === undefined)
        throw fail(ConfigErrorCode.UnknownKey, `config key "${key}" has no schema in this store`);
      return schema;
    },
    sleep(ms) {
      return new Promise((resolve, reject) => {
        if (life.closed) {
          reject(fail(ConfigErrorCode.NotReady, "the config store is closed"));
          return;
        }
        const stop = () => {
          timers.delete(stop);
          cancel();
          reject(fail(ConfigErrorCode.NotReady, "the config store is closed"));
        };
        const cancel = o.scheduler.schedule(ms, () => {
          timers.delete(stop);
          resolve();
        });
        timers.add(stop);
      });
    },
    addTimer(stop) {
      timers.add(stop);
      return () => timers.delete(stop);
    },
    stopTimers() {
      for (const stop of [...timers]) stop();
      timers.clear();
    },
  };
}
