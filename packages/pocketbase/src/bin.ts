#!/usr/bin/env node
import { runReplicatorCli } from "./cli.js";

// Exit codes: see ReplicatorExitCode (0 stopped, 1 unexpected error, 2 usage, 3 login refused
// everywhere, 4 all servers lost past --lost-all-after).
const controller = new AbortController();
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => controller.abort());
runReplicatorCli(process.argv.slice(2), { env: process.env, signal: controller.signal }).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error("nxs-sync ERROR [nxs-replicator] exit 1:", error);
    process.exit(1);
  },
);
