/**
 * The peers' servers for `npm run bench -- queue`: PostgreSQL (for pg-boss) and Redis (for BullMQ)
 * from Debian's packages, installed with apt when missing, started on loopback in a temp directory
 * and stopped after the run. Both keep their default durability: PostgreSQL fsyncs each commit;
 * Redis here runs without persistence (BullMQ's usual set-up), which favours it.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findFreePort, waitFor } from "@nxs-sync/testing";

/** A started peer server. */
export interface PeerServer {
  /** Connection string (`postgres://…`) or port. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

function aptInstall(pkg: string): void {
  console.error(`# installing ${pkg} with apt (missing)`);
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", pkg], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

function postgresBin(): string {
  const find = (): string | undefined => {
    const root = "/usr/lib/postgresql";
    if (!existsSync(root)) return undefined;
    const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(root, v, "bin", "initdb"))) return join(root, v, "bin");
    return undefined;
  };
  const found = find();
  if (found) return found;
  aptInstall("postgresql");
  const again = find();
  if (!again) throw new Error("postgresql: installed, but no /usr/lib/postgresql/*/bin/initdb");
  return again;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

/**
 * Starts a throwaway PostgreSQL cluster on loopback (as the `postgres` user when run as root).
 * @returns The server; `url` is a connection string for database `bench`.
 */
export async function startPostgres(): Promise<PeerServer> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), "nxs-bench-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]): void => {
    const full = asRoot ? ["runuser", "-u", "postgres", "--", cmd, ...args] : [cmd, ...args];
    execFileSync(full[0] as string, full.slice(1), { stdio: ["ignore", "ignore", "inherit"] });
  };
  if (asRoot) execFileSync("chown", ["postgres", dir]);
  run(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const port = await findFreePort();
  const args = [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    dir,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "max_connections=200",
  ];
  const full = asRoot
    ? ["runuser", "-u", "postgres", "--", join(bin, "postgres"), ...args]
    : [join(bin, "postgres"), ...args];
  const child = spawn(full[0] as string, full.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  await waitFor(() => log.includes("ready to accept connections"), {
    timeoutMs: 30_000,
    description: "postgres ready",
  });
  run(join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "bench"]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/bench`,
    port,
    async stop() {
      // pg_ctl stops the server itself (a signal to `runuser` would not reach it), then the child exits.
      const exited = stopChild(child, "SIGINT");
      try {
        run(join(bin, "pg_ctl"), ["-D", data, "stop", "-m", "fast", "-w"]);
      } catch {
        // Already stopping or gone.
      }
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a throwaway Redis on loopback, without persistence.
 * @returns The server (`port`).
 */
export async function startRedis(): Promise<PeerServer> {
  const has = (): boolean => {
    try {
      execFileSync("redis-server", ["--version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  if (!has()) aptInstall("redis-server");
  const port = await findFreePort();
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--maxmemory-policy",
      "noeviction",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let log = "";
  child.stdout?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  await waitFor(() => log.includes("Ready to accept connections"), {
    timeoutMs: 30_000,
    description: "redis ready",
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await stopChild(child, "SIGTERM");
    },
  };
}
