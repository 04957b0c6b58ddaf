import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";

/** A stand-in for a PocketBase server that answers health checks and refuses every login. */
export interface RefusingServer {
  readonly url: string;
  /** The identities (emails) it was asked to log in, in order. */
  readonly identities: string[];
  close(): Promise<void>;
}

/**
 * Starts a server that is healthy but answers every password login as PocketBase answers a wrong
 * one (400 "Failed to authenticate.").
 */
export async function startRefusingServer(): Promise<RefusingServer> {
  const identities: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      const json = (status: number, data: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(data));
      };
      if (req.url?.startsWith("/api/health"))
        return json(200, { code: 200, message: "API is healthy.", data: {} });
      if (req.method === "POST" && req.url?.includes("/auth-with-password")) {
        try {
          identities.push(String((JSON.parse(body) as { identity?: unknown }).identity));
        } catch {
          identities.push("?");
        }
        return json(400, { status: 400, message: "Failed to authenticate.", data: {} });
      }
      return json(404, { status: 404, message: "The requested resource wasn't found.", data: {} });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    identities,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL where nothing listens (a port taken and released): every request is refused (ECONNREFUSED). */
export async function closedUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/**
 * Registers an `afterEach` that closes what the test started, and returns the starters.
 * @returns `refusing()`: a {@link startRefusingServer} closed after the test; `cleanups`: more to close.
 */
export function useFakeServers(): {
  refusing: () => Promise<RefusingServer>;
  cleanups: (() => Promise<void>)[];
} {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });
  return {
    cleanups,
    refusing: async () => {
      const s = await startRefusingServer();
      cleanups.push(() => s.close());
      return s;
    },
  };
}
