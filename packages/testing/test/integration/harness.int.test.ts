import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  applyCollections,
  type ContainerPocketBase,
  clearCollections,
  type PocketBaseCluster,
  type PocketBaseServer,
  type ProcessPocketBase,
  timestampFields,
  waitFor,
  withNamespace,
} from "@nxs-sync/testing";
import { describeWithDocker, usePocketBaseServers } from "@nxs-sync/testing/vitest";
import type { RecordSubscription } from "pocketbase";
import { beforeAll, describe, expect, inject, it } from "vitest";

/** GET /api/health from the host with a short timeout: the HTTP status, or the error name. */
async function health(server: PocketBaseServer, timeoutMs = 1_000): Promise<number | string> {
  try {
    const res = await fetch(`${server.url}/api/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.status;
  } catch (error) {
    return (error as Error).name;
  }
}

const notes = (name: string) => ({
  name,
  fields: [{ name: "text", type: "text" }, ...timestampFields()],
});

describe("harness: process mode", () => {
  const servers = usePocketBaseServers();
  let cluster: PocketBaseCluster<ProcessPocketBase>;

  beforeAll(async () => {
    cluster = await servers.startCluster({ nodes: 2 });
  });

  it("starts two healthy servers on loopback with separate data and the batch API on", async () => {
    const [a, b] = cluster.nodes;
    expect(a && b).toBeTruthy();
    if (!a || !b) return;
    expect(inject("nxsPocketBaseBin")).toBe(process.env.POCKETBASE_BIN);
    expect(a.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(a.url).not.toBe(b.url);
    expect(a.dataDir).not.toBe(b.dataDir);
    expect(await health(a)).toBe(200);
    expect(await health(b)).toBe(200);
    const settings = await a.client().settings.getAll();
    expect(settings.batch).toEqual({ enabled: true, maxRequests: 1000, timeout: 10, maxBodySize: 0 });
  });

  it("reads back a record written to one server; the other server is independent", async ({ task }) => {
    const ns = withNamespace(task.name);
    const coll = ns.name("notes");
    await applyCollections(cluster.nodes, [notes(coll)]);
    const { primary, secondaries } = cluster;
    const created = await primary.client().collection(coll).create({ text: "hello" });
    const read = await primary.client().collection(coll).getOne(created.id);
    expect(read.text).toBe("hello");
    expect(read.created).toBeTruthy();
    await expect(secondaries[0]?.client().collection(coll).getOne(created.id)).rejects.toMatchObject({
      status: 404,
    });

    const batch = primary.client().createBatch();
    for (const text of ["x", "y", "z"]) batch.collection(coll).create({ text });
    const results = await batch.send();
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);

    expect(await clearCollections(cluster.nodes, { prefix: ns.prefix })).toEqual([coll]);
  });

  it("delivers realtime SSE events to Node through the eventsource polyfill", async ({ task }) => {
    const ns = withNamespace(task.name);
    const coll = ns.name("notes");
    await applyCollections(cluster.primary, [notes(coll)]);
    const listener = cluster.primary.client();
    const events: RecordSubscription[] = [];
    const unsubscribe = await listener.collection(coll).subscribe("*", (e) => {
      events.push(e);
    });
    try {
      const rec = await cluster.primary.client().collection(coll).create({ text: "live" });
      const created = await waitFor(() => events.find((e) => e.record.id === rec.id), {
        timeoutMs: 5_000,
        description: "SSE create event",
      });
      expect(created.action).toBe("create");
      expect(created.record.text).toBe("live");
      await cluster.primary.client().collection(coll).update(rec.id, { text: "edited" });
      const updated = await waitFor(() => events.find((e) => e.action === "update"), { timeoutMs: 5_000 });
      expect(updated.record.text).toBe("edited");
    } finally {
      await unsubscribe();
      listener.realtime.unsubscribe();
    }
  });

  it("keeps committed data across SIGKILL + restart on the same port and data dir", async ({ task }) => {
    const ns = withNamespace(task.name);
    const coll = ns.name("notes");
    const node = cluster.secondaries[0];
    if (!node) throw new Error("no secondary");
    await applyCollections(node, [notes(coll)]);
    const rec = await node.client().collection(coll).create({ text: "durable" });
    const pidBefore = node.pid;
    await node.kill();
    expect(node.stopped).toBe(true);
    expect(await health(node)).toBe("TypeError"); // connection refused
    await node.restart();
    expect(node.pid).not.toBe(pidBefore);
    expect(await health(node)).toBe(200);
    const read = await node.client().collection(coll).getOne(rec.id);
    expect(read.text).toBe("durable");
    expect(await node.logs()).toMatch(/kill \(SIGKILL\)[\s\S]*Server started/);
  });

  it("applies a package's JS migrations from migrationsDir at start", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nxs-migrations-"));
    try {
      await writeFile(
        join(dir, "1700000000_create_things.js"),
        `migrate((app) => { app.save(new Collection({ name: "things", type: "base", fields: [{ name: "label", type: "text" }] })); },
                (app) => { app.delete(app.findCollectionByNameOrId("things")); });\n`,
      );
      const server = await servers.start({ migrationsDir: dir, batch: false });
      const things = await server.client().collections.getOne("things");
      expect(things.fields.map((f) => f.name)).toContain("label");
      expect((await server.client().settings.getAll()).batch.enabled).toBe(false);
      await server.destroy();
      expect(existsSync(server.rootDir)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("pause() makes requests hang and resume() lets the server answer again", async () => {
    const node = cluster.primary;
    await node.pause();
    try {
      expect(await health(node, 300)).toBe("TimeoutError");
    } finally {
      await node.resume();
    }
    expect(await health(node)).toBe(200);
  });
});

describeWithDocker("harness: container mode", () => {
  const servers = usePocketBaseServers();
  let cluster: PocketBaseCluster<ContainerPocketBase>;

  beforeAll(async () => {
    cluster = await servers.startCluster({ nodes: 3, mode: "container" });
  });

  it("puts every node on one user-defined network, reachable by name and from the host", async () => {
    expect(cluster.network).toBeDefined();
    for (const node of cluster.nodes) {
      expect(node.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(node.internalUrl).toBe(`http://${node.containerName}:8090`);
      expect(node.container.getNetworkNames()).toEqual([cluster.network?.getName()]);
      expect(await health(node)).toBe(200);
    }
    const [a, b, c] = cluster.nodes;
    if (!a || !b || !c) throw new Error("three nodes expected");
    expect(await a.canReach(b.internalUrl)).toBe(true);
    expect(await b.canReach(c.internalUrl)).toBe(true);
    expect(await c.canReach(a.internalUrl)).toBe(true);
  });

  it("reads back a record and delivers SSE events from a container", async ({ task }) => {
    const ns = withNamespace(task.name);
    const coll = ns.name("notes");
    await applyCollections(cluster.primary, [notes(coll)]);
    const listener = cluster.primary.client();
    const events: RecordSubscription[] = [];
    const unsubscribe = await listener.collection(coll).subscribe("*", (e) => {
      events.push(e);
    });
    try {
      const rec = await cluster.primary.client().collection(coll).create({ text: "in a box" });
      expect((await cluster.primary.client().collection(coll).getOne(rec.id)).text).toBe("in a box");
      const ev = await waitFor(() => events.find((e) => e.record.id === rec.id), { timeoutMs: 5_000 });
      expect(ev.action).toBe("create");
    } finally {
      await unsubscribe();
      listener.realtime.unsubscribe();
    }
  });

  it("disconnect() cuts a node off from the host and the other containers; reconnect() brings it back", async ({
    task,
  }) => {
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error("two nodes expected");
    const ns = withNamespace(task.name);
    const coll = ns.name("notes");
    await applyCollections(b, [notes(coll)]);
    const rec = await b.client().collection(coll).create({ text: "before the cut" });

    await b.disconnect();
    expect(await health(b)).not.toBe(200); // from the host, via the mapped port
    expect(await a.canReach(b.internalUrl)).toBe(false); // from another container, by name

    await b.reconnect();
    expect(await health(b)).toBe(200);
    expect(await waitFor(() => a.canReach(b.internalUrl), { timeoutMs: 10_000 })).toBe(true);
    expect((await b.client().collection(coll).getOne(rec.id)).text).toBe("before the cut");
  });

  it("keeps committed data across kill + restart, on the same host port", async ({ task }) => {
    const node = cluster.secondaries[1];
    if (!node) throw new Error("third node expected");
    const ns = withNamespace(task.name);
    const coll = ns.name("notes");
    await applyCollections(node, [notes(coll)]);
    const rec = await node.client().collection(coll).create({ text: "durable" });
    const urlBefore = node.url;
    await node.kill();
    expect(node.stopped).toBe(true);
    expect(await health(node)).not.toBe(200);
    await node.restart();
    expect(node.url).toBe(urlBefore);
    expect((await node.client().collection(coll).getOne(rec.id)).text).toBe("durable");
    expect(await cluster.primary.canReach(node.internalUrl)).toBe(true);
  });

  it("pause() freezes a container and resume() thaws it", async () => {
    const node = cluster.primary;
    await node.pause();
    try {
      expect(await health(node, 300)).toBe("TimeoutError");
    } finally {
      await node.resume();
    }
    expect(await health(node)).toBe(200);
  });
});
