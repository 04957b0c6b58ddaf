import { afterAll, beforeEach, describe, inject, it } from "vitest";
import { type PocketBaseCluster, type StartClusterOptions, startCluster } from "./cluster.js";
import { HarnessError } from "./errors.js";
import {
  type ContainerPocketBase,
  type ContainerPocketBaseOptions,
  type DockerStatus,
  dockerAvailableSync,
  startPocketBaseContainer,
} from "./pocketbase-container.js";
import {
  type ProcessPocketBase,
  type ProcessPocketBaseOptions,
  startPocketBase,
} from "./pocketbase-process.js";
import type { PocketBaseServer } from "./types.js";

declare module "vitest" {
  interface ProvidedContext {
    /** Path of the PocketBase binary resolved by the global setup. */
    nxsPocketBaseBin: string;
    /** Docker engine status seen by the global setup. */
    nxsDocker: DockerStatus;
  }
}

/** Servers and clusters registered with {@link usePocketBaseServers}. */
export interface ServerTracker {
  /**
   * Registers a server or cluster: its log is printed when a test fails, and it is destroyed after the suite
   * (data kept if any test failed).
   * @param item - a server or cluster
   * @returns `item`
   */
  track<T extends PocketBaseServer | PocketBaseCluster>(item: T): T;
  /** {@link startPocketBase} + {@link track}. */
  start(options?: ProcessPocketBaseOptions): Promise<ProcessPocketBase>;
  /** {@link startPocketBaseContainer} + {@link track}. */
  startContainer(options?: ContainerPocketBaseOptions): Promise<ContainerPocketBase>;
  /** {@link startCluster} + {@link track}. */
  startCluster(
    options: StartClusterOptions & { mode: "container" },
  ): Promise<PocketBaseCluster<ContainerPocketBase>>;
  startCluster(
    options: StartClusterOptions & { mode?: "process" },
  ): Promise<PocketBaseCluster<ProcessPocketBase>>;
  /** Whether a test of this suite has failed so far. */
  readonly failed: boolean;
}

const tail = (text: string, lines: number) => text.split("\n").slice(-lines).join("\n");

/**
 * Vitest lifecycle for harness servers, to call at the top of a file or `describe`: when a test fails the logs
 * of every tracked server are printed (last `logLines` lines); after the suite every server is destroyed,
 * keeping its data dir when a test failed (pg-boss `hooks.ts` style).
 *
 * @param options - `logLines` per server on failure (default 200)
 * @returns a {@link ServerTracker}
 * @example
 * ```ts
 * const servers = usePocketBaseServers();
 * let pb: ProcessPocketBase;
 * beforeAll(async () => { pb = await servers.start(); });
 * ```
 */
export function usePocketBaseServers(options: { logLines?: number } = {}): ServerTracker {
  const items: (PocketBaseServer | PocketBaseCluster)[] = [];
  let failed = false;
  const servers = () => items.flatMap((i) => ("nodes" in i ? [...i.nodes] : [i]));

  beforeEach((ctx) => {
    ctx.onTestFailed(async () => {
      failed = true;
      for (const server of servers()) {
        const log = await server.logs().catch((e: Error) => `(logs unavailable: ${e.message})`);
        process.stderr.write(
          `\n----- PocketBase "${server.name}" (${server.mode}, ${server.url}) log, last ${options.logLines ?? 200} lines -----\n` +
            `${tail(log, options.logLines ?? 200)}\n----- end of "${server.name}" log -----\n`,
        );
      }
    });
  });
  afterAll(async () => {
    const keepData = failed;
    await Promise.allSettled(
      items.map((i) => ("nodes" in i ? i.stop({ keepData }) : i.destroy({ keepData }))),
    );
    items.length = 0;
  });

  const tracker: ServerTracker = {
    track(item) {
      items.push(item);
      return item;
    },
    async start(opts) {
      return tracker.track(await startPocketBase(opts));
    },
    async startContainer(opts) {
      return tracker.track(await startPocketBaseContainer(opts));
    },
    async startCluster(opts: StartClusterOptions) {
      return tracker.track(await startCluster(opts));
    },
    get failed() {
      return failed;
    },
  } as ServerTracker;
  return tracker;
}

/** True when `CI` is set to anything but `false`/`0`/empty. */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== "" && v !== "false" && v !== "0";
}

/**
 * The Docker status for test collection: what the global setup provided, else `$NXS_DOCKER_STATUS`, else a
 * synchronous `docker info`.
 *
 * @returns `{ available, reason }`
 */
export function dockerStatusForTests(): DockerStatus {
  try {
    const provided = inject("nxsDocker");
    if (provided) return provided;
  } catch {
    // not inside a vitest worker with the global setup
  }
  if (process.env.NXS_DOCKER_STATUS) {
    try {
      return JSON.parse(process.env.NXS_DOCKER_STATUS) as DockerStatus;
    } catch {
      // fall through
    }
  }
  return dockerAvailableSync();
}

/**
 * `describe` for tests that need Docker. Without an engine the suite is reported as skipped with the reason in
 * its title (and a warning on stderr); but when `CI` is set it FAILS instead, since CI must run container tests.
 *
 * @param name - suite name
 * @param fn - the suite body
 * @param status - Docker status (default {@link dockerStatusForTests})
 * @example
 * ```ts
 * describeWithDocker("container mode", () => {
 *   it("cuts a node off", async () => {
 *     const node = await startPocketBaseContainer();
 *     await node.disconnect();
 *     await node.destroy();
 *   });
 * });
 * ```
 */
export function describeWithDocker(
  name: string,
  fn: () => void,
  status: DockerStatus = dockerStatusForTests(),
): void {
  if (status.available) {
    describe(name, fn);
    return;
  }
  if (isCI()) {
    describe(name, () => {
      it("has a Docker engine (CI=true: container tests must run, not skip)", () => {
        throw new HarnessError(
          "harness/docker-unavailable",
          `${status.reason}; CI=true requires container tests to run`,
        );
      });
    });
    return;
  }
  process.stderr.write(`[nxs-harness] WARNING: skipping "${name}": ${status.reason}\n`);
  describe.skip(`${name} [skipped: ${status.reason}]`, fn);
}
