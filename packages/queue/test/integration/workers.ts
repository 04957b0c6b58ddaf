// Spawns worker-process.ts children and collects what they report.
import { type ChildProcess, fork } from "node:child_process";
import { waitFor } from "@nxs-sync/testing";
import { here } from "./servers.js";
import type { WorkerConfig, WorkerMessage } from "./worker-process.js";

export interface WorkerChild {
  readonly proc: ChildProcess;
  readonly messages: WorkerMessage[];
  /** Waits until a message matches. */
  until(pred: (m: WorkerMessage) => boolean, what: string, timeoutMs?: number): Promise<WorkerMessage>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

const children: ChildProcess[] = [];

/** Forks one worker (`node --import tsx`). */
export function spawnWorker(config: WorkerConfig, sink?: WorkerMessage[]): WorkerChild {
  const proc = fork(here("./worker-process.ts"), [JSON.stringify(config)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(proc);
  const messages: WorkerMessage[] = [];
  proc.on("message", (m: WorkerMessage) => {
    messages.push(m);
    sink?.push(m);
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return {
    proc,
    messages,
    exited,
    until: (pred, what, timeoutMs = 30_000) =>
      waitFor(() => messages.find(pred), { timeoutMs, intervalMs: 20, description: what }),
  };
}

/** Kills every child still running. */
export function killWorkers(): void {
  for (const p of children.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}
