import type { StartedNetwork } from "testcontainers";
import { randomPassword, shortId } from "./admin.js";
import {
  type ContainerPocketBase,
  createDockerNetwork,
  startPocketBaseContainer,
} from "./pocketbase-container.js";
import { type ProcessPocketBase, startPocketBase } from "./pocketbase-process.js";
import type { CommonPocketBaseOptions, PocketBaseServer } from "./types.js";

/** Options of {@link startCluster}. */
export interface StartClusterOptions extends Omit<CommonPocketBaseOptions, "name"> {
  /** How many servers: a primary plus 1 or 2 secondaries. */
  nodes: 2 | 3;
  /** `process` (default) or `container` (all on one user-defined Docker network). */
  mode?: "process" | "container";
  /** Name prefix (default `nxs-<random>`): nodes are `<prefix>-primary`, `<prefix>-secondary-1`, … */
  name?: string;
}

/** A primary/secondary topology of PocketBase servers sharing one superuser. */
export interface PocketBaseCluster<S extends PocketBaseServer = PocketBaseServer> extends AsyncDisposable {
  /** `[primary, ...secondaries]`. */
  readonly nodes: readonly S[];
  /** `nodes[0]`. */
  readonly primary: S;
  /** `nodes.slice(1)`. */
  readonly secondaries: readonly S[];
  /** The Docker network of a container cluster (undefined in process mode). */
  readonly network: StartedNetwork | undefined;
  /**
   * Destroys every node (and the network).
   * @param options - `keepData: true` keeps each node's data (e.g. after a failed test)
   */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

/**
 * Starts 2 or 3 PocketBase servers (a primary and secondaries) with the same superuser, in parallel.
 * In container mode every node joins one user-defined network and reaches the others at their `internalUrl`
 * (`http://<name>:8090`); the host reaches each at `url` (a mapped port on 127.0.0.1).
 *
 * @param options - node count, mode, and the options every node gets
 * @returns the cluster; `stop()` tears it all down
 * @throws HarnessError from the node that failed to start (the others are destroyed first)
 * @example
 * ```ts
 * const cluster = await startCluster({ nodes: 3, mode: "container" });
 * await cluster.secondaries[0]?.disconnect();
 * await cluster.stop();
 * ```
 */
export function startCluster(
  options: StartClusterOptions & { mode: "container" },
): Promise<PocketBaseCluster<ContainerPocketBase>>;
export function startCluster(
  options: StartClusterOptions & { mode?: "process" },
): Promise<PocketBaseCluster<ProcessPocketBase>>;
export function startCluster(options: StartClusterOptions): Promise<PocketBaseCluster>;
export async function startCluster(options: StartClusterOptions): Promise<PocketBaseCluster> {
  const prefix = options.name ?? `nxs-${shortId()}`;
  const superuser = {
    email: options.superuser?.email ?? "admin@nxs-sync.test",
    password: options.superuser?.password ?? randomPassword(),
  };
  const names = Array.from({ length: options.nodes }, (_, i) =>
    i === 0 ? `${prefix}-primary` : `${prefix}-secondary-${i}`,
  );
  const network = options.mode === "container" ? await createDockerNetwork() : undefined;
  const results = await Promise.allSettled(
    names.map((name) =>
      network
        ? startPocketBaseContainer({ ...options, name, superuser, network })
        : startPocketBase({ ...options, name, superuser }),
    ),
  );
  const started = results.flatMap((r) => (r.status === "fulfilled" ? [r.value as PocketBaseServer] : []));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) {
    await Promise.allSettled(started.map((n) => n.destroy()));
    await network?.stop().catch(() => undefined);
    throw failure.reason;
  }
  const [primary, ...secondaries] = started as [PocketBaseServer, ...PocketBaseServer[]];
  let stopped = false;
  const cluster: PocketBaseCluster = {
    nodes: started,
    primary,
    secondaries,
    network,
    async stop(opts = {}) {
      if (stopped) return;
      stopped = true;
      await Promise.allSettled(started.map((n) => n.destroy(opts)));
      await network?.stop().catch(() => undefined);
    },
    [Symbol.asyncDispose]() {
      return cluster.stop();
    },
  };
  return cluster;
}
