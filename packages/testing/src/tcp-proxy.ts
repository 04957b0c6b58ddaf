/**
 * A TCP proxy in front of a server, on a free loopback port: a network link a test can cut and heal
 * (a partition between one client and one server while others go on), or hold (a link that goes
 * silent without closing, as a frozen peer or a black-holed route does). It also counts the bytes
 * it carries both ways (HTTP headers included), for benchmarks.
 * @module
 */
import { connect, createServer, type Socket } from "node:net";

/** How {@link TcpProxy.cut} ends the open connections. */
export type CutMode = "close" | "reset";

/** A running {@link startTcpProxy}. */
export interface TcpProxy {
  /** The URL to use instead of the target's. */
  readonly url: string;
  /**
   * Drops every open connection and refuses new ones until {@link TcpProxy.heal}.
   * @param mode - `close` (default: a FIN to both sides) or `reset` (an RST to both sides)
   */
  cut(mode?: CutMode): void;
  /**
   * Stops forwarding bytes both ways without closing anything: open connections stay open and go
   * silent, new ones are accepted and get no answer. The bytes wait (unread, in the sockets'
   * buffers) until {@link TcpProxy.heal}, which delivers them. Peers notice only by their timeouts.
   */
  hold(): void;
  /** Ends a cut (accepts connections again) or a hold (forwards what waited, then everything). */
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
  let held = false;
  let up = 0;
  let down = 0;
  /** Forwards `from` → `to` with backpressure; never reads `from` while the link is held. */
  const forward = (from: Socket, to: Socket, count: (n: number) => void) => {
    from.on("data", (b: Buffer) => {
      count(b.length);
      if (!to.write(b)) {
        from.pause();
        to.once("drain", () => {
          if (!held) from.resume();
        });
      }
    });
  };
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
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    forward(client, upstream, (n) => {
      up += n;
    });
    forward(upstream, client, (n) => {
      down += n;
    });
    if (held) {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const destroyAll = (mode: CutMode = "close") => {
    for (const s of sockets) {
      try {
        if (mode === "reset" && !s.destroyed) s.resetAndDestroy();
        else s.destroy();
      } catch {
        s.destroy();
      }
    }
    sockets.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut(mode = "close") {
      cut = true;
      held = false;
      destroyAll(mode);
    },
    hold() {
      held = true;
      for (const s of sockets) s.pause();
    },
    heal() {
      cut = false;
      if (held) {
        held = false;
        for (const s of sockets) s.resume();
      }
    },
    bytes: () => ({ up, down }),
    resetBytes() {
      up = 0;
      down = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut = true;
        held = false;
        destroyAll();
        server.close(() => resolve());
      }),
  };
}
