#!/usr/bin/env node
/**
 * `nxs-pocketbase`: resolve the pinned PocketBase binary from the command line.
 *
 * ```
 * nxs-pocketbase install [--version v0.39.11] [--force] [--no-go] [--no-download]
 * nxs-pocketbase path [--version v0.39.11]     # print the path, resolving it first
 * nxs-pocketbase cache-dir                      # print the cache root
 * ```
 * @module
 */
import {
  cachedPocketBasePath,
  DEFAULT_POCKETBASE_VERSION,
  ensurePocketBaseBinary,
  pocketBaseCacheDir,
} from "./pocketbase-binary.js";

const usage = `usage: nxs-pocketbase <install|path|cache-dir> [--version ${DEFAULT_POCKETBASE_VERSION}] [--force] [--no-go] [--no-download]

  install    resolve PocketBase: $POCKETBASE_BIN, the per-user cache, go install, or the release zip
  path       like install, then print only the path (for scripts: POCKETBASE_BIN=$(nxs-pocketbase path))
  cache-dir  print the cache root ($NXS_SYNC_CACHE_DIR, $XDG_CACHE_HOME/nxs-sync or ~/.cache/nxs-sync)`;

/**
 * Runs the CLI.
 *
 * @param argv - arguments after the script name
 * @returns the process exit code
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  let version = DEFAULT_POCKETBASE_VERSION;
  let force = false;
  let allowGo = true;
  let allowDownload = true;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === "--version") version = rest[++i] ?? version;
    else if (arg?.startsWith("--version=")) version = arg.slice("--version=".length);
    else if (arg === "--force") force = true;
    else if (arg === "--no-go") allowGo = false;
    else if (arg === "--no-download") allowDownload = false;
    else {
      process.stderr.write(`unknown argument ${arg}\n${usage}\n`);
      return 2;
    }
  }
  switch (command) {
    case "install":
    case "path": {
      try {
        const bin = await ensurePocketBaseBinary({ version, force, allowGo, allowDownload });
        if (command === "path") process.stdout.write(`${bin.path}\n`);
        else process.stdout.write(`PocketBase ${bin.version} (${bin.source}): ${bin.path}\n`);
        return 0;
      } catch (error) {
        process.stderr.write(`${(error as Error).message}\n`);
        return 1;
      }
    }
    case "cache-dir":
      process.stdout.write(`${pocketBaseCacheDir()}\n(binary: ${cachedPocketBasePath(version)})\n`);
      return 0;
    default:
      process.stderr.write(`${usage}\n`);
      return command === undefined || command === "help" || command === "--help" ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = 1;
  },
);
