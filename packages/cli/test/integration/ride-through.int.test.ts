import { join } from "node:path";
import { createDoc, createReplica, silentLogger } from "@nxs-sync/core";
import { createMemoryStorage } from "@nxs-sync/core/memory";
import { createTimerScheduler } from "@nxs-sync/core/node";
import { createPocketBaseTransport } from "@nxs-sync/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { FleetStatus } from "../../src/status.js";
import { cli, readIds, runReplicator, serverArgs, startSetUpFleet } from "./fleet.js";

const servers = usePocketBaseServers();

describe("a gateway rides through a full backup and a restore of its server", () => {
  let a: ProcessPocketBase;
  let b: ProcessPocketBase;
  let dir: string;
  let ids: string;
  beforeAll(async () => {
    ({ a, b, dir, ids } = await startSetUpFleet(servers, "ride"));
  });

  it("no acknowledged write is lost: every change the gateway made is on both servers afterwards", async () => {
    const { nodes, replicator } = await readIds(ids);
    const gw = nodes[0]!;
    const replicaId = `${gw.id}.ride`;
    const doc = createDoc({
      schema: z.object({ n: z.record(z.string(), z.number()) }),
      docId: "ride",
      replicaId,
      clock: Date.now,
      initial: { n: {} },
    });
    const transport = createPocketBaseTransport({
      endpoints: [a.url, b.url],
      auth: { email: gw.email, password: gw.password },
      docId: "ride",
      origin: replicaId,
      logger: silentLogger,
    });
    const replica = createReplica({
      doc,
      transport,
      storage: createMemoryStorage(),
      scheduler: createTimerScheduler(),
      logger: silentLogger,
    });
    const stopReplicator = new AbortController();
    const replicating = runReplicator([a.url, b.url], replicator, stopReplicator.signal);
    await replica.start();
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        doc.set(["n", String(++written)], written);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      await waitFor(() => written >= 20 || undefined, { timeoutMs: 10_000 });
      const backup = await cli(["backup", "--server", a.url, "--dir", join(dir, "full"), "--json"]);
      expect(backup.code, backup.stderr).toBe(0);
      const at = written;
      await waitFor(() => written >= at + 20 || undefined, { timeoutMs: 10_000 });
      const restore = await cli([
        "restore",
        "--server",
        a.url,
        "--file",
        backup.json<{ path: string }>().path,
      ]);
      expect(restore.code, restore.stderr).toBe(0);
      const after = written;
      await waitFor(() => written >= after + 20 || undefined, { timeoutMs: 10_000 });
      writing = false;
      await writer;
      await replica.flush(); // every change acknowledged by a server
      const made = doc.version()[replicaId];
      expect(made).toBe(written);
      await waitFor(
        async () => {
          const s = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
          const d = s.docs.find((x) => x.doc === "ride");
          return (
            (d !== undefined &&
              [a.url, b.url].every((u) => d.servers[u]?.vector[replicaId] === made) &&
              s.converged) ||
            undefined
          );
        },
        { timeoutMs: 60_000, intervalMs: 500, description: `both servers hold all ${made} changes` },
      );
    } finally {
      writing = false;
      await writer;
      await replica.stop();
      stopReplicator.abort();
      await replicating;
    }
  });
});
