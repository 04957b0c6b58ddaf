import { parseArgs } from "node:util";
import {
  createLineLogger,
  defaultLogger,
  ErrorCode,
  isNxsError,
  type Logger,
  type LogLevel,
  type NxsError,
  type Scheduler,
} from "@nxs-sync/core";
import { type Compactor, createCompactor } from "./compaction.js";
import { createReplicator, type Replicator, type ReplicatorOptions } from "./replicator.js";

/**
 * Exit codes of `nxs-replicator` (a Compose `restart: on-failure` restarts it on every one but 0).
 */
export const ReplicatorExitCode = {
  /** Stopped by SIGINT/SIGTERM, or `--help`. */
  Stopped: 0,
  /** An unexpected error at run time. */
  Failed: 1,
  /** Bad arguments, missing credentials, an unusable server URL. */
  Usage: 2,
  /** Every server refused the login (wrong credentials, not a replicator account, schema or hooks missing). */
  LoginRefused: 3,
  /** No server was usable (reachable and accepting the login) for longer than `--lost-all-after`. */
  LostAll: 4,
} as const;
/** One of {@link ReplicatorExitCode}. */
export type ReplicatorExitCode = (typeof ReplicatorExitCode)[keyof typeof ReplicatorExitCode];

const USAGE = `usage: nxs-replicator --server URL --server URL [--interval MS] [--lost-all-after MS]
                      [--compact-interval MS] [--expiry MS] [--log-level LEVEL]
                      [--records COLLECTION,...]

Keeps the nxs-sync collections identical on every server (realtime + anti-entropy) and, with
--compact-interval, compacts them. --records users,posts also copies those collections through the
records hook piece (accounts with their password hashes, app data, deletes; nxs-sync replicator
defaults to users, or NXS_RECORDS; none turns it off). Credentials of a replicator account (a record of
nxs_replicators, made by ensureNode with role "replicator") come from the environment:
NXS_REPLICATOR_EMAIL and NXS_REPLICATOR_PASSWORD (NXS_NODE_EMAIL and NXS_NODE_PASSWORD are
deprecated aliases). Logs one line per message to stderr (--log-level: debug, info, warn (default),
error, silent).

Exit codes: 0 stopped by SIGINT/SIGTERM; 1 unexpected error; 2 bad usage or configuration;
3 every server refused the login; 4 no server usable for longer than --lost-all-after (default
60000 ms).`;

/** What {@link runReplicatorCli} needs from its environment (injectable for tests). */
export interface ReplicatorCliContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Where messages go. Default: core's `defaultLogger` (warnings and errors, one line each, to
   * stderr; `--log-level` picks another level), and the usage text straight to stdout/stderr.
   */
  readonly logger?: Logger;
  /** Resolves (or aborts) when the process should stop. */
  readonly signal: AbortSignal;
  /** Time of the replicator's loops and bounds. Default: real timers (tests pass a manual scheduler). */
  readonly scheduler?: Scheduler;
  /**
   * The collections to replicate (`ReplicatorOptions.collections`): `nxs-sync replicator` passes the
   * project's registry (the queue's and config store's collections when installed). Default: the
   * nxs-sync collections.
   */
  readonly collections?: ReplicatorOptions["collections"];
  /**
   * Collections replicated through the records piece (`ReplicatorOptions.records`) when
   * `--records` is not given. Default none.
   */
  readonly records?: readonly string[];
}

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/**
 * The replicator's credentials from the environment: `NXS_REPLICATOR_*`, else the deprecated
 * `NXS_NODE_*` (one warning for all of them).
 */
function credentials(
  env: ReplicatorCliContext["env"],
  logger: Logger,
): { email: string | undefined; password: string | undefined } {
  const deprecated: string[] = [];
  const ignored: string[] = [];
  const read = (name: "EMAIL" | "PASSWORD"): string | undefined => {
    const value = env[`NXS_REPLICATOR_${name}`];
    const old = env[`NXS_NODE_${name}`];
    if (value) {
      if (old) ignored.push(`NXS_NODE_${name}`);
      return value;
    }
    if (old) deprecated.push(`NXS_NODE_${name}`);
    return old || undefined;
  };
  const email = read("EMAIL");
  const password = read("PASSWORD");
  const renamed = (names: string[]) =>
    names.map((n) => n.replace("NXS_NODE_", "NXS_REPLICATOR_")).join(" and ");
  if (deprecated.length > 0) {
    logger.warn(
      `[nxs-replicator] ${deprecated.join(" and ")} ${deprecated.length > 1 ? "are" : "is"} deprecated: set ${renamed(deprecated)} instead (the replicator's account is not a node)`,
    );
  } else if (ignored.length > 0) {
    logger.warn(
      `[nxs-replicator] ${ignored.join(" and ")} ${ignored.length > 1 ? "are" : "is"} deprecated and ignored: ${renamed(ignored)} ${ignored.length > 1 ? "are" : "is"} set`,
    );
  }
  return { email, password };
}

/**
 * The `nxs-replicator` command: parses arguments, runs a replicator (and optionally a compactor)
 * until `signal` aborts, or until it cannot work: every server refused its login at start, or no
 * server has been usable for longer than `--lost-all-after`.
 * @param argv - Arguments after the command name.
 * @param ctx - Environment, logger, stop signal and scheduler.
 * @returns The exit code, one of {@link ReplicatorExitCode}: 0 after a clean stop, 2 for bad usage,
 *   3 when every server refused the login, 4 when all servers were lost past the bound.
 * @throws Whatever unexpected error the replicator throws at start (the command exits 1).
 */
export async function runReplicatorCli(
  argv: readonly string[],
  ctx: ReplicatorCliContext,
): Promise<ReplicatorExitCode> {
  const logger = ctx.logger ?? defaultLogger;
  // The usage text keeps its lines: through the caller's logger, else straight to the console.
  const usage = (to: "info" | "error", text: string): void => {
    if (ctx.logger !== undefined) ctx.logger[to](text);
    else if (to === "info") console.log(text);
    else console.error(text);
  };
  let values: {
    server?: string[];
    interval?: string;
    "lost-all-after"?: string;
    "compact-interval"?: string;
    expiry?: string;
    "log-level"?: string;
    records?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        server: { type: "string", multiple: true },
        interval: { type: "string" },
        "lost-all-after": { type: "string" },
        "compact-interval": { type: "string" },
        expiry: { type: "string" },
        "log-level": { type: "string" },
        records: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    usage("error", `${(e as Error).message}\n${USAGE}`);
    return ReplicatorExitCode.Usage;
  }
  if (values.help) {
    usage("info", USAGE);
    return ReplicatorExitCode.Stopped;
  }
  const level = values["log-level"];
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) {
    usage("error", `--log-level ${level}: not one of ${LOG_LEVELS.join(", ")}\n${USAGE}`);
    return ReplicatorExitCode.Usage;
  }
  const log = level === undefined ? logger : createLineLogger({ level: level as LogLevel });
  const urls = values.server ?? [];
  const { email, password } = credentials(ctx.env, log);
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const intervalMs = num(values.interval);
  const lostAllAfterMs = num(values["lost-all-after"]);
  const compactMs = num(values["compact-interval"]);
  const expiryMs = num(values.expiry);
  if (
    urls.length < 2 ||
    !email ||
    !password ||
    [intervalMs, lostAllAfterMs, compactMs, expiryMs].some((n) => n !== undefined && !(n > 0))
  ) {
    usage("error", USAGE);
    return ReplicatorExitCode.Usage;
  }
  const auth = { email, password };
  const servers = urls.map((url) => ({ url, auth }));
  const records =
    values.records === undefined
      ? (ctx.records ?? [])
      : values.records.trim() === "none"
        ? []
        : values.records
            .split(",")
            .map((n) => n.trim())
            .filter((n) => n !== "");
  let replicator: Replicator;
  let compactor: Compactor | undefined;
  try {
    replicator = createReplicator({
      servers,
      ...(ctx.collections === undefined ? {} : { collections: ctx.collections }),
      intervalMs,
      lostAllAfterMs,
      ...(records.length === 0 ? {} : { records }),
      logger: log,
      scheduler: ctx.scheduler,
    });
    compactor =
      compactMs === undefined
        ? undefined
        : createCompactor({ servers, intervalMs: compactMs, expiryMs, logger: log });
  } catch (e) {
    // An unusable server URL (`config/invalid`) and the like: a configuration error.
    log.error(`[nxs-replicator] exit 2: ${isNxsError(e) ? `${e.code}: ` : ""}${(e as Error).message}`);
    return ReplicatorExitCode.Usage;
  }
  let fatal: ((error: NxsError) => void) | undefined;
  const lost = new Promise<NxsError>((resolve) => {
    fatal = resolve;
  });
  // The replicator has logged the error itself (with each server and why): only the outcome is said here.
  replicator.on("fatal", ({ error }) => fatal?.(error));
  replicator.on("sync", (s) => {
    if (s.copied > 0) log.info(`[nxs-replicator] anti-entropy copied ${s.copied}`);
  });
  try {
    await replicator.start();
  } catch (e) {
    compactor?.stop();
    await replicator.stop();
    if (isNxsError(e) && e.code !== ErrorCode.TransportUnavailable && e.code !== ErrorCode.Aborted) {
      // start() rejects only when every server refused the login; the replicator did not log it.
      log.error(`[nxs-replicator] exit 3: ${e.code}: ${e.message}`);
      return ReplicatorExitCode.LoginRefused;
    }
    throw e;
  }
  compactor?.start();
  log.info(`[nxs-replicator] replicating between ${urls.join(", ")}`);
  const stopped = new Promise<undefined>((resolve) => {
    if (ctx.signal.aborted) resolve(undefined);
    else ctx.signal.addEventListener("abort", () => resolve(undefined), { once: true });
  });
  const error = await Promise.race([stopped, lost]);
  compactor?.stop();
  await replicator.stop();
  if (error !== undefined) {
    log.error(
      `[nxs-replicator] exit 4: no server usable for longer than ${lostAllAfterMs ?? 60_000} ms (--lost-all-after)`,
    );
    return ReplicatorExitCode.LostAll;
  }
  log.info("[nxs-replicator] stopped");
  return ReplicatorExitCode.Stopped;
}
