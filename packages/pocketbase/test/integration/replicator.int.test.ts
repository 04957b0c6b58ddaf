import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type Change, createManualScheduler, encodeHlc, type NxsError, silentLogger } from "@nxs-sync/core";
import { type ProcessPocketBase, startTcpProxy, type TcpProxy, waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Collections,
  createPocketBaseClient,
  createPocketBaseTransport,
  createReplicator,
  encodeChangeRecord,
  ensureSchema,
  NodeRole,
  type PocketBaseTransport,
  type Replicator,
  type ReplicatorEvents,
  runReplicatorCli,
} from "../../src/index.js";
import { changeKeysOn, makeNode, provision, rawChangeRecord, recordId } from "./helpers.js";

const servers = usePocketBaseServers();
let s1: ProcessPocketBase;
let s2: ProcessPocketBase;
let link1: TcpProxy;
let link2: TcpProxy;
const gwA = makeNode("gw-a");
const gwB = makeNode("gw-b");
const repl = makeNode("repl", NodeRole.Replicator);

beforeAll(async () => {
  [s1, s2] = await Promise.all([
    servers.start({ name: "repl-1", batch: false }),
    servers.start({ name: "repl-2", batch: false }),
  ]);
  for (const s of [s1, s2]) {
    await ensureSchema(s.client());
    await provision(s, [gwA, gwB, repl]);
  }
  link1 = await startTcpProxy(s1.url);
  link2 = await startTcpProxy(s2.url);
});
afterAll(async () => {
  await link1?.close();
  await link2?.close();
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
  link1.heal();
  link2.heal();
});

function gateway(url: string, node: typeof gwA, doc: string): PocketBaseTransport {
  const t = createPocketBaseTransport({
    endpoints: [url],
    auth: node.auth,
    docId: doc,
    requestTimeoutMs: 2000,
  });
  cleanups.push(() => t.close());
  return t;
}

function replicator(
  extra: Partial<Parameters<typeof createReplicator>[0]> = {},
): Replicator & { errors: Error[] } {
  const errors: Error[] = [];
  const r = createReplicator({
    servers: [
      { url: link1.url, auth: repl.auth },
      { url: link2.url, auth: repl.auth },
    ],
    intervalMs: 60_000,
    healthIntervalMs: 200,
    requestTimeoutMs: 1000,
    onError: (e) => errors.push(e),
    ...extra,
  });
  cleanups.push(() => r.stop());
  return Object.assign(r, { errors });
}

const change = (doc: string, origin: string, seq: number): Change =>
  ({
    doc,
    origin,
    seq,
    hlc: encodeHlc({ ms: 1_700_000_000_000 + seq, counter: 0, node: origin }),
    ops: [{ kind: "set", path: ["k", `${origin}-${seq}`], value: seq }],
  }) as unknown as Change;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** (origin, seq) keys of the changes a server holds for a document (packs expanded), read as a node. */
const keysOn = (url: string, doc: string): Promise<string[]> => changeKeysOn(url, gwA.auth, doc);

/** [seq, last] of each record of a document on a server, sorted. */
async function packsOn(url: string, doc: string): Promise<number[][]> {
  const c = createPocketBaseClient({ url, auth: gwA.auth });
  const rows = await c.call("list", (pb) =>
    pb
      .collection(Collections.Changes)
      .getFullList({ filter: pb.filter("doc = {:doc}", { doc }), fields: "seq,last", sort: "seq,last" }),
  );
  c.close();
  return rows.map((r) => [r.seq, r.last]);
}

/** Writes gateway A's changes `from..to` of `doc` as one pack straight into a server. */
async function putPack(url: string, doc: string, from: number, to: number): Promise<void> {
  const c = createPocketBaseClient({ url, auth: gwA.auth });
  try {
    await c.call("create", (pb) =>
      pb.collection(Collections.Changes).create(
        encodeChangeRecord(
          range(from, to).map((q) => change(doc, gwA.id, q)),
          gwA.id,
        ),
      ),
    );
  } finally {
    c.close();
  }
}

async function converged(doc: string, expected: number): Promise<boolean> {
  const [a, b] = await Promise.all([keysOn(s1.url, doc), keysOn(s2.url, doc)]);
  return a.length === expected && b.length === expected && a.join() === b.join();
}

describe("replicator", () => {
  it("two gateways on two servers converge, realtime included", async () => {
    const doc = `d-${recordId()}`;
    const r = replicator();
    await r.start();
    const a = gateway(s1.url, gwA, doc);
    const b = gateway(s2.url, gwB, doc);
    const seenByA = new Set<string>();
    a.subscribe({
      onChanges: (cs) => {
        for (const c of cs) seenByA.add(`${c.origin}:${c.seq}`);
      },
      onResync: () => {},
    });
    await Promise.all([a.connect(), b.connect()]);
    for (const seq of range(1, 20)) {
      await a.push([change(doc, gwA.id, seq)]);
      await b.push([change(doc, gwB.id, seq)]);
    }
    await waitFor(() => converged(doc, 40), {
      timeoutMs: 20_000,
      description: "both servers hold 40 changes",
    });
    await waitFor(() => range(1, 20).every((s) => seenByA.has(`${gwB.id}:${s}`)), {
      description: "gateway A sees B's changes in real time",
    });
    expect(r.errors).toEqual([]);
  });

  it("anti-entropy at start copies what each side wrote while no replicator ran", async () => {
    const doc = `d-${recordId()}`;
    const a = gateway(s1.url, gwA, doc);
    const b = gateway(s2.url, gwB, doc);
    await a.push(range(1, 25).map((s) => change(doc, gwA.id, s)));
    await b.push(range(1, 15).map((s) => change(doc, gwB.id, s)));
    const r = replicator();
    const syncs: ReplicatorEvents["sync"][] = [];
    r.on("sync", (s) => syncs.push(s));
    await r.start();
    // Each side pushed one pack (25 and 15 changes): two records to copy.
    expect(syncs[0]?.copied).toBe(2);
    await waitFor(() => converged(doc, 40));
    expect((await r.sync()).copied).toBe(0);
  });

  it("partition between the servers: both sides write, heal, converge", async () => {
    const doc = `d-${recordId()}`;
    const r = replicator();
    await r.start();
    const a = gateway(s1.url, gwA, doc);
    const b = gateway(s2.url, gwB, doc);
    await a.push([change(doc, gwA.id, 1)]);
    await waitFor(() => converged(doc, 1));
    link2.cut();
    await a.push(range(2, 30).map((s) => change(doc, gwA.id, s)));
    await b.push(range(1, 30).map((s) => change(doc, gwB.id, s)));
    await waitFor(async () => (await keysOn(s1.url, doc)).length === 30, {
      description: "s1 has only its side",
    });
    expect((await keysOn(s2.url, doc)).filter((k) => k.startsWith(gwA.id)).length).toBe(1);
    link2.heal();
    await waitFor(() => converged(doc, 60), { timeoutMs: 20_000, description: "convergence after heal" });
  });

  it("SSE drop (server paused during writes): catch-up fills the gap after resume", async () => {
    const doc = `d-${recordId()}`;
    const r = replicator();
    await r.start();
    const a = gateway(s1.url, gwA, doc);
    await a.push([change(doc, gwA.id, 1)]);
    await waitFor(() => converged(doc, 1));
    await s2.pause();
    try {
      await a.push(range(2, 40).map((s) => change(doc, gwA.id, s)));
      await waitFor(() => r.errors.length > 0, { description: "the replicator notices the paused server" });
    } finally {
      await s2.resume();
    }
    await waitFor(() => converged(doc, 40), { timeoutMs: 20_000, description: "catch-up after resume" });
  });

  it("quarantines malformed records written straight into a server while replication goes on", async () => {
    const doc = `d-${recordId()}`;
    const r = replicator();
    const quarantined: ReplicatorEvents["quarantine"][] = [];
    r.on("quarantine", (q) => quarantined.push(q));
    await r.start();
    const raw = createPocketBaseClient({ url: s1.url, auth: gwB.auth });
    await raw.authenticate();
    const base = { doc, origin: gwB.id, node: gwB.id };
    const bad = [
      rawChangeRecord({ ...base, origin: `zz${gwB.id}`, seq: 1, ops: [] }),
      rawChangeRecord({ ...base, seq: 1 }, { changes: { doc, g: "not runs" } }),
      rawChangeRecord({ ...base, seq: 2 }, { hlc: "bad hlc" }),
      rawChangeRecord({ ...base, seq: 3, ops: [{ kind: "inc", path: ["a"], value: "NaN" }] }),
    ];
    const badIds: string[] = [];
    // A gateway cannot store the unbound origin (the server's pb_hooks bundle refuses it); a server
    // without the bundle or a superuser can: write that one as the superuser.
    const admin = s1.client();
    for (const [i, rec] of bad.entries()) {
      badIds.push((await (i === 0 ? admin : raw.pb).collection(Collections.Changes).create(rec)).id);
    }
    const good = await raw.pb
      .collection(Collections.Changes)
      .create(rawChangeRecord({ ...base, seq: 4, ops: [{ kind: "set", path: ["ok"], value: true }] }));
    await waitFor(async () => (await keysOn(s2.url, doc)).includes(`${gwB.id}:4`), {
      description: "the good record copied",
    });
    await r.sync();
    expect(await keysOn(s2.url, doc)).toEqual([`${gwB.id}:4`]);
    expect(new Set(quarantined.map((q) => q.recordId))).toEqual(new Set(badIds));
    expect(quarantined.every((q) => q.error.code === "schema/invalid" && q.url === link1.url)).toBe(true);
    expect(good.id).toBeTruthy();
  });

  it("gateway credentials cannot replicate other nodes' records", async () => {
    const doc = `d-${recordId()}`;
    const b = gateway(s2.url, gwB, doc);
    await b.push([change(doc, gwB.id, 1)]);
    const errors: Error[] = [];
    const r = createReplicator({
      servers: [
        { url: s1.url, auth: gwA.auth },
        { url: s2.url, auth: gwA.auth },
      ],
      onError: (e) => errors.push(e),
    });
    cleanups.push(() => r.stop());
    await r.start();
    expect(await keysOn(s1.url, doc)).toEqual([]);
    expect(errors.some((e) => (e as { code?: string }).code === "transport/rejected")).toBe(true);
  });

  it("runs on its own as the nxs-replicator command until stopped", async () => {
    const doc = `d-${recordId()}`;
    const stop = new AbortController();
    const lines: string[] = [];
    const log = (...a: unknown[]) => lines.push(a.map(String).join(" "));
    const exit = runReplicatorCli(["--server", s1.url, "--server", s2.url, "--interval", "60000"], {
      env: { NXS_REPLICATOR_EMAIL: repl.email, NXS_REPLICATOR_PASSWORD: repl.password },
      logger: { debug: () => {}, info: log, warn: log, error: log },
      signal: stop.signal,
    });
    const a = gateway(s1.url, gwA, doc);
    await a.push(range(1, 5).map((s) => change(doc, gwA.id, s)));
    await waitFor(() => converged(doc, 5), { description: "the CLI replicated" });
    stop.abort();
    expect(await exit).toBe(0);
    expect(lines.some((l) => l.includes("replicating between"))).toBe(true);
  });

  it("anti-entropy compares per-origin digests, and a periodic full sweep repairs holes digests cannot see", async () => {
    const doc = `d-${recordId()}`;
    const r = replicator();
    await r.start();
    await r.stop();
    // Two different holes with equal digests (head 4, 3 changes): s1 has 1,2,4 and s2 has 1,3,4.
    for (const seq of [1, 2, 4]) await putPack(s1.url, doc, seq, seq);
    for (const seq of [1, 3, 4]) await putPack(s2.url, doc, seq, seq);
    const r2 = replicator({ fullSweepEvery: 1000 });
    await r2.start(); // digest rounds only
    const digestRound = await r2.sync();
    expect(digestRound.copied).toBe(0);
    expect(await keysOn(s1.url, doc)).toHaveLength(3);
    const fullRound = await r2.sync({ full: true });
    expect(fullRound.copied).toBe(2);
    expect(fullRound.listed).toBeGreaterThan(digestRound.listed);
    await waitFor(() => converged(doc, 4));
  });

  it("packs cut differently on two servers converge by coverage (the log merge rule)", async () => {
    const doc = `d-${recordId()}`;
    // The same changes cut two ways (an answer lost, the push repeated on the other server): s1 holds
    // 1..4 as one pack and 5..6; s2 holds 1..2 (the pack a retry found) and 5..8.
    await putPack(s1.url, doc, 1, 4);
    await putPack(s1.url, doc, 5, 6);
    await putPack(s2.url, doc, 1, 2);
    await putPack(s2.url, doc, 5, 8);
    const r = replicator({ fullSweepEvery: 1000 });
    await r.start();
    await waitFor(() => converged(doc, 8), { description: "both servers covering 1..8" });
    // s2 received the tail 3..4 of s1's longer pack at key 1; s1 the tail 7..8 of s2's pack at key 5.
    expect(await packsOn(s2.url, doc)).toEqual([
      [1, 2],
      [3, 4],
      [5, 8],
    ]);
    expect(await packsOn(s1.url, doc)).toEqual([
      [1, 4],
      [5, 6],
      [7, 8],
    ]);
    // A full sweep copies nothing more: every record's range is covered on the other server.
    expect((await r.sync({ full: true })).copied).toBe(0);
  });

  it("a longer pack reaches a server holding several shorter ones under its range (tail of a tail)", async () => {
    const doc = `d-${recordId()}`;
    // A gateway pushed 1..3 and 4..6 to s2, then (its acks lost) its outbox 1..10 to s1 as one pack.
    await putPack(s2.url, doc, 1, 3);
    await putPack(s2.url, doc, 4, 6);
    await putPack(s1.url, doc, 1, 10);
    const r = replicator({ fullSweepEvery: 1000 });
    await r.start();
    await waitFor(() => converged(doc, 10), { description: "s2 covering 1..10" });
    expect(await packsOn(s2.url, doc)).toEqual([
      [1, 3],
      [4, 6],
      [7, 10],
    ]);
    expect((await r.sync({ full: true })).copied).toBe(0);
    // The digests differ for good (1 record against 3). A replicator that has not seen them yet
    // lists the group (4 rows: 1 on s1, 3 on s2) once, finds nothing to copy, and not again while the
    // digests stay the same. (Earlier tests' groups that hold quarantined records are listed once
    // too, and settle the same way; no snapshot or ack, listed every round, exists here.)
    const fresh = replicator({ fullSweepEvery: 1000 });
    const first = await fresh.sync();
    const second = await fresh.sync();
    expect(first.copied + second.copied).toBe(0);
    expect(first.listed).toBeGreaterThanOrEqual(4);
    expect(second.listed).toBe(0);
  });

  it.each([
    ["a wrong password", () => ({ email: repl.email, password: "not-the-password" })],
    ["a gateway account of nxs_nodes", () => ({ email: gwA.email, password: gwA.password })],
  ])(
    "start() rejects with transport/unauthorized when every server refuses the login (%s)",
    async (_, creds) => {
      const errors: Error[] = [];
      const r = createReplicator({
        servers: [
          { url: s1.url, auth: creds() },
          { url: s2.url, auth: creds() },
        ],
        onError: (e) => errors.push(e),
      });
      cleanups.push(() => r.stop());
      const error = await r.start().then(
        () => undefined,
        (e: NxsError) => e,
      );
      expect(error?.code).toBe("transport/unauthorized");
      for (const url of [s1.url, s2.url]) {
        expect(error?.message).toContain(`${url} refused the login to nxs_replicators`);
      }
      expect(error?.message).not.toMatch(/unreachable|unavailable/);
      expect(r.status().state).toBe("stopped");
      expect(errors).toEqual([]);
    },
  );

  it("the nxs-replicator process exits 3 when a gateway account's login is refused everywhere", async () => {
    const root = fileURLToPath(new URL("../../../../", import.meta.url));
    const bin = fileURLToPath(new URL("../../src/bin.ts", import.meta.url));
    const env: NodeJS.ProcessEnv = { ...process.env, NXS_REPLICATOR_EMAIL: gwA.email };
    env.NXS_REPLICATOR_PASSWORD = gwA.password;
    delete env.NXS_NODE_EMAIL;
    delete env.NXS_NODE_PASSWORD;
    const child = spawn(process.execPath, ["--import", "tsx", bin, "--server", s1.url, "--server", s2.url], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    expect(code, stderr).toBe(3);
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^nxs-sync ERROR \[nxs-replicator\] exit 3: transport\/unauthorized: /);
    for (const url of [s1.url, s2.url])
      expect(lines[0]).toContain(`${url} refused the login to nxs_replicators`);
  });

  it("a copy refused for every record is reported once, then once with the count of its repeats", async () => {
    const doc = `d-${recordId()}`;
    const b = gateway(s2.url, gwB, doc);
    for (const seq of range(1, 5)) await b.push([change(doc, gwB.id, seq)]);
    const scheduler = createManualScheduler();
    const lines: string[] = [];
    const log = (m: string) => lines.push(m);
    // A gateway account (its own collection named): it may read everything but not write B's records.
    const r = replicator({
      servers: [
        { url: link1.url, auth: gwA.auth },
        { url: link2.url, auth: gwA.auth },
      ],
      scheduler,
      intervalMs: 10 * 60_000,
      logger: { debug: () => {}, info: () => {}, warn: log, error: log },
    });
    let rounds = 0;
    r.on("sync", () => rounds++);
    let connected = 0;
    r.on("connected", () => connected++);
    await r.start();
    await waitFor(() => connected === 2, { description: "both servers subscribed" });
    // Joins (or follows) the rounds the two realtime connections asked for: every round is over then.
    await r.sync();
    for (let i = 0; i < 8; i++) await r.sync();
    // Each round fails copying each of B's 5 records from s2 to s1: one failure repeated per record
    // (a refused record does not end the round).
    const refusedCopy = (e: Error) =>
      (e as NxsError).code === "transport/rejected" && e.message.includes(`nxs_changes to ${link1.url}`);
    expect(rounds).toBeGreaterThanOrEqual(10);
    expect(r.errors.filter(refusedCopy)).toHaveLength(1);
    scheduler.advance(60_000);
    const reports = r.errors.filter(refusedCopy);
    expect(reports).toHaveLength(2);
    expect(reports[1]!.message).toMatch(
      new RegExp(`\\(and ${5 * rounds - 1} more like it in the last 60 s\\)$`),
    );
    // Each report is one log line, not a warning and an error.
    expect(lines.filter((l) => l.includes(`nxs_changes to ${link1.url}`))).toHaveLength(2);
  });

  it("every link cut: one fatal lost-all report once lostAllAfterMs passed on its clock, cleared when a server is back", async () => {
    const scheduler = createManualScheduler();
    // Logins get 5 s: at start, under a loaded machine, they took over the file's default of 1 s.
    const r = replicator({ scheduler, lostAllAfterMs: 60_000, logger: silentLogger, requestTimeoutMs: 5000 });
    const fatal: ReplicatorEvents["fatal"][] = [];
    r.on("fatal", (f) => fatal.push(f));
    await r.start();
    expect(r.status().state).toBe("running");
    link1.cut();
    link2.cut();
    // Health checks run on the scheduler's clock: each poll moves it by one health interval.
    await waitFor(
      () => {
        if (r.status().lostSince === undefined) scheduler.advance(200);
        return r.status().lostSince !== undefined;
      },
      { timeoutMs: 30_000, description: "both servers unreachable" },
    );
    expect(r.status().servers.map((s) => s.state)).toEqual(["unreachable", "unreachable"]);
    const lostSince = r.status().lostSince as number;
    scheduler.advance(lostSince + 60_000 - 1 - scheduler.now());
    expect(fatal).toEqual([]);
    scheduler.advance(1);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.error.code).toBe("transport/unavailable");
    for (const url of [link1.url, link2.url]) expect(fatal[0]!.error.message).toContain(`${url} unreachable`);
    expect(r.status()).toMatchObject({ state: "lost", lastError: fatal[0]!.error });
    link2.heal();
    await waitFor(
      () => {
        if (r.status().lostSince !== undefined) scheduler.advance(200);
        return r.status().lostSince === undefined;
      },
      { timeoutMs: 30_000, description: "s2 usable again" },
    );
    expect(r.status()).toMatchObject({ state: "running", lastError: undefined });
    expect(r.status().servers.map((s) => s.state)).toEqual(["unreachable", "ok"]);
    expect(fatal).toHaveLength(1);
  });
});
