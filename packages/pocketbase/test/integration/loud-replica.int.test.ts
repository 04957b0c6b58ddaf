import { createServer, type Server } from "node:net";
import {
  createDoc,
  createLineLogger,
  createReplica,
  type NxsError,
  type ReplicaEvents,
} from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { findFreePort, type ProcessPocketBase, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createPocketBaseTransport, type PocketBaseTransportOptions } from "../../src/index.js";
import { makeNode, recordId, setUpServers } from "./helpers.js";

// Issue 12, items 3 and 4 on real servers, as a new user meets them: every server down, a doc id
// that differs between transport and doc, a refused gateway whose account is fixed meanwhile.

const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const gw = makeNode("gw");

beforeAll(async () => {
  server = await servers.start({ name: "loud", batch: false });
  await setUpServers([server], [gw]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const schema = z.object({ items: z.record(z.string(), z.number()) });

function gateway(
  docId: string,
  transport: Partial<PocketBaseTransportOptions> & Pick<PocketBaseTransportOptions, "endpoints" | "auth">,
  replica: { unreachableAfterMs?: number; refusedRetryMs?: number; lines?: string[] } = {},
) {
  const lines = replica.lines ?? [];
  // The default logger's format, into an array instead of stderr (transport and replica share it).
  const logger = createLineLogger({ write: (line) => lines.push(line) });
  const t = createPocketBaseTransport({ docId, requestTimeoutMs: 1000, logger, ...transport });
  cleanups.push(() => t.close());
  const doc = createDoc({ schema, docId, replicaId: `${gw.id}.a`, clock: Date.now, initial: { items: {} } });
  const errors: ReplicaEvents["error"][] = [];
  const r = createReplica({
    doc,
    transport: t,
    storage: createMemoryStorage(),
    scheduler: createTimerScheduler(),
    logger,
    on: { error: (e) => errors.push(e) },
    ...(replica.unreachableAfterMs === undefined ? {} : { unreachableAfterMs: replica.unreachableAfterMs }),
    ...(replica.refusedRetryMs === undefined ? {} : { refusedRetryMs: replica.refusedRetryMs }),
  });
  cleanups.push(() => r.stop());
  return { replica: r, doc, errors, lines };
}

describe("a replica told loudly what is wrong", () => {
  it("all servers down: errors name ECONNREFUSED at once, and 'no server has answered' comes after unreachableAfterMs", async () => {
    // A port that refuses connections: bound, then closed.
    const port = await findFreePort();
    const closed: Server = createServer();
    await new Promise<void>((resolve) => closed.listen(port, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const lines: string[] = [];
    const g = gateway(
      `d-${recordId()}`,
      { endpoints: [`http://127.0.0.1:${port}`], auth: gw.auth },
      { unreachableAfterMs: 1500, lines },
    );
    // On empty storage, start() waits until a server says what it holds of this replica id
    // (docs/engine.md, "Replica identity"); meanwhile every failure is reported.
    const started = g.replica.start();
    started.catch(() => undefined);
    await waitFor(() => g.errors.some((e) => e.error.message.includes("no server has answered")), {
      timeoutMs: 20_000,
      description: "the unreachable report",
    });
    const first = g.errors[0]?.error as NxsError;
    expect(first.code).toBe("transport/unavailable");
    expect(first.message).toContain("ECONNREFUSED");
    // The report itself; status().lastError holds whichever failure came last, and the retries go on
    // after the report, so it may already be a later ECONNREFUSED.
    const unreachable = g.errors.find((e) => e.error.message.includes("no server has answered"))?.error;
    expect(unreachable?.code).toBe("transport/unavailable");
    expect(unreachable?.message).toMatch(/no server has answered for \d+ ms \(last error: .*ECONNREFUSED/);
    expect(g.replica.status().lastError?.code).toBe("transport/unavailable");
    // The default logger format: one line per report, greppable.
    expect(lines.some((l) => l.startsWith("nxs-sync ERROR") && l.includes("no server has answered"))).toBe(
      true,
    );
    expect(lines.every((l) => !l.includes("\n"))).toBe(true);
    // Each error once: the replica logs the transport's failures; the transport does not log them too.
    expect(lines.filter((l) => l.includes("[nxs-pocketbase]") && l.includes("ECONNREFUSED"))).toEqual([]);
    expect(lines.filter((l) => l.includes("ECONNREFUSED")).length).toBeGreaterThan(0);
  });

  it("a doc id that differs between the transport and the doc is refused at construction", () => {
    const t = createPocketBaseTransport({ endpoints: [server.url], auth: gw.auth, docId: "routes" });
    cleanups.push(() => t.close());
    const doc = createDoc({ schema, docId: "routing", replicaId: `${gw.id}.a`, initial: { items: {} } });
    expect(() =>
      createReplica({ doc, transport: t, storage: createMemoryStorage(), scheduler: createTimerScheduler() }),
    ).toThrow(
      expect.objectContaining({ code: "config/invalid", message: expect.stringContaining("routing") }),
    );
  });

  it("a refused gateway keeps trying, reports each refusal, and connects once its account is fixed", async () => {
    const docId = `d-${recordId()}`;
    const g = gateway(
      docId,
      { endpoints: [server.url], auth: { email: gw.email, password: "not-the-password" } },
      { refusedRetryMs: 500 },
    );
    const started = g.replica.start();
    await waitFor(() => g.errors.filter((e) => e.error.code === "transport/unauthorized").length >= 2, {
      timeoutMs: 20_000,
      description: "two refusals reported",
    });
    expect(g.errors[0]?.error.message).toContain("nxs_nodes");
    // The operator sets the password the gateway was given.
    await server
      .client()
      .collection("nxs_nodes")
      .update(gw.id, { password: "not-the-password", passwordConfirm: "not-the-password" });
    await started;
    await waitFor(() => g.replica.status().connected, { timeoutMs: 20_000, description: "connected" });
    g.doc.set(["items", "a"], 1);
    await g.replica.flush();
  });
});
