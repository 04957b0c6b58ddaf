/**
 * Real nats-server processes for tests and benchmarks: one server with JetStream, or a 3-node
 * cluster (see `nats-cluster.ts`). Each server runs on loopback with free ports, a temp dir,
 * `sync_interval: always` (an fsync before every ack: the default of 2 minutes loses acknowledged
 * writes when a machine dies, as the Jepsen analysis of NATS 2.12.1 showed), and can be killed,
 * paused (SIGSTOP/SIGCONT), restarted on its data and restarted in lame-duck mode.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HarnessError } from "./errors.js";
import { ensureNatsServerBinary } from "./nats-binary.js";
import { findFreePort } from "./pocketbase-process.js";

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** The server's name (`server_name`; default `nxs-<random>`). */
  readonly name?: string;
  /** Executable (default {@link ensureNatsServerBinary}). */
  readonly bin?: string;
  /** Client port on 127.0.0.1 (default a free one). */
  readonly port?: number;
  /** Monitoring port on 127.0.0.1 (default a free one): `/healthz`, `/jsz`. */
  readonly httpPort?: number;
  /** Parent of the temp dir (default the OS temp dir). */
  readonly tmpDir?: string;
  /** JetStream `sync_interval` (default `always`). */
  readonly syncInterval?: string;
  /** JetStream `max_memory_store` (default `256MB`). */
  readonly maxMemoryStore?: string;
  /** JetStream `max_file_store` (default `2GB`). */
  readonly maxFileStore?: string;
  /** Lines appended to the config file (a `cluster { … }` block, limits). */
  readonly extraConfig?: string;
  /** Extra environment (e.g. `GOMEMLIMIT`). */
  readonly env?: NodeJS.ProcessEnv;
  /** How long a start may take to answer `/healthz` (default 30 000 ms). */
  readonly readyTimeoutMs?: number;
  /** Wait for `/healthz` at start (default true; a cluster node waits for its peers instead). */
  readonly waitReady?: boolean;
}

/** A nats-server child process. */
export interface NatsServer {
  /** `server_name`. */
  readonly name: string;
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** `http://127.0.0.1:<httpPort>` (monitoring). */
  readonly monitorUrl: string;
  /** The temp dir (config, log, JetStream store). */
  readonly dir: string;
  /** Pid of the running process (undefined while stopped). */
  readonly pid: number | undefined;
  /** Whether a process runs (maybe paused). */
  readonly running: boolean;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP: the process freezes, its sockets stay open. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Starts the process again on the same ports and data (after kill or stop). */
  start(): Promise<void>;
  /** Kill (when running) then start: a crash and a restart on the same data. */
  restart(): Promise<void>;
  /**
   * Lame-duck restart: SIGUSR2 (the server stops accepting, moves its leaders away, then exits
   * after `lame_duck_duration`), then start again.
   */
  lameDuckRestart(): Promise<void>;
  /** SIGTERM and wait (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** The tail of the server's log (for failure messages). */
  logs(): Promise<string>;
  /** Stops the server and deletes its dir. */
  destroy(): Promise<void>;
}

const exited = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });

/**
 * Polls `GET <monitorUrl>/healthz` until it answers 200.
 * @param monitorUrl - The server's monitoring URL.
 * @param timeoutMs - The bound of the wait.
 * @param path - The health path (default `/healthz`).
 * @param gone - Stops the wait early (the process exited).
 * @throws HarnessError `harness/timeout` when it never does.
 */
export async function waitForNatsHealth(
  monitorUrl: string,
  timeoutMs: number,
  path = "/healthz",
  gone: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline && !gone()) {
    try {
      const res = await fetch(`${monitorUrl}${path}`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new HarnessError("harness/timeout", `${monitorUrl}${path} not healthy in ${timeoutMs} ms: ${last}`, {
    retryable: true,
  });
}

/**
 * Starts a nats-server with JetStream on 127.0.0.1 and waits until `/healthz` answers.
 * @param options - Name, ports, durability and extra config.
 * @returns The running server.
 * @throws HarnessError `harness/start-failed` when it does not become healthy (its log is in the message).
 * @example
 * ```ts
 * const server = await startNatsServer();
 * console.log(server.url); // nats://127.0.0.1:<port>, JetStream with sync_interval always
 * await server.restart(); // a crash and a restart on the same data
 * await server.destroy();
 * ```
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = options.bin ?? (await ensureNatsServerBinary()).path;
  const name = options.name ?? `nxs-${Math.random().toString(36).slice(2, 8)}`;
  const port = options.port ?? (await findFreePort());
  const httpPort = options.httpPort ?? (await findFreePort());
  const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), `nxs-nats-${name}-`));
  const configFile = join(dir, "server.conf");
  const logFile = join(dir, "server.log");
  const config = [
    `server_name: ${JSON.stringify(name)}`,
    `listen: "127.0.0.1:${port}"`,
    `http: "127.0.0.1:${httpPort}"`,
    "lame_duck_duration: 30s",
    "lame_duck_grace_period: 1s",
    "jetstream {",
    `  store_dir: ${JSON.stringify(join(dir, "js"))}`,
    `  sync_interval: ${options.syncInterval ?? "always"}`,
    `  max_memory_store: ${options.maxMemoryStore ?? "256MB"}`,
    `  max_file_store: ${options.maxFileStore ?? "2GB"}`,
    "}",
    options.extraConfig ?? "",
  ].join("\n");
  await writeFile(configFile, `${config}\n`);
  const monitorUrl = `http://127.0.0.1:${httpPort}`;
  let child: ChildProcess | undefined;
  let log: WriteStream | undefined;

  const launch = async (): Promise<void> => {
    log ??= createWriteStream(logFile, { flags: "a" });
    const proc = spawn(bin, ["-c", configFile], {
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    // Copied chunk by chunk, never after the log ended: a pipe can still deliver a killed
    // process's last output after its exit event, when destroy() has ended the log.
    const out = log;
    const copy = (chunk: Buffer) => {
      if (!out.writableEnded && !out.destroyed) out.write(chunk);
    };
    proc.stdout?.on("data", copy);
    proc.stderr?.on("data", copy);
    // Never leave a server behind when the test worker exits.
    const killOnExit = () => proc.kill("SIGKILL");
    process.once("exit", killOnExit);
    proc.once("exit", () => process.off("exit", killOnExit));
    child = proc;
    if (options.waitReady === false) return;
    try {
      await waitForNatsHealth(
        monitorUrl,
        options.readyTimeoutMs ?? 30_000,
        "/healthz",
        () => proc.exitCode !== null || proc.signalCode !== null,
      );
    } catch (error) {
      throw new HarnessError(
        "harness/start-failed",
        `nats-server ${name} did not become healthy: ${(error as Error).message}\n${await tail()}`,
        { cause: error },
      );
    }
  };
  const tail = async () => {
    try {
      return (await readFile(logFile, "utf8")).slice(-4000);
    } catch {
      return "";
    }
  };
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const done = exited(proc);
    if (signal !== "SIGKILL") proc.kill("SIGCONT");
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await done;
    clearTimeout(timer);
    child = undefined;
  };

  await launch();
  const server: NatsServer = {
    name,
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorUrl,
    dir,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    kill: () => kill("SIGKILL"),
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
    start: async () => {
      if (server.running) return;
      await launch();
    },
    async restart() {
      await kill("SIGKILL");
      await launch();
    },
    async lameDuckRestart() {
      // SIGUSR2 puts the server in lame-duck mode; it exits on its own after lame_duck_duration.
      await kill("SIGUSR2");
      await launch();
    },
    stop: () => kill("SIGTERM"),
    logs: tail,
    async destroy() {
      await kill("SIGTERM");
      log?.end();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
