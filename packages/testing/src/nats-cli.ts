#!/usr/bin/env node
/**
 * `nats:install`: resolve the pinned nats-server binary from the command line (the npm script
 * `npm run nats:install`, and a provisioning line of `.ci/run`).
 *
 * ```
 * tsx packages/testing/src/nats-cli.ts install [--force]   # resolve (build once), print it
 * tsx packages/testing/src/nats-cli.ts path                 # print only the path
 * ```
 * @module
 */
import { ensureNatsServerBinary } from "./nats-binary.js";

const usage = "usage: nats-cli <install|path> [--force]";

/**
 * Runs the CLI.
 * @param argv - Arguments after the script name.
 * @returns The process exit code.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const force = rest.includes("--force");
  if (command !== "install" && command !== "path") {
    process.stderr.write(`${usage}\n`);
    return command === undefined ? 0 : 2;
  }
  try {
    const bin = await ensureNatsServerBinary({ force });
    if (command === "path") process.stdout.write(`${bin.path}\n`);
    else process.stdout.write(`nats-server ${bin.version} (${bin.source}): ${bin.path}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
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
