/**
 * A TCP proxy in front of a server, on a free loopback port: a network link a test can cut and heal
 * (a partition between one client and one server while others go on), which also counts the bytes
 * it carries both ways (HTTP headers included), for benchmarks.
 * @module
 */
import { connect, createServer, type Socket } from "node:net";

/** A running {@link startTcpProxy}. */
export interface TcpProxy {
  /** The URL to use instead of the target's. */
  readonly url: string;
  /** Drops every open connection and refuses new ones until {@link TcpProxy.heal}. */
  cut(): void;
  /** Accepts connections again. */
  heal(): void;
  /** Bytes client→server (`up`) and server→client (`down`) since start or {@link TcpProxy.resetBytes}. */
  bytes(): { readonly up: number; readonly down: number };
  /** Sets both byte counters to 0. */
  resetBytes(): void;
  /** Closes every connection and the listener. */
  close(): Promise<void>;
}

/**
 * Starts a proxy to `target`.
 * @param target - An `http://host:port` URL.
 * @returns The proxy, listening on 127.0.0.1.
 */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const t = new URL(target);
  const sockets = new Set<Socket>();
  let cut = false;
  let up = 0;
  let down = 0;
  const server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(t.port), t.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("data", (b: Buffer) => {
      up += b.length;
    });
    upstream.on("data", (b: Buffer) => {
      down += b.length;
    });
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const destroyAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut = true;
      destroyAll();
    },
    heal() {
      cut = false;
    },
    bytes: () => ({ up, down }),
    resetBytes() {
      up = 0;
      down = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut = true;
        destroyAll();
        server.close(() => resolve());
      }),
  };
}
