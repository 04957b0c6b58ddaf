import { isNxsError } from "@nxs-sync/core";
import { closeSdkClient, createSdkClient, ensureNode, ensureSchema } from "@nxs-sync/pocketbase";
import type { JobId } from "@nxs-sync/queue";
import { JOBS_COLLECTION } from "@nxs-sync/queue/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { backendOf, closeBackends, gateway, newId, newJob, registry, startQueueServer } from "./servers.js";

/** The PocketBase backend on one real server: what it refuses, and records it cannot run. */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
beforeAll(async () => {
  server = await startQueueServer(servers, "queue-backend");
});
afterAll(closeBackends);

const job = newJob;
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => (isNxsError(e) ? { code: e.code, message: e.message } : { code: String(e), message: "" }),
  );

it("refuses a bad job at enqueue, naming the field, and stores nothing of its batch", async () => {
  const backend = backendOf([server.url]);
  const queue = `refuse-${newId()}`;
  const good = job(queue);
  const bad = await failure(backend.enqueue([good, job(queue, { maxAttempts: 0 })]));
  expect(bad).toMatchObject({ code: "queue/invalid-payload" });
  expect(bad?.message).toContain("(item 1): maxAttempts must be an integer >= 1");
  expect(await failure(backend.enqueue([job(queue, { id: "NOT-AN-ID" as JobId })]))).toMatchObject({
    code: "queue/invalid-payload",
    message: expect.stringContaining("id must be 15 characters"),
  });
  const big = { text: "x".repeat(300_000) };
  expect(await failure(backend.enqueue([job(queue, { payload: big })]))).toMatchObject({
    code: "queue/too-large",
  });
  expect(await backend.getJob(good.id)).toBeUndefined();
  expect((await backend.counts(queue)).waiting).toBe(0);
});

it("dead-letters malformed records written straight into the collection, and claims the rest", async () => {
  const deadLetters: string[] = [];
  const backend = backendOf([server.url], { onDeadLetter: (d) => deadLetters.push(d.id) });
  const queue = `malformed-${newId()}`;
  const admin = server.client();
  const raw = (fields: Record<string, unknown>) =>
    admin.collection(JOBS_COLLECTION).create({
      id: newId(),
      queue,
      state: "waiting",
      payload: { n: 0 },
      maxAttempts: 3,
      ...fields,
    });
  const malformed = [
    await raw({ maxAttempts: 0 }),
    await raw({ attempt: 2.5 }),
    await raw({ attemptsMade: 4, attempt: 1 }),
    await raw({ failures: { not: "a list" } }),
    await raw({ backoff: [1, 2] }),
  ];
  const fine = await raw({}); // fields left out take their zero values: a runnable job
  const enqueued = [job(queue), job(queue)];
  await backend.enqueue(enqueued);
  const claimed = await backend.claim({ queue, worker: "w", leaseMs: 5000, max: 10 });
  expect(claimed.map((c) => c.job.id).sort()).toEqual([fine.id, ...enqueued.map((j) => j.id)].sort());
  for (const m of malformed) {
    const stored = await backend.getJob(m.id as JobId);
    expect(stored?.state, m.id).toBe("failed");
    expect(stored?.reason).toMatch(/^queue\/invalid-payload: malformed job record: /);
  }
  expect(deadLetters.sort()).toEqual(malformed.map((m) => m.id).sort());
  const settled = await backend.settle(
    claimed.map((c) => ({ id: c.job.id, token: c.token, kind: "complete" })),
  );
  expect(settled.every((s) => s.ok)).toBe(true);
  expect(await backend.counts(queue)).toMatchObject({ completed: 3, failed: 5, waiting: 0, active: 0 });
});

it("refuses the routes to accounts other than gateways", async () => {
  const admin = server.client();
  const answer = await admin.send("/nxs/queue/counts", { method: "POST", body: { queue: "x" } }).then(
    () => 200,
    (e: { status: number }) => e.status,
  );
  expect(answer).toBe(403);
});

it("gives a claim sent again (its answer lost) the jobs its first sending took", async () => {
  const queue = `again-${newId()}`;
  const backend = backendOf([server.url]);
  const jobs = [job(queue), job(queue), job(queue)];
  await backend.enqueue(jobs);
  const pb = createSdkClient(server.url);
  await pb.collection("nxs_nodes").authWithPassword(gateway.email, gateway.password);
  const claim = (max: number) =>
    pb.send("/nxs/queue/claim", {
      method: "POST",
      body: { queue, worker: "w", leaseMs: 30_000, max, claimId: "claim-1" },
    }) as Promise<{ jobs: { job: { id: string }; token: string }[] }>;
  const first = await claim(2);
  const again = await claim(2);
  expect(again.jobs.map((c) => [c.job.id, c.token])).toEqual(first.jobs.map((c) => [c.job.id, c.token]));
  // Asking for more tops the answer up with new jobs.
  const more = await claim(3);
  expect(more.jobs).toHaveLength(3);
  expect(more.jobs.slice(0, 2).map((c) => c.token)).toEqual(first.jobs.map((c) => c.token));
  expect(await backend.counts(queue)).toMatchObject({ active: 3, waiting: 0 });
  closeSdkClient(pb);
});

it("refuses a server without the queue's hook piece, naming the fix", async () => {
  const bare = await servers.start({ name: "queue-no-piece" });
  await ensureSchema(bare.client(), { collections: registry(), rateLimits: false });
  await ensureNode(bare.client(), gateway);
  const error = await failure(backendOf([bare.url], { timeoutMs: 0 }).counts("q"));
  expect(error).toMatchObject({ code: "server/incompatible" });
  expect(error?.message).toContain("no hook piece queue");
  expect(error?.message).toContain("nxs-queue.pb.js");
});

it("closes a ready watch's subscription when its last watcher leaves, and opens it again for the next", async () => {
  const backend = backendOf([server.url]);
  const queue = `ready-${newId()}`;
  const heard: string[] = [];
  let resyncs = 0;
  const watcher = {
    onEvent: (e: { type: string; id: string }) => heard.push(`${e.type}:${e.id}`),
    onResync: () => {
      resyncs++;
    },
  };
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(ok(), what).toBe(true);
  };
  // Closed while it connects, then opened again at once (a worker pausing and resuming fast).
  backend.watch(queue, watcher, { readyOnly: true })();
  const stop = backend.watch(queue, watcher, { readyOnly: true });
  await until("a resync of the reopened watch", () => resyncs >= 1);
  const a = job(queue);
  await backend.enqueue([a]);
  await until("the added hint", () => heard.includes(`added:${a.id}`));
  stop();
});
