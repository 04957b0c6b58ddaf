/**
 * The pinned `nats-server` binary: resolved from `$NATS_SERVER_BIN`, else the per-user cache
 * (`<cache>/nats-server/<version>/nats-server`, the same root as the PocketBase binary), else built
 * once with `go install github.com/nats-io/nats-server/v2@<version>` into that cache. Idempotent:
 * a cached binary that reports the pinned version is used as is.
 * @module
 */
import { execFile } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { HarnessError } from "./errors.js";
import { pocketBaseCacheDir } from "./pocketbase-binary.js";

/** The nats-server version nxs-sync is pinned to. */
export const DEFAULT_NATS_SERVER_VERSION = "v2.15.3";

/** Where a resolved nats-server binary came from. */
export type NatsServerBinarySource = "env" | "cache" | "go";

/** A nats-server binary that answered `--version` with the requested version. */
export interface ResolvedNatsServerBinary {
  /** Absolute path of the executable. */
  readonly path: string;
  /** The version it reported, e.g. `v2.15.3`. */
  readonly version: string;
  /** Which step of the resolution order produced it. */
  readonly source: NatsServerBinarySource;
}

/** Options of {@link ensureNatsServerBinary}. */
export interface EnsureNatsServerBinaryOptions {
  /** Tag to resolve (default {@link DEFAULT_NATS_SERVER_VERSION}). */
  readonly version?: string;
  /** Environment to read `NATS_SERVER_BIN` and the cache dirs from (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Cache root (default the PocketBase binary's: `$NXS_SYNC_CACHE_DIR` or `~/.cache/nxs-sync`). */
  readonly cacheDir?: string;
  /** The Go command (default `go` on PATH). */
  readonly goCommand?: string;
  /** Ignore `NATS_SERVER_BIN` and the cache and build again (default false). */
  readonly force?: boolean;
  /** Progress lines (default: stderr, prefixed `nxs-nats:`). */
  readonly log?: (line: string) => void;
}

const defaultLog = (line: string) => process.stderr.write(`nxs-nats: ${line}\n`);

/**
 * Where the cached build of `version` lives: `<cache>/nats-server/<version>/nats-server`.
 * @param version - A nats-server tag such as `v2.15.3`.
 * @param cacheDir - Cache root (default the one of `pocketBaseCacheDir`).
 * @returns The absolute path of the cached executable.
 */
export function cachedNatsServerPath(
  version: string = DEFAULT_NATS_SERVER_VERSION,
  cacheDir?: string,
): string {
  return join(cacheDir ?? pocketBaseCacheDir(), "nats-server", version, "nats-server");
}

function run(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({
        code,
        out: `${error && typeof error.code !== "number" ? error.message : ""}${stdout}${stderr}`,
      });
    });
  });
}

/**
 * Runs `<bin> --version` (`nats-server: v2.15.3`) and returns the version.
 * @param bin - Path of a nats-server executable.
 * @returns The reported version string.
 * @throws HarnessError `harness/binary-invalid` when it does not run or prints something else.
 */
export async function readNatsServerVersion(bin: string): Promise<string> {
  const res = await run(bin, ["--version"], { ...process.env }, 15_000);
  const match = /nats-server:\s+(v\S+)/.exec(res.out);
  if (res.code !== 0 || !match?.[1]) {
    throw new HarnessError(
      "harness/binary-invalid",
      `${bin} --version failed (exit ${res.code}): ${res.out.trim().slice(0, 500)}`,
    );
  }
  return match[1];
}

async function usable(bin: string, version: string): Promise<boolean> {
  try {
    await access(bin, fsConstants.X_OK);
    return (await readNatsServerVersion(bin)) === version;
  } catch {
    return false;
  }
}

/**
 * Resolves the pinned nats-server: `$NATS_SERVER_BIN`, the cache, or a `go install` build into the
 * cache (written to a temp dir beside it and renamed, so two concurrent installs never leave a
 * half-written binary).
 * @param options - Version, env, cache dir, Go command.
 * @returns The binary, its version and where it came from.
 * @throws HarnessError `harness/binary-invalid` when `$NATS_SERVER_BIN` reports another version;
 *   `harness/binary-not-found` when nothing is cached and the Go build fails.
 * @example
 * ```ts
 * const bin = await ensureNatsServerBinary();
 * console.log(bin.path, bin.version); // ~/.cache/nxs-sync/nats-server/v2.15.3/nats-server v2.15.3
 * ```
 */
export async function ensureNatsServerBinary(
  options: EnsureNatsServerBinaryOptions = {},
): Promise<ResolvedNatsServerBinary> {
  const version = options.version ?? DEFAULT_NATS_SERVER_VERSION;
  const env = options.env ?? process.env;
  const log = options.log ?? defaultLog;
  const fromEnv = env.NATS_SERVER_BIN;
  if (fromEnv && !options.force) {
    const got = await readNatsServerVersion(fromEnv);
    if (got !== version) {
      throw new HarnessError(
        "harness/binary-invalid",
        `NATS_SERVER_BIN=${fromEnv} reports ${got}, not the pinned ${version}: unset it or point it at ${version}`,
      );
    }
    return { path: fromEnv, version, source: "env" };
  }
  const target = cachedNatsServerPath(version, options.cacheDir ?? pocketBaseCacheDir(env));
  if (!options.force && (await usable(target, version))) return { path: target, version, source: "cache" };
  const dir = join(target, "..");
  await mkdir(dir, { recursive: true });
  const gobin = await mkdtemp(join(dir, ".build-"));
  try {
    log(`building nats-server ${version} with go install (once; cached in ${dir})`);
    const res = await run(
      options.goCommand ?? "go",
      ["install", `github.com/nats-io/nats-server/v2@${version}`],
      { ...env, GOBIN: gobin, CGO_ENABLED: "0" },
      900_000,
    );
    const built = join(gobin, "nats-server");
    if (res.code !== 0 || !(await usable(built, version))) {
      throw new HarnessError(
        "harness/binary-not-found",
        `nats-server ${version}: not in $NATS_SERVER_BIN nor the cache (${target}), and go install failed ` +
          `(exit ${res.code}): ${res.out.trim().slice(-1500)}. Install Go >= 1.25 or set NATS_SERVER_BIN.`,
      );
    }
    await rename(built, target);
    return { path: target, version, source: "go" };
  } finally {
    await rm(gobin, { recursive: true, force: true });
  }
}
