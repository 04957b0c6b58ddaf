import {
  createSeededRandom,
  defaultLogger,
  ErrorCode,
  type Logger,
  NxsError,
  type Random,
  type Scheduler,
} from "@nxs-sync/core";
import { createTimerScheduler } from "@nxs-sync/core/node";
import type { NodeAuth } from "./client.js";
import { createEndpointPool, type EndpointPool, type EndpointPoolOptions } from "./failover.js";

/**
 * The connection options of a client of a package's hook routes (the queue's and config store's
 * PocketBase backends): its own pool over `endpoints`, or a pool it is given.
 */
export interface RoutePoolOptions
  extends Pick<EndpointPoolOptions, "failover" | "requestTimeoutMs" | "retry"> {
  /** Server base URLs, the home server first. Or pass `pool`. */
  readonly endpoints?: readonly string[];
  /** A started pool to use instead of `endpoints` (the caller stops it); its first endpoint is home. */
  readonly pool?: EndpointPool;
  /** A gateway account (`nxs_nodes`): the hook routes refuse every other. */
  readonly auth: NodeAuth;
  readonly scheduler?: Scheduler;
  readonly random?: Random;
  readonly logger?: Logger;
}

/** What {@link openRoutePool} gives: the pool to call through and how to make another. */
export interface RoutePool {
  /** The pool of the calls (started when it is the client's own). */
  readonly pool: EndpointPool;
  /** Whether `pool` was made here (the client stops it at close). */
  readonly ownPool: boolean;
  /** The home server's URL (the first endpoint). */
  readonly home: string;
  /** A new pool over the same endpoints and settings (not started), e.g. for a realtime session. */
  newPool(): EndpointPool;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  readonly random: Random;
}

/**
 * Opens the endpoint pool of a hook-route client from its options: defaults for the scheduler
 * (real timers), logger (core's `defaultLogger`) and random source, and a pool over `endpoints`
 * unless one is given.
 * @param what - The client's name in the error message (`"queue backend"`).
 * @param options - Endpoints or pool, auth, pool settings.
 * @returns The pool and its settings.
 * @throws NxsError `config/invalid` when neither `endpoints` nor `pool` is given.
 */
export function openRoutePool(what: string, options: RoutePoolOptions): RoutePool {
  const scheduler = options.scheduler ?? createTimerScheduler();
  const logger = options.logger ?? defaultLogger;
  const random = options.random ?? createSeededRandom(Math.floor(Math.random() * 2 ** 31));
  if (options.pool === undefined && (options.endpoints === undefined || options.endpoints.length === 0)) {
    throw new NxsError(
      ErrorCode.ConfigInvalid,
      `${what}: give \`endpoints\` (home server first) or \`pool\``,
    );
  }
  const endpoints = options.pool?.endpoints.map((e) => e.url) ?? options.endpoints ?? [];
  const newPool = () =>
    createEndpointPool({
      endpoints,
      auth: options.auth,
      ...(options.failover === undefined ? {} : { failover: options.failover }),
      ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
      ...(options.retry === undefined ? {} : { retry: options.retry }),
      scheduler,
      logger,
      random,
    });
  const ownPool = options.pool === undefined;
  const pool = options.pool ?? newPool();
  if (ownPool) pool.start();
  const home = pool.endpoints[0]?.url ?? endpoints[0] ?? "";
  return { pool, ownPool, home, newPool, scheduler, logger, random };
}
