import { ErrorCode, isNxsError, NxsError } from "@nxs-sync/core";
import { runReplicatorCli } from "@nxs-sync/pocketbase";
import { Command, CommanderError, Option } from "commander";
import { runBackup, runReseed, runRestore, runVerify } from "./commands/backup.js";
import { runFence } from "./commands/fence.js";
import { runMetrics } from "./commands/metrics.js";
import { type NodeAction, runNode } from "./commands/node.js";
import { runHooksWrite, runSetup } from "./commands/setup.js";
import { runStatus } from "./commands/status.js";
import type { CliContext, CommandEnv } from "./context.js";
import { CliExitCode, exitCodeOf } from "./exit-codes.js";
import { renderJson } from "./output.js";
import { loadProjectRegistry, recordsOption } from "./registry.js";

const EXIT_CODES_HELP = `
Exit codes:
  0  done                         4  a server did not answer (unreachable)
  1  unexpected failure           5  a backup failed its verification
  2  bad usage or configuration   6  a server is not ready (hooks bundle or schema missing)
  3  a server refused the login   7  status: the servers disagree (diverged or behind)
                                  8  status: a replicator's last round is older than --stale-after
                                  9  restore, reseed: the replicator did not complete a round in time

Credentials (superuser, for every command but replicator) come from --superuser-email and
--superuser-password, else NXS_SUPERUSER_EMAIL and NXS_SUPERUSER_PASSWORD, else --credentials FILE
({"email": "...", "password": "..."} or per server {"servers": {"<url>": {...}}}). They are never
printed. \`nxs-sync replicator\` takes the replicator's own (NXS_REPLICATOR_EMAIL, NXS_REPLICATOR_PASSWORD).
See docs/operations.md.`;

/** The write fence's options, shared by the full `restore` and `reseed`. */
const withFenceOptions = (cmd: Command): Command =>
  cmd
    .option(
      "--no-fence",
      "do not fence the server: what it acknowledged since the backup and no peer holds is lost",
    )
    .option(
      "--no-wait",
      "fence only while restoring; wait for the replicator neither before (what only this server holds is lost) nor after",
    )
    .option(
      "--drain-timeout <s>",
      "longest wait (s) for a replicator round that copies the server's records to its peers, before the restore",
      "120",
    )
    .option(
      "--catch-up-timeout <s>",
      "longest wait (s) for a replicator round that brings the restored server up to date",
      "120",
    );

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Global options, as commander parsed them. */
interface GlobalOptions {
  json?: boolean;
  timeout?: string;
  progress?: boolean;
  superuserEmail?: string;
  superuserPassword?: string;
  credentials?: string;
  records?: string;
}

/**
 * The `nxs-sync` command line as a function: parses `argv` (the arguments after the command name),
 * runs the subcommand against the servers, writes to `ctx.stdout` / `ctx.stderr`, and returns the
 * exit code (never calls `process.exit`). `nxs-sync replicator …` runs the replicator
 * (`runReplicatorCli`, same flags and exit codes as `nxs-replicator`).
 * @param argv - Arguments, e.g. `["status", "--server", url, "--json"]`.
 * @param ctx - Environment, output streams, stop signal.
 * @returns The exit code, one of {@link CliExitCode}.
 * @example
 * ```ts
 * const [a, b] = ["http://10.0.0.1:8090", "http://10.0.0.2:8090"];
 * const code = await runCli(["setup", "--server", a, "--server", b, "--identities", "ids.json"], {
 *   env: process.env, stdout: process.stdout, stderr: process.stderr, signal: AbortSignal.timeout(60_000),
 * });
 * ```
 */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<CliExitCode> {
  if (argv[0] === "replicator") {
    // `--records` of the replicator's own arguments wins over NXS_RECORDS (default users).
    const at = argv.indexOf("--records");
    const records = recordsOption(at > 0 ? argv[at + 1] : undefined, ctx.env);
    const project = await loadProjectRegistry({ records });
    return runReplicatorCli(argv.slice(1), {
      env: ctx.env,
      signal: ctx.signal,
      // The queue's and config store's collections too, when those packages are installed.
      collections: project.registry,
      records,
      ...(ctx.logger === undefined ? {} : { logger: ctx.logger }),
    });
  }
  let exit: CliExitCode = CliExitCode.Ok;
  let json = argv.includes("--json");
  const program = new Command("nxs-sync")
    .description("Set up, watch, back up and restore a fleet of nxs-sync PocketBase servers.")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    })
    .showSuggestionAfterError()
    .option("--json", "one JSON document on stdout (for scripts)")
    .option("--timeout <ms>", "per-request timeout", "10000")
    .option("--progress", "show the progress bar even when stderr is not a terminal")
    .option("--superuser-email <email>", "superuser email (else NXS_SUPERUSER_EMAIL)")
    .addOption(
      new Option(
        "--superuser-password <password>",
        "superuser password (else NXS_SUPERUSER_PASSWORD; prefer the environment or a file)",
      ),
    )
    .option("--credentials <file>", "JSON file with the superuser credentials")
    .option(
      "--records <list>",
      "collections replicated through the records piece, comma-separated (accounts and app data; else NXS_RECORDS; default users; none: off)",
    )
    .addHelpText("after", EXIT_CODES_HELP);

  const envOf = (cmd: Command): CommandEnv & Omit<GlobalOptions, "records"> => {
    const { records, ...g } = cmd.optsWithGlobals() as GlobalOptions;
    json = g.json === true;
    const timeoutMs = Number(g.timeout ?? "10000");
    return {
      ...ctx,
      ...g,
      json,
      timeoutMs: Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 10_000,
      progress: g.progress === true,
      records: recordsOption(records, ctx.env),
      note: (line) => {
        ctx.stderr.write(`${line}\n`);
      },
    };
  };

  program
    .command("setup")
    .description(
      "make servers ready in one idempotent command: schema, batch and rate limits, node and replicator identities (same ids everywhere), hooks check",
    )
    .requiredOption("--server <url>", "a server (repeat for each)", collect)
    .option(
      "--identities <file>",
      "identities file: read when it exists, else generated and written (0600)",
      "nxs-identities.json",
    )
    .option(
      "--node <name>",
      "gateway to generate when the identities file does not exist (repeat; default node-1)",
      collect,
    )
    .option("--dry-run", "print what would change, change nothing")
    .action(async (opts, cmd: Command) => {
      const env = envOf(cmd);
      exit = await runSetup(env, { ...env, ...opts });
    });

  program
    .command("status")
    .description(
      "one table for the fleet (reads only): each server (reachable, login, hooks and schema versions, jobs per state), each doc (version vector, changes behind, digest, snapshot age, frontier), each replica (last ack, lag), each replicator (last round, stale), config heads per environment",
    )
    .requiredOption("--server <url>", "a server (repeat for each)", collect)
    .option("--watch", "refresh until interrupted")
    .option("--interval <ms>", "refresh interval of --watch", "2000")
    .option(
      "--stale-after <s>",
      "a replicator whose last round is older than this many seconds is stale (exit 8)",
      "120",
    )
    .action(async (opts, cmd: Command) => {
      const env = envOf(cmd);
      exit = await runStatus(env, { ...env, ...opts });
    });

  program
    .command("metrics")
    .description(
      "every node's health from the first server that answers (@nxs-sync/metrics): CPU, memory and disk against the 75% cap, RSS, the last hour as sparklines, the alerts firing",
    )
    .requiredOption("--server <url>", "a server (repeat: the first that answers is read)", collect)
    .option("--node <name>", "only this node (repeat)", collect)
    .action(async (opts, cmd: Command) => {
      const env = envOf(cmd);
      exit = await runMetrics(env, { ...env, ...opts });
    });

  program
    .command("backup")
    .description(
      "a verified backup of one server into a directory: full (PocketBase's backups API; writes to that server wait while it zips) or --logical (the project's collections through the record API; no write waits); verified after it is written (zip, SQLite integrity, records counted and digested) with a manifest beside it",
    )
    .requiredOption("--server <url>", "the server")
    .requiredOption("--dir <dir>", "where backups go")
    .option("--keep <n>", "keep the newest n backups of this server and kind in --dir")
    .option("--logical", "export the records through the record API instead of a full backup")
    .option("--keep-on-server", "full: leave the server's copy in its pb_data/backups")
    .option(
      "--every <ms>",
      "scheduled: back up again every <ms> until interrupted (with --keep; --json: one line per backup)",
    )
    .action(async (opts, cmd: Command) => {
      const env = envOf(cmd);
      exit = await runBackup(env, { ...env, ...opts });
    });

  program
    .command("verify <file...>")
    .description("verify backups again: they open, pass SQLite's integrity check and match their manifest")
    .action(async (files: string[], _opts, cmd: Command) => {
      exit = await runVerify(envOf(cmd), files);
    });

  withFenceOptions(program.command("restore"))
    .description(
      "put a server back from a verified backup: a .zip is uploaded and restored through the backups API (the server restarts on it; its superusers become the backup's), a .jsonl is re-imported (only records the server lacks)",
    )
    .requiredOption("--server <url>", "the server to restore")
    .requiredOption("--file <file>", "a backup written by nxs-sync backup")
    .action(async (opts, cmd: Command) => {
      const env = envOf(cmd);
      exit = await runRestore(env, { ...env, ...opts });
    });

  withFenceOptions(program.command("reseed"))
    .description(
      "rebuild a lost or empty server from its peer (a verified full backup of the peer restored onto it, or --logical)",
    )
    .requiredOption("--from <url>", "the healthy peer")
    .requiredOption("--to <url>", "the server to rebuild")
    .option(
      "--logical",
      "schema + the peer's records through the record API (run setup with the identities file first)",
    )
    .action(async (opts, cmd: Command) => {
      const env = envOf(cmd);
      exit = await runReseed(env, { ...env, ...opts });
    });

  program
    .command("fence")
    .description(
      "show, set or lift a server's write fence (maintenance): while fenced it refuses every write of gateways and other accounts with 503, so their clients use the other server; superusers and replicators still write. restore and reseed fence the server they rebuild on their own",
    )
    .requiredOption("--server <url>", "the server")
    .option("--set", "fence the server")
    .option("--lift", "lift the fence")
    .option("--reason <text>", "why (shown to refused clients)", "maintenance")
    .option("--ttl <s>", "the fence lapses by itself after this many seconds (at most a day)", "600")
    .action(async (opts, cmd: Command) => {
      const env = envOf(cmd);
      exit = await runFence(env, { ...env, ...opts });
    });

  const node = program
    .command("node")
    .description(
      "membership: add, remove, disable, enable or rotate a gateway on every server (the identities file kept in step)",
    );
  const nodeActions: readonly [NodeAction, string][] = [
    [
      "add",
      "create the gateway on every server (a new id and password in the identities file, or the ones it has)",
    ],
    [
      "remove",
      "delete the gateway's account on every server (refused when records it wrote refer to it: disable it)",
    ],
    [
      "disable",
      "lock the gateway out everywhere: an unknown password and a new token key (its sessions are refused)",
    ],
    ["enable", "give a disabled gateway its password from the identities file again"],
    [
      "rotate",
      "a new token key on every server: every session of the gateway is refused (a stolen token is dead)",
    ],
  ];
  for (const [action, description] of nodeActions) {
    const sub = node
      .command(`${action} <name>`)
      .description(description)
      .requiredOption("--server <url>", "a server (repeat for every server of the fleet)", collect)
      .option("--identities <file>", "identities file", "nxs-identities.json");
    if (action === "rotate")
      sub.option("--password", "also set a new password (written to the identities file)");
    if (action === "add")
      sub.option(
        "--role <role>",
        "gateway (a machine account of nxs_nodes), or operator (a person who reads the metrics dashboard: nxs_operators, read-only; needs @nxs-sync/metrics)",
        "gateway",
      );
    sub.action(async (name: string, opts, cmd: Command) => {
      const env = envOf(cmd);
      exit = await runNode(env, action, name, { ...env, ...opts });
    });
  }

  const hooks = program.command("hooks").description("the pb_hooks bundle of this release");
  hooks
    .command("write <dir>")
    .description("write the hooks bundle and the pieces of the installed packages into a server's --hooksDir")
    .action(async (dir: string, _opts, cmd: Command) => {
      exit = await runHooksWrite(envOf(cmd), dir);
    });

  program
    .command("replicator")
    .description(
      "run the replicator (the flags and exit codes of nxs-replicator; `nxs-sync replicator --help`)",
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      // Reached only when global options come first (`nxs-sync --json replicator …`).
      throw new NxsError(
        ErrorCode.ConfigInvalid,
        "replicator: give it first, with its own flags only (nxs-sync replicator --server URL --server URL …); see nxs-sync replicator --help",
      );
    });

  try {
    await program.parseAsync([...argv], { from: "user" });
    return exit;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" ||
        e.code === "commander.help" ||
        e.code === "commander.version"
      ) {
        return CliExitCode.Ok;
      }
      // commander printed the message already
      return CliExitCode.Usage;
    }
    const code = exitCodeOf(e);
    const message = (e as Error).message ?? String(e);
    if (json) {
      ctx.stdout.write(
        renderJson({
          ok: false,
          exitCode: code,
          error: { code: isNxsError(e) ? e.code : "unexpected", message },
        }),
      );
    }
    ctx.stderr.write(`nxs-sync: error: ${message}\n`);
    return code;
  }
}
