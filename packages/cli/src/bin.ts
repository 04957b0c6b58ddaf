#!/usr/bin/env node
import { runCli } from "./run-cli.js";

// Exit codes: see CliExitCode (`nxs-sync --help` lists them).
const controller = new AbortController();
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => controller.abort());
runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
}).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error("nxs-sync: unexpected error:", error);
    process.exit(1);
  },
);
