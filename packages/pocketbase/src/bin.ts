#!/usr/bin/env node
import { runReplicatorCli } from "./cli.js";

const controller = new AbortController();
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => controller.abort());
runReplicatorCli(process.argv.slice(2), {
  env: process.env,
  logger: console,
  signal: controller.signal,
}).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
