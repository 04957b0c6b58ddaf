import { type ChildProcess, execFile, spawn } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type PocketBase from "pocketbase";
import {
  copyHookFiles,
  nxsHooksDirFor,
  prepareServer,
  randomPassword,
  SUPERUSER_MIGRATION_FILE,
  type SuperuserSession,
  sessionClient,
  shortId,
  superuserMigration,
  superuserMigrationOutcome,
  waitForHealth,
} from "./admin.js";
import { HarnessError } from "./errors.js";
import { ensurePocketBaseBinary } from "./pocketbase-binary.js";
import type { CommonPocketBaseOptions, PocketBaseServer, Superuser } from "./types.js";

/** Options of {@link startPocketBase}. */
export interface ProcessPocketBaseOptions extends CommonPocketBaseOptions {
  /** Executable to run; default {@link ensurePocketBaseBinary} (`$POCKETBASE_BIN`, cache, go install…). */
  bin?: string;
  /** Port on 127.0.0.1 (default: a free one). */
  port?: number;
  /**
   * Parent of the temp dir (default `$NXS_PB_TEST_DATA_DIR` or the OS temp dir). The server's files live in
   * `<parent>/nxs-pb-<name>-XXXX/{pb_data,pocketbase.log}`.
   */
  tmpDir?: string;
  /** Run with `--dev` (logs every SQL statement; default false). */
  dev?: boolean;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
}

/** A PocketBase child process on 127.0.0.1 (see {@link PocketBaseServer}). */
export interface ProcessPocketBase extends PocketBaseServer {
  readonly mode: "process";
  /** The port on 127.0.0.1 (the same after every restart). */
  readonly port: number;
  /** The `--dir` of the server. */
  readonly dataDir: string;
  /** The temp dir holding `pb_data` and `pocketbase.log`. */
  readonly rootDir: string;
  /** Pid of the current server process (undefined while stopped). */
  readonly pid: number | undefined;
}

const MAX_LOG_BYTES = 4 * 1024 * 1024;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Never leave servers behind when the test worker exits. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Finds a free TCP port on `host` by binding port 0.
 *
 * @param host - interface to probe (default 127.0.0.1)
 * @returns a port that was free a moment ago
 */
export function findFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no port"))));
    });
  });
}

function runOnce(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { env, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${bin} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(String(stdout) + String(stderr));
    });
  });
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()));

/**
 * Starts a PocketBase server as a child process: a temp `--dir`, a free port on 127.0.0.1,
 * `--automigrate=false`, `--hooksWatch=false`, the nxs-sync `pb_hooks` bundle plus `hooksDir` and `hookFiles` copied into
 * `<rootDir>/pb_hooks` (see `nxsHooks`), a superuser created before start by a one-shot migration (a 0600 file
 * applied with `migrate up` and deleted: the password is on no command line), the batch
 * API switched on, readiness by polling `/api/health`.
 *
 * @param options - version, binary, superuser, batch settings, migrations/hooks dirs, port, timeouts
 * @returns a handle: `url`, `superuser`, `client()`, `stop`/`kill`/`restart`/`pause`/`resume`, `logs`, `destroy`
 * @throws HarnessError `harness/start-failed` (with the server log) when it does not become healthy in time;
 *   `harness/binary-not-found` when no binary can be resolved
 * @example
 * ```ts
 * const pb = await startPocketBase();
 * await pb.client().collections.create({ name: "notes", type: "base", fields: [{ name: "text", type: "text" }] });
 * await pb.destroy();
 * ```
 */
export async function startPocketBase(options: ProcessPocketBaseOptions = {}): Promise<ProcessPocketBase> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      // Another process took the free port between the probe and the bind: try another one.
      const clash = /address already in use/i.test((error as Error).message);
      if (!clash || options.port !== undefined || attempt >= 3) throw error;
    }
  }
}

async function startOnce(options: ProcessPocketBaseOptions): Promise<ProcessPocketBase> {
  installExitHook();
  const bin = options.bin ?? (await ensurePocketBaseBinary({ version: options.version })).path;
  const name = options.name ?? `pb-${shortId()}`;
  const host = "127.0.0.1";
  const port = options.port ?? (await findFreePort(host));
  const url = `http://${host}:${port}`;
  const nxsHooks = nxsHooksDirFor(options.nxsHooks);
  const parent = options.tmpDir ?? process.env.NXS_PB_TEST_DATA_DIR ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  const rootDir = await mkdtemp(join(parent, `nxs-pb-${name.replace(/[^\w.-]/g, "_")}-`));
  const dataDir = join(rootDir, "pb_data");
  const logFile = join(rootDir, "pocketbase.log");
  const superuser: Superuser = {
    email: options.superuser?.email ?? "admin@nxs-sync.test",
    password: options.superuser?.password ?? randomPassword(),
  };
  const env = { ...process.env, ...options.env };
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  // The server's hooks dir is its own: the nxs-sync bundle plus the caller's hooks, copied once.
  const hooksDir = join(rootDir, "pb_hooks");
  await copyHookFiles(hooksDir, [nxsHooks, options.hooksDir], options.hookFiles);
  const dirArgs = [
    `--dir=${dataDir}`,
    `--dev=${options.dev ? "true" : "false"}`,
    `--migrationsDir=${options.migrationsDir ?? join(rootDir, "pb_migrations")}`,
    `--hooksDir=${hooksDir}`,
  ];
  const serveArgs = [
    "serve",
    `--http=${host}:${port}`,
    "--automigrate=false",
    // The copied hooks never change; a change would restart the server in place (execve).
    "--hooksWatch=false",
    ...dirArgs,
    ...(options.extraArgs ?? []),
  ];

  let chunks: Buffer[] = [];
  let logBytes = 0;
  const record = (chunk: Buffer) => {
    chunks.push(chunk);
    logBytes += chunk.length;
    while (logBytes > MAX_LOG_BYTES && chunks.length > 1) logBytes -= chunks.shift()?.length ?? 0;
    try {
      appendFileSync(logFile, chunk);
    } catch {
      // the temp dir is gone (destroyed): memory only
    }
  };
  const note = (line: string) => record(Buffer.from(`[nxs-harness ${new Date().toISOString()}] ${line}\n`));
  const logsText = () => Buffer.concat(chunks).toString("utf8");

  let child: ChildProcess | undefined;
  let paused = false;
  let session: SuperuserSession | undefined;
  let destroyed = false;

  const spawnServer = async (): Promise<void> => {
    note(`starting: ${bin} ${serveArgs.join(" ")}`);
    const proc = spawn(bin, serveArgs, { env, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    live.add(proc);
    proc.stdout?.on("data", record);
    proc.stderr?.on("data", record);
    let spawnError: Error | undefined;
    proc.on("error", (error) => {
      spawnError = error;
    });
    proc.on("exit", (code, signal) => {
      live.delete(proc);
      note(`exited (code ${code}, signal ${signal})`);
    });
    await waitForHealth(url, timeoutMs, () => {
      if (spawnError) return `spawn failed: ${spawnError.message}`;
      if (proc.exitCode !== null || proc.signalCode !== null) {
        return `the server exited during start (code ${proc.exitCode}, signal ${proc.signalCode})`;
      }
      return undefined;
    });
  };

  const stopChild = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      if (paused && signal !== "SIGKILL") proc.kill("SIGCONT");
      proc.kill(signal);
      if (signal !== "SIGKILL") {
        const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
        await exited(proc);
        clearTimeout(timer);
      } else await exited(proc);
    }
    paused = false;
    child = undefined;
  };

  try {
    // The password goes in a private one-shot migration file, never on a command line (`ps` shows those).
    note(`superuser ${superuser.email} (one-shot migration)`);
    const secretDir = join(rootDir, "harness_migrations");
    await mkdir(secretDir, { mode: 0o700 });
    try {
      await writeFile(join(secretDir, SUPERUSER_MIGRATION_FILE), superuserMigration(superuser), {
        mode: 0o600,
      });
      const migrateArgs = [
        "migrate",
        "up",
        `--dir=${dataDir}`,
        "--dev=false",
        `--migrationsDir=${secretDir}`,
        `--hooksDir=${hooksDir}`,
      ];
      const output = await runOnce(bin, migrateArgs, env);
      record(Buffer.from(output));
      // No server runs yet, so nothing else writes: anything but "Applied" is an error (exit code 0 or not).
      if (superuserMigrationOutcome(output) !== "applied")
        throw new HarnessError("harness/start-failed", `superuser migration did not apply: ${output}`);
    } finally {
      await rm(secretDir, { recursive: true, force: true });
    }
    await spawnServer();
    session = await prepareServer(url, superuser, options.batch);
  } catch (error) {
    await stopChild("SIGKILL");
    const log = logsText();
    await rm(rootDir, { recursive: true, force: true });
    if (error instanceof HarnessError && error.code !== "harness/request-failed") throw error;
    throw new HarnessError(
      "harness/start-failed",
      `PocketBase "${name}" at ${url} failed to start: ${(error as Error).message}\n--- server log ---\n${log.slice(-8000)}`,
      { cause: error },
    );
  }
  const ready = session;

  const handle: ProcessPocketBase = {
    mode: "process",
    name,
    url,
    port,
    dataDir,
    rootDir,
    superuser,
    get pid() {
      return child?.pid;
    },
    get stopped() {
      return child === undefined;
    },
    client(): PocketBase {
      return sessionClient(url, ready);
    },
    async stop() {
      note("stop (SIGTERM)");
      await stopChild("SIGTERM");
    },
    async kill() {
      note("kill (SIGKILL)");
      await stopChild("SIGKILL");
    },
    async restart() {
      if (destroyed) throw new HarnessError("harness/start-failed", `PocketBase "${name}" was destroyed`);
      note("restart");
      await stopChild("SIGTERM");
      try {
        await spawnServer();
      } catch (error) {
        await stopChild("SIGKILL");
        throw new HarnessError(
          "harness/start-failed",
          `PocketBase "${name}" did not come back after restart: ${(error as Error).message}\n--- server log ---\n${logsText().slice(-8000)}`,
          { cause: error },
        );
      }
    },
    async pause() {
      if (!child) throw new HarnessError("harness/request-failed", `PocketBase "${name}" is not running`);
      note("pause (SIGSTOP)");
      child.kill("SIGSTOP");
      paused = true;
    },
    async resume() {
      if (!child) throw new HarnessError("harness/request-failed", `PocketBase "${name}" is not running`);
      note("resume (SIGCONT)");
      child.kill("SIGCONT");
      paused = false;
    },
    async logs() {
      return logsText();
    },
    async destroy(opts = {}) {
      if (destroyed) return;
      destroyed = true;
      await stopChild("SIGTERM");
      if (opts.keepData) {
        process.stderr.write(`[nxs-harness] kept data of "${name}" in ${rootDir} (log: ${logFile})\n`);
      } else {
        await rm(rootDir, { recursive: true, force: true });
      }
      chunks = [Buffer.from(logsText().slice(-64 * 1024))];
    },
    [Symbol.asyncDispose]() {
      return handle.destroy();
    },
  };
  return handle;
}
