import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, chmod, mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { inflateRawSync } from "node:zlib";
import { HarnessError } from "./errors.js";

/** The PocketBase version nxs-sync is pinned to. */
export const DEFAULT_POCKETBASE_VERSION = "v0.39.11";

/** The lowest Go release that builds the pinned PocketBase (its go.mod says `go 1.25.0`). */
export const MIN_GO_VERSION = "1.25";

/** Where a resolved binary came from. */
export type PocketBaseBinarySource = "env" | "cache" | "go" | "download";

/** A PocketBase binary that answered `--version` with the requested version. */
export interface ResolvedPocketBaseBinary {
  /** Absolute path of the executable. */
  path: string;
  /** The version it reported, e.g. `v0.39.11`. */
  version: string;
  /** Which step of the resolution order produced it. */
  source: PocketBaseBinarySource;
}

/** Options of {@link ensurePocketBaseBinary}. */
export interface EnsurePocketBaseBinaryOptions {
  /** PocketBase tag to resolve (default {@link DEFAULT_POCKETBASE_VERSION}). */
  version?: string;
  /** Environment to read `POCKETBASE_BIN`, cache dirs and `PATH` from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Cache root; default {@link pocketBaseCacheDir}. */
  cacheDir?: string;
  /** The Go command to build with (default `go` on PATH). */
  goCommand?: string;
  /** Try `go install` (default true). */
  allowGo?: boolean;
  /** Try the official release archive from GitHub (default true). */
  allowDownload?: boolean;
  /** Ignore `POCKETBASE_BIN` and the cache and build/download again (default false). */
  force?: boolean;
  /** Progress lines (default: stderr, prefixed `nxs-pocketbase:`). */
  log?: (line: string) => void;
}

const defaultLog = (line: string) => process.stderr.write(`nxs-pocketbase: ${line}\n`);

/**
 * The per-user cache root of nxs-sync, outside any repository:
 * `$NXS_SYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/nxs-sync`, else `~/.cache/nxs-sync`.
 *
 * @param env - environment to read (default `process.env`)
 * @returns an absolute directory path (not created)
 */
export function pocketBaseCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NXS_SYNC_CACHE_DIR) return env.NXS_SYNC_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "nxs-sync");
  return join(homedir(), ".cache", "nxs-sync");
}

/**
 * Where the cached build of `version` lives: `<cache>/pocketbase/<version>/pocketbase`.
 *
 * @param version - a PocketBase tag such as `v0.39.11`
 * @param cacheDir - cache root (default {@link pocketBaseCacheDir})
 * @returns the absolute path of the cached executable
 */
export function cachedPocketBasePath(
  version: string = DEFAULT_POCKETBASE_VERSION,
  cacheDir?: string,
): string {
  const exe = process.platform === "win32" ? "pocketbase.exe" : "pocketbase";
  return join(cacheDir ?? pocketBaseCacheDir(), "pocketbase", version, exe);
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: opts.env, timeout: opts.timeoutMs, cwd: opts.cwd, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        const extra = error && typeof error.code !== "number" ? `${error.message}\n` : "";
        resolve({ code, stdout: String(stdout), stderr: extra + String(stderr) });
      },
    );
  });
}

/**
 * Runs `<bin> --version` and returns the version it reports (`pocketbase version v0.39.11` → `v0.39.11`).
 *
 * @param bin - path of a PocketBase executable
 * @returns the reported version string
 * @throws HarnessError `harness/binary-invalid` when it does not run or prints something else
 */
export async function readPocketBaseVersion(bin: string): Promise<string> {
  const res = await run(bin, ["--version"], { timeoutMs: 15_000, env: { ...process.env } });
  const match = /version\s+(\S+)/.exec(res.stdout);
  if (res.code !== 0 || !match?.[1]) {
    throw new HarnessError(
      "harness/binary-invalid",
      `${bin} --version failed (exit ${res.code}): ${(res.stdout + res.stderr).trim().slice(0, 500)}`,
    );
  }
  return match[1];
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function verify(path: string, version: string): Promise<void> {
  const reported = await readPocketBaseVersion(path);
  if (reported !== version) {
    throw new HarnessError(
      "harness/binary-invalid",
      `${path} reports PocketBase ${reported}, but ${version} is required`,
    );
  }
}

/** Compares dotted numeric versions: `goVersionAtLeast("1.26.8", "1.25")` is true. */
function versionAtLeast(actual: string, min: string): boolean {
  const a = actual.split(".").map((p) => Number.parseInt(p, 10) || 0);
  const b = min.split(".").map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** An exclusive lock file; stale when its owner pid is gone or it is older than `staleMs`. */
async function withLock<T>(lockPath: string, fn: () => Promise<T>, log: (l: string) => void): Promise<T> {
  const staleMs = 20 * 60_000;
  const deadline = Date.now() + 25 * 60_000;
  let announced = false;
  for (;;) {
    try {
      const handle = await open(lockPath, "wx");
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      let stale = false;
      try {
        const [content, info] = await Promise.all([readFile(lockPath, "utf8"), stat(lockPath)]);
        const pid = Number.parseInt(content, 10);
        if (Date.now() - info.mtimeMs > staleMs) stale = true;
        else if (pid > 0) {
          try {
            process.kill(pid, 0);
          } catch (e) {
            stale = (e as NodeJS.ErrnoException).code === "ESRCH";
          }
        }
      } catch {
        // The lock vanished between open and read: retry at once.
        continue;
      }
      if (stale) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (!announced) {
        log(`another process is building (lock ${lockPath}); waiting`);
        announced = true;
      }
      if (Date.now() > deadline) {
        throw new HarnessError("harness/timeout", `timed out waiting for the build lock ${lockPath}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function buildWithGo(
  version: string,
  target: string,
  goCommand: string,
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
): Promise<void> {
  const goVersion = await run(goCommand, ["env", "GOVERSION"], { env, timeoutMs: 30_000 });
  if (goVersion.code !== 0) {
    throw new Error(
      `\`${goCommand} env GOVERSION\` failed: ${goVersion.stderr.trim() || "go not found on PATH"}`,
    );
  }
  const raw = goVersion.stdout.trim(); // e.g. go1.26.8
  const numeric = raw.replace(/^go/, "");
  if (!versionAtLeast(numeric, MIN_GO_VERSION)) {
    throw new Error(`found ${raw}, but PocketBase ${version} needs Go >= ${MIN_GO_VERSION}`);
  }
  const gobin = join(target, "..", `.gobin-${randomBytes(4).toString("hex")}`);
  await mkdir(gobin, { recursive: true });
  const buildEnv: NodeJS.ProcessEnv = { ...env, CGO_ENABLED: "0", GOTOOLCHAIN: "local", GOBIN: gobin };
  // PocketBase v0.39.x crashes when built with Go 1.27's encoding/json/v2 (pocketbase#7811).
  if (versionAtLeast(numeric, "1.27") && version.startsWith("v0.39.")) buildEnv.GOEXPERIMENT = "nojsonv2";
  const args = [
    "install",
    "-ldflags",
    `-s -w -X github.com/pocketbase/pocketbase.Version=${version}`,
    `github.com/pocketbase/pocketbase/examples/base@${version}`,
  ];
  log(`building PocketBase ${version} with ${raw}: CGO_ENABLED=0 GOTOOLCHAIN=local go ${args.join(" ")}`);
  const started = Date.now();
  try {
    const res = await run(goCommand, args, { env: buildEnv, timeoutMs: 20 * 60_000 });
    if (res.code !== 0)
      throw new Error(`go install failed (exit ${res.code}):\n${res.stderr.trim().slice(-2000)}`);
    const built = join(gobin, process.platform === "win32" ? "base.exe" : "base");
    if (!(await isExecutable(built))) throw new Error(`go install produced no ${built}`);
    await verify(built, version);
    await rename(built, target); // same filesystem: atomic
    log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await rm(gobin, { recursive: true, force: true });
  }
}

/**
 * The official release archive name for a platform, e.g. `pocketbase_0.39.11_linux_amd64.zip`.
 *
 * @param version - PocketBase tag (default {@link DEFAULT_POCKETBASE_VERSION})
 * @param platform - Node platform (default `process.platform`)
 * @param arch - Node architecture (default `process.arch`)
 * @returns the asset file name on the GitHub release
 * @throws Error when PocketBase publishes no build for that platform
 */
export function pocketBaseReleaseAsset(
  version: string = DEFAULT_POCKETBASE_VERSION,
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): string {
  const os = platform === "win32" ? "windows" : platform;
  const archMap: Record<string, string> = {
    x64: "amd64",
    arm64: "arm64",
    arm: "armv7",
    ppc64: "ppc64le",
    s390x: "s390x",
  };
  const a = archMap[arch];
  if (!a || !["linux", "darwin", "windows"].includes(os)) {
    throw new Error(`no official PocketBase release for ${platform}/${arch}`);
  }
  return `pocketbase_${version.replace(/^v/, "")}_${os}_${a}.zip`;
}

/**
 * Extracts one entry from a zip archive (stored or deflated), reading the central directory.
 * @internal exported for tests
 */
export function extractZipEntry(zip: Buffer, wanted: (name: string) => boolean): Buffer {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65_557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("not a zip archive (no end of central directory)");
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error("corrupt zip central directory");
    const method = zip.readUInt16LE(p + 10);
    const compressed = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString("utf8", p + 46, p + 46 + nameLen);
    if (wanted(name)) {
      const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(dataStart, dataStart + compressed);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`unsupported zip compression method ${method}`);
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  throw new Error("the archive has no pocketbase executable");
}

async function download(version: string, target: string, log: (l: string) => void): Promise<void> {
  const asset = pocketBaseReleaseAsset(version);
  const base = `https://github.com/pocketbase/pocketbase/releases/download/${version}`;
  log(`downloading ${base}/${asset}`);
  const get = async (url: string) => {
    const res = await fetch(url, { signal: AbortSignal.timeout(180_000), redirect: "follow" });
    if (!res.ok) throw new Error(`GET ${url} → HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const zip = await get(`${base}/${asset}`);
  const sums = (await get(`${base}/checksums.txt`)).toString("utf8");
  const expected = sums
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .find((parts) => parts[1] === asset)?.[0];
  const actual = createHash("sha256").update(zip).digest("hex");
  if (!expected) throw new Error(`checksums.txt lists no ${asset}`);
  if (expected !== actual)
    throw new Error(`sha256 mismatch for ${asset}: expected ${expected}, got ${actual}`);
  const exe = extractZipEntry(zip, (n) => n === "pocketbase" || n === "pocketbase.exe");
  const tmp = `${target}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, exe, { mode: 0o755 });
  await chmod(tmp, 0o755);
  try {
    await verify(tmp, version);
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

const memo = new Map<string, Promise<ResolvedPocketBaseBinary>>();

/**
 * Resolves a PocketBase executable of `version`, building or downloading it at most once per machine.
 *
 * Order: `$POCKETBASE_BIN`; the per-user cache (`<cache>/pocketbase/<version>/pocketbase`); `go install`
 * of `github.com/pocketbase/pocketbase/examples/base@<version>` with `CGO_ENABLED=0 GOTOOLCHAIN=local` and the
 * version ldflag, moved into the cache atomically under a lock; else the official release zip (checksum
 * verified). Each candidate must answer `--version` with `version`.
 *
 * @param options - version, environment, cache dir, which fallbacks are allowed, logger
 * @returns the binary's path, version and source
 * @throws HarnessError `harness/binary-invalid` when `$POCKETBASE_BIN` is set but unusable;
 *   `harness/binary-not-found` when every step failed (the message lists each attempt and the fixes)
 * @example
 * ```ts
 * const { path } = await ensurePocketBaseBinary(); // v0.39.11
 * ```
 */
export function ensurePocketBaseBinary(
  options: EnsurePocketBaseBinaryOptions = {},
): Promise<ResolvedPocketBaseBinary> {
  const env = options.env ?? process.env;
  const version = options.version ?? DEFAULT_POCKETBASE_VERSION;
  const key = JSON.stringify([
    version,
    env.POCKETBASE_BIN ?? "",
    options.cacheDir ?? pocketBaseCacheDir(env),
    options.goCommand ?? "go",
    options.allowGo ?? true,
    options.allowDownload ?? true,
  ]);
  if (options.force || options.env || options.log) return resolveBinary(options);
  let pending = memo.get(key);
  if (!pending) {
    pending = resolveBinary(options);
    memo.set(key, pending);
    pending.catch(() => memo.delete(key));
  }
  return pending;
}

async function resolveBinary(options: EnsurePocketBaseBinaryOptions): Promise<ResolvedPocketBaseBinary> {
  const env = options.env ?? process.env;
  const version = options.version ?? DEFAULT_POCKETBASE_VERSION;
  const log = options.log ?? defaultLog;
  const cacheDir = options.cacheDir ?? pocketBaseCacheDir(env);
  const target = cachedPocketBasePath(version, cacheDir);
  const attempts: string[] = [];

  const fromEnv = env.POCKETBASE_BIN;
  if (fromEnv && !options.force) {
    if (!(await isExecutable(fromEnv))) {
      throw new HarnessError(
        "harness/binary-invalid",
        `POCKETBASE_BIN=${fromEnv} is not an executable file. Fix: point it at a PocketBase ${version} binary, ` +
          `or unset it to use the cache / go install (npm run pocketbase:install).`,
      );
    }
    try {
      await verify(fromEnv, version);
    } catch (error) {
      throw new HarnessError(
        "harness/binary-invalid",
        `POCKETBASE_BIN=${fromEnv} is unusable: ${(error as Error).message}. Fix: point it at a PocketBase ${version} ` +
          `binary, or unset it.`,
        { cause: error },
      );
    }
    return { path: fromEnv, version, source: "env" };
  }
  attempts.push(`1. $POCKETBASE_BIN: not set`);

  const checkCache = async (): Promise<boolean> => {
    if (!(await isExecutable(target))) return false;
    try {
      await verify(target, version);
      return true;
    } catch (error) {
      log(`ignoring the cached binary ${target}: ${(error as Error).message}`);
      await rm(target, { force: true });
      return false;
    }
  };
  if (!options.force && (await checkCache())) return { path: target, version, source: "cache" };
  attempts.push(`2. cache ${target}: ${options.force ? "skipped (force)" : "not there"}`);

  await mkdir(join(target, ".."), { recursive: true });
  return withLock(
    `${target}.lock`,
    async () => {
      // Another process may have finished the build while this one waited for the lock.
      if (!options.force && (await checkCache())) return { path: target, version, source: "cache" as const };
      if (options.allowGo ?? true) {
        try {
          await buildWithGo(version, target, options.goCommand ?? "go", env, log);
          return { path: target, version, source: "go" as const };
        } catch (error) {
          attempts.push(`3. go install: ${(error as Error).message.split("\n").slice(0, 6).join("\n   ")}`);
        }
      } else attempts.push("3. go install: disabled");
      if (options.allowDownload ?? true) {
        try {
          await download(version, target, log);
          return { path: target, version, source: "download" as const };
        } catch (error) {
          const cause = (error as Error).cause as Error | undefined;
          attempts.push(
            `4. release download: ${(error as Error).message}${cause ? ` (${cause.message})` : ""}`,
          );
        }
      } else attempts.push("4. release download: disabled");
      throw new HarnessError(
        "harness/binary-not-found",
        [
          `No PocketBase ${version} binary could be resolved. Tried:`,
          ...attempts.map((a) => `  ${a}`),
          "Fix one of:",
          `  - set POCKETBASE_BIN to a PocketBase ${version} executable;`,
          `  - install Go >= ${MIN_GO_VERSION} (https://go.dev/dl/) and run \`npm run pocketbase:install\` (needs the Go module proxy or a warm module cache);`,
          `  - download ${safeAsset(version)} from https://github.com/pocketbase/pocketbase/releases/tag/${version} and unzip it to ${target};`,
          `  - NXS_SYNC_CACHE_DIR / XDG_CACHE_HOME move the cache (now ${cacheDir}).`,
        ].join("\n"),
      );
    },
    log,
  );
}

function safeAsset(version: string): string {
  try {
    return pocketBaseReleaseAsset(version);
  } catch {
    return "the release archive for your platform";
  }
}
