import { ErrorCode, NxsError } from "@nxs-sync/core";
import { closeSdkClient, type FenceState, liftFence, readFence, setFence } from "@nxs-sync/pocketbase";
import { connectSuperuser } from "../connect.js";
import type { CommandEnv } from "../context.js";
import { type CredentialOptions, resolveSuperuser } from "../credentials.js";
import { CliExitCode } from "../exit-codes.js";
import { renderJson } from "../output.js";

/** Options of `nxs-sync fence`. */
export interface FenceCommandOptions extends CredentialOptions {
  readonly server: string;
  readonly set?: boolean;
  readonly lift?: boolean;
  readonly reason?: string;
  /** Seconds, as typed. */
  readonly ttl?: string;
}

const describe = (server: string, f: FenceState): string =>
  f.fenced
    ? `${server} is fenced (${f.reason}) since ${new Date(f.since).toISOString()}, until ${new Date(f.until).toISOString()}: it refuses writes of gateways and other accounts\n`
    : `${server} is not fenced: it takes writes\n`;

/**
 * `nxs-sync fence --server URL [--set | --lift]`: shows, sets or lifts a server's write fence
 * (the hook piece `fence`, see `pb_hooks/nxs-fence.pb.js` of @nxs-sync/pocketbase).
 */
export async function runFence(env: CommandEnv, options: FenceCommandOptions): Promise<CliExitCode> {
  if (options.set === true && options.lift === true)
    throw new NxsError(ErrorCode.ConfigInvalid, "--set and --lift: pick one");
  const ttl = Number(options.ttl ?? "600");
  if (!(ttl > 0))
    throw new NxsError(ErrorCode.ConfigInvalid, `--ttl ${options.ttl}: not a number of seconds above 0`);
  const superuser = await resolveSuperuser(options, env.env);
  const pb = await connectSuperuser(options.server, superuser(options.server), env.timeoutMs);
  try {
    const state =
      options.set === true
        ? await setFence(pb, { reason: options.reason ?? "maintenance", ttlMs: ttl * 1000 })
        : options.lift === true
          ? await liftFence(pb)
          : await readFence(pb);
    env.stdout.write(
      env.json ? renderJson({ server: options.server, ...state }) : describe(options.server, state),
    );
    return CliExitCode.Ok;
  } finally {
    closeSdkClient(pb);
  }
}
