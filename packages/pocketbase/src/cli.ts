import { parseArgs } from "node:util";
import type { Logger } from "@nxs-sync/core";
import { createCompactor } from "./compaction.js";
import { createReplicator } from "./replicator.js";

const USAGE = `usage: nxs-replicator --server URL --server URL [--interval MS] [--compact-interval MS] [--expiry MS]

Keeps the nxs-sync collections identical on every server (realtime + anti-entropy) and, with
--compact-interval, compacts them. Credentials of a replicator account (a record of
nxs_replicators, made by ensureNode with role "replicator") come from the environment:
NXS_NODE_EMAIL and NXS_NODE_PASSWORD. Stops on SIGINT/SIGTERM.`;

/** What {@link runReplicatorCli} needs from its environment (injectable for tests). */
export interface ReplicatorCliContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  /** Resolves (or aborts) when the process should stop. */
  readonly signal: AbortSignal;
}

/**
 * The `nxs-replicator` command: parses arguments, runs a replicator (and optionally a compactor)
 * until `signal` aborts.
 * @param argv - Arguments after the command name.
 * @param ctx - Environment, logger and stop signal.
 * @returns The exit code: 0 after a clean stop, 2 for bad usage.
 */
export async function runReplicatorCli(argv: readonly string[], ctx: ReplicatorCliContext): Promise<number> {
  let values: {
    server?: string[];
    interval?: string;
    "compact-interval"?: string;
    expiry?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        server: { type: "string", multiple: true },
        interval: { type: "string" },
        "compact-interval": { type: "string" },
        expiry: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    ctx.logger.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    ctx.logger.info(USAGE);
    return 0;
  }
  const urls = values.server ?? [];
  const email = ctx.env.NXS_NODE_EMAIL;
  const password = ctx.env.NXS_NODE_PASSWORD;
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const intervalMs = num(values.interval);
  const compactMs = num(values["compact-interval"]);
  const expiryMs = num(values.expiry);
  if (
    urls.length < 2 ||
    !email ||
    !password ||
    [intervalMs, compactMs, expiryMs].some((n) => n !== undefined && !(n > 0))
  ) {
    ctx.logger.error(USAGE);
    return 2;
  }
  const auth = { email, password };
  const servers = urls.map((url) => ({ url, auth }));
  const replicator = createReplicator({
    servers,
    intervalMs,
    logger: ctx.logger,
    onError: (e) => ctx.logger.warn(`[nxs-replicator] ${e.message}`),
  });
  replicator.on("sync", (s) => {
    if (s.copied > 0) ctx.logger.info(`[nxs-replicator] anti-entropy copied ${s.copied}`);
  });
  const compactor =
    compactMs === undefined
      ? undefined
      : createCompactor({ servers, intervalMs: compactMs, expiryMs, logger: ctx.logger });
  await replicator.start();
  compactor?.start();
  ctx.logger.info(`[nxs-replicator] replicating between ${urls.join(", ")}`);
  if (!ctx.signal.aborted) {
    await new Promise<void>((resolve) =>
      ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
    );
  }
  compactor?.stop();
  await replicator.stop();
  ctx.logger.info("[nxs-replicator] stopped");
  return 0;
}
