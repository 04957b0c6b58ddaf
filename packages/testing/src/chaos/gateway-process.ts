/**
 * A gateway of a chaos run as a real child process (`node --import tsx <worker>`), so that SIGKILL
 * and SIGSTOP of a gateway are the real thing: a killed gateway never runs `stop()`, its storage
 * handle is abandoned mid-write, its sockets are closed by the kernel. The worker script is the
 * adapter's (it builds the transport); this handle spawns it, relays its reports to the model and
 * answers the engine's questions.
 * @module
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { HarnessError } from "../errors.js";
import type { ChaosObserver } from "./model.js";
import {
  CHAOS_GATEWAY_CONFIG_ENV,
  type ChaosCommand,
  type ChaosGatewayMessage,
  type ChaosGatewayState,
} from "./protocol.js";
import type { ChaosOp } from "./workload.js";

/** Options of {@link startChaosGateway}. */
export interface ChaosGatewayOptions {
  /** The gateway's name in the run (`g1`, …). */
  readonly name: string;
  /** The worker script (TypeScript, run with `node --import tsx`). */
  readonly script: string;
  /** Working directory of the worker (its tsconfig paths resolve the workspace packages). */
  readonly cwd: string;
  /** Parent dir of the gateway's storage dirs: one per lineage (`<name>-<lineage>`). */
  readonly storageRoot: string;
  /** The worker's config for one incarnation (JSON, passed in the environment). */
  config(storageDir: string): unknown;
  /** Where writes and acks go. */
  readonly observer: ChaosObserver;
  /** Where the worker's rejected/error events go. */
  onEvent?(gateway: string, event: Extract<ChaosGatewayMessage, { t: "event" }>): void;
  /**
   * How long a start may take (default 60 000 ms: a replica restarted on empty storage waits in
   * `start()` until a server tells it what its earlier incarnation wrote).
   */
  readonly readyTimeoutMs?: number;
}

/** A running gateway process, its restarts and faults. */
export interface ChaosGateway {
  readonly name: string;
  /** A process is running (maybe stopped with SIGSTOP) and ready for ops. */
  readonly alive: boolean;
  /** Storage lineage: +1 at every restart on empty storage. */
  readonly lineage: number;
  /** Processes started so far. */
  readonly incarnations: number;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  /**
   * Starts a new process with the same replica id, on its storage (`empty: false`) or on a fresh
   * empty dir (`empty: true`), and waits until its replica started.
   */
  restart(options: { readonly empty: boolean }): Promise<void>;
  /** SIGSTOP / SIGCONT. */
  pause(): void;
  resume(): void;
  /** Sends an op to the process; false (dropped) when none is alive. */
  write(op: ChaosOp): boolean;
  /**
   * Asks the process for its doc state.
   * @throws HarnessError `harness/timeout` when no answer comes within `timeoutMs`.
   */
  state(timeoutMs?: number): Promise<ChaosGatewayState>;
  /** Graceful stop (`replica.stop()`), SIGKILL after `timeoutMs` (default 10 000). */
  stop(timeoutMs?: number): Promise<void>;
}

const gone = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    let exited = child.exitCode !== null || child.signalCode !== null;
    let disconnected = !child.connected;
    const check = () => {
      if (exited && disconnected) resolve();
    };
    child.once("exit", () => {
      exited = true;
      check();
    });
    child.once("disconnect", () => {
      disconnected = true;
      check();
    });
    check();
  });

/**
 * Starts a gateway process and waits until its replica started.
 * @param options - Name, worker script, storage, config, observer.
 * @returns The handle.
 * @throws HarnessError `harness/start-failed` when the worker exits or reports a fatal error first.
 */
export async function startChaosGateway(options: ChaosGatewayOptions): Promise<ChaosGateway> {
  let child: ChildProcess | undefined;
  let ready = false;
  let lineage = 0;
  let incarnations = 0;
  let nextRequest = 1;
  const waiting = new Map<number, (state: ChaosGatewayState) => void>();
  /** Processes the engine killed or stopped (their exit is expected). */
  const ending = new WeakSet<ChildProcess>();
  /** Ops sent and not yet reported as written, by id (the worker reports only the id back). */
  const opsInFlight = new Map<string, ChaosOp>();

  const spawnWorker = async (): Promise<void> => {
    const storageDir = join(options.storageRoot, `${options.name}-${lineage}`);
    mkdirSync(storageDir, { recursive: true });
    incarnations++;
    const myLineage = lineage;
    const proc = fork(options.script, [options.name], {
      cwd: options.cwd,
      execArgv: ["--import", "tsx"],
      env: { ...process.env, [CHAOS_GATEWAY_CONFIG_ENV]: JSON.stringify(options.config(storageDir)) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "json",
    });
    child = proc;
    ready = false;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new HarnessError("harness/start-failed", `chaos gateway ${options.name} not ready in time`));
      }, options.readyTimeoutMs ?? 60_000);
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (child === proc) ready = false;
        // A gateway that dies on its own (not killed or stopped by the engine) is a finding.
        if (!ending.has(proc)) {
          options.onEvent?.(options.name, {
            t: "event",
            kind: "error",
            code: "process exited",
            detail: `the gateway process exited by itself (code ${code}, signal ${signal})`,
          });
        }
        reject(
          new HarnessError(
            "harness/start-failed",
            `chaos gateway ${options.name} exited (${code ?? signal})`,
          ),
        );
      });
      proc.on("message", (raw) => {
        const message = raw as ChaosGatewayMessage;
        switch (message.t) {
          case "ready":
            clearTimeout(timer);
            if (child === proc) ready = true;
            resolve();
            break;
          case "wrote": {
            const op = opsInFlight.get(message.op);
            opsInFlight.delete(message.op);
            if (op) options.observer.wrote(options.name, myLineage, op, message.seq, message.hlc);
            break;
          }
          case "acked":
            options.observer.acked(options.name, myLineage, message.seqs);
            break;
          case "event":
            options.onEvent?.(options.name, message);
            break;
          case "state":
            waiting.get(message.id)?.(message);
            waiting.delete(message.id);
            break;
          case "fatal":
            clearTimeout(timer);
            proc.kill("SIGKILL");
            reject(
              new HarnessError("harness/start-failed", `chaos gateway ${options.name}: ${message.message}`),
            );
            break;
        }
      });
    });
  };

  const send = (command: ChaosCommand): boolean => {
    if (!child?.connected) return false;
    child.send(command);
    return true;
  };

  const handle: ChaosGateway = {
    name: options.name,
    get alive() {
      return ready && child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    get lineage() {
      return lineage;
    },
    get incarnations() {
      return incarnations;
    },
    async kill() {
      const proc = child;
      ready = false;
      if (!proc) return;
      ending.add(proc);
      const done = gone(proc);
      proc.kill("SIGKILL");
      await done;
      child = undefined;
      opsInFlight.clear();
    },
    async restart({ empty }) {
      await handle.kill();
      if (empty) lineage++;
      await spawnWorker();
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
    write(op) {
      if (!handle.alive) return false;
      opsInFlight.set(op.id, op);
      return send({ t: "op", op });
    },
    state(timeoutMs = 5000) {
      const id = nextRequest++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(
            new HarnessError(
              "harness/timeout",
              `chaos gateway ${options.name}: no state within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        waiting.set(id, (state) => {
          clearTimeout(timer);
          resolve(state);
        });
        if (!send({ t: "state", id })) {
          clearTimeout(timer);
          waiting.delete(id);
          reject(new HarnessError("harness/request-failed", `chaos gateway ${options.name} is not running`));
        }
      });
    },
    async stop(timeoutMs = 10_000) {
      const proc = child;
      if (!proc) return;
      ready = false;
      proc.kill("SIGCONT");
      ending.add(proc);
      const done = gone(proc);
      send({ t: "stop" });
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      await done;
      clearTimeout(timer);
      child = undefined;
    },
  };
  await spawnWorker();
  return handle;
}
