/**
 * A 3-node nats-server cluster with JetStream on loopback, every link of which a test can cut:
 * each route from node i to node j goes through its own TCP proxy (and each node advertises a dead
 * route address, so no node dials another around the proxies), and clients reach node i through
 * a proxy too (`no_advertise`, so clients never learn the direct addresses). `partition(i)` cuts
 * node i off from its peers and its clients; `heal(i)` joins it again.
 * @module
 */
import { HarnessError } from "./errors.js";
import { ensureNatsServerBinary } from "./nats-binary.js";
import { type NatsServer, startNatsServer, waitForNatsHealth } from "./nats-server.js";
import { findFreePort } from "./pocketbase-process.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

/** Options of {@link startNatsCluster}. */
export interface NatsClusterOptions {
  /** Nodes (default 3: two servers survive no failure). */
  readonly size?: number;
  /** Prefix of the server names (default `n`: `n1`, `n2`, `n3`). */
  readonly namePrefix?: string;
  /** JetStream `sync_interval` of every node (default `always`). */
  readonly syncInterval?: string;
  /** Parent of the nodes' temp dirs. */
  readonly tmpDir?: string;
  /** How long the cluster may take to elect its meta leader (default 60 000 ms). */
  readonly readyTimeoutMs?: number;
}

/** A running {@link startNatsCluster}. */
export interface NatsCluster {
  /** The nodes, in order (`n1`…). */
  readonly nodes: readonly NatsServer[];
  /** Client URLs through the client proxies, one per node (what gateways connect to). */
  readonly urls: readonly string[];
  /** The node named `name`. @throws HarnessError `harness/request-failed` for an unknown name. */
  node(name: string): NatsServer;
  /**
   * The name of the node leading `stream` (asked over the monitoring port of the running nodes),
   * or undefined while none does.
   */
  streamLeader(stream: string): Promise<string | undefined>;
  /** Cuts node `name` off: its routes to and from every peer, and its clients' links. */
  partition(name: string): void;
  /** Ends {@link NatsCluster.partition} of `name` (undefined: of every node). */
  heal(name?: string): void;
  /**
   * Waits until every running node answers `/healthz` and sees a JetStream meta leader with every
   * running peer current.
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node, closes the proxies and deletes the dirs. */
  destroy(): Promise<void>;
}

interface JszStream {
  readonly name: string;
  readonly cluster?: { readonly leader?: string };
}
interface Jsz {
  readonly meta_cluster?: {
    readonly leader?: string;
    readonly replicas?: readonly { readonly name: string; readonly current?: boolean }[];
  };
  readonly account_details?: readonly { readonly stream_detail?: readonly JszStream[] }[];
}

/**
 * Starts a cluster with JetStream (`sync_interval: always` by default) and waits until every
 * node is healthy.
 * @param options - Size, names, durability.
 * @returns The cluster.
 * @throws HarnessError `harness/start-failed` when it does not become healthy in time.
 * @example
 * ```ts
 * const cluster = await startNatsCluster();
 * console.log(cluster.urls); // one client URL per node, each through a proxy
 * cluster.partition("n2");
 * cluster.heal("n2");
 * await cluster.destroy();
 * ```
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const prefix = options.namePrefix ?? "n";
  const bin = (await ensureNatsServerBinary()).path;
  const names = Array.from({ length: size }, (_, i) => `${prefix}${i + 1}`);
  const clusterPorts = await Promise.all(names.map(() => findFreePort()));
  const clientPorts = await Promise.all(names.map(() => findFreePort()));
  const deadPort = await findFreePort();
  /** routeProxies[i][j]: node i's route to node j. */
  const routeProxies = new Map<string, TcpProxy>();
  const clientProxies: TcpProxy[] = [];
  const proxyPort = (p: TcpProxy) => Number(new URL(p.url).port);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      if (i !== j) routeProxies.set(`${i}>${j}`, await startTcpProxy(`http://127.0.0.1:${clusterPorts[j]}`));
    }
    clientProxies.push(await startTcpProxy(`http://127.0.0.1:${clientPorts[i]}`));
  }
  const nodes: NatsServer[] = [];
  const cleanup = async () => {
    await Promise.all(nodes.map((n) => n.destroy()));
    await Promise.all([...routeProxies.values(), ...clientProxies].map((p) => p.close()));
  };
  try {
    for (let i = 0; i < size; i++) {
      const routes = names
        .map((_, j) => j)
        .filter((j) => j !== i)
        .map((j) => `"nats-route://127.0.0.1:${proxyPort(routeProxies.get(`${i}>${j}`) as TcpProxy)}"`);
      nodes.push(
        await startNatsServer({
          bin,
          name: names[i] as string,
          port: clientPorts[i] as number,
          ...(options.tmpDir === undefined ? {} : { tmpDir: options.tmpDir }),
          ...(options.syncInterval === undefined ? {} : { syncInterval: options.syncInterval }),
          waitReady: false,
          extraConfig: [
            "cluster {",
            "  name: nxs",
            `  listen: "127.0.0.1:${clusterPorts[i]}"`,
            // Gossiped route URLs lead nowhere: nodes reach each other only through the proxies.
            `  advertise: "127.0.0.1:${deadPort}"`,
            "  no_advertise: true",
            `  routes: [${routes.join(", ")}]`,
            "}",
          ].join("\n"),
        }),
      );
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  const cluster: NatsCluster = {
    nodes,
    urls: clientProxies.map((p) => `nats://127.0.0.1:${proxyPort(p)}`),
    node(name) {
      const found = nodes.find((n) => n.name === name);
      if (!found) throw new HarnessError("harness/request-failed", `no node ${name} in the cluster`);
      return found;
    },
    async streamLeader(stream) {
      for (const n of nodes) {
        if (!n.running) continue;
        try {
          const res = await fetch(`${n.monitorUrl}/jsz?accounts=true&streams=true`, {
            signal: AbortSignal.timeout(1000),
          });
          const jsz = (await res.json()) as Jsz;
          for (const acc of jsz.account_details ?? []) {
            const leader = acc.stream_detail?.find((s) => s.name === stream)?.cluster?.leader;
            if (leader) return leader;
          }
        } catch {
          // A paused or partitioned node: ask the next.
        }
      }
      return undefined;
    },
    partition(name) {
      const i = names.indexOf(name);
      if (i < 0) throw new HarnessError("harness/request-failed", `no node ${name} in the cluster`);
      for (const [k, p] of routeProxies) {
        const [from, to] = k.split(">").map(Number);
        if (from === i || to === i) p.cut("reset");
      }
      clientProxies[i]?.cut("reset");
    },
    heal(name) {
      const i = name === undefined ? -1 : names.indexOf(name);
      for (const [k, p] of routeProxies) {
        const [from, to] = k.split(">").map(Number);
        if (i < 0 || from === i || to === i) p.heal();
      }
      for (let j = 0; j < size; j++) if (i < 0 || i === j) clientProxies[j]?.heal();
    },
    async waitHealthy(timeoutMs = options.readyTimeoutMs ?? 60_000) {
      await Promise.all(
        nodes.filter((n) => n.running).map((n) => waitForNatsHealth(n.monitorUrl, timeoutMs)),
      );
    },
    destroy: cleanup,
  };
  try {
    await cluster.waitHealthy();
  } catch (error) {
    const logs = (
      await Promise.all(nodes.map(async (n) => `--- ${n.name}\n${(await n.logs()).slice(-1500)}`))
    ).join("\n");
    await cleanup();
    throw new HarnessError(
      "harness/start-failed",
      `nats cluster not healthy: ${(error as Error).message}\n${logs}`,
      {
        cause: error,
      },
    );
  }
  return cluster;
}
