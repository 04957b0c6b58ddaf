import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createPocketBaseConfigBackend } from "@nxs-sync/config/pocketbase";
import { encodeHlc, silentLogger } from "@nxs-sync/core";
import { createCryptoRandom, newJobId } from "@nxs-sync/queue";
import { createPocketBaseQueueBackend } from "@nxs-sync/queue/pocketbase";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import PocketBase from "pocketbase";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { newRecordId } from "../../src/identities.js";
import { CliExitCode, runCli } from "../../src/index.js";
import type { FleetStatus } from "../../src/status.js";
import type { Manifest } from "../../src/verify.js";
import {
  cli,
  leaksPassword,
  readIds,
  runReplicator,
  SUPERUSER,
  SUPERUSER_ENV,
  serverArgs,
  startFleetServer,
  startSetUpFleet,
  writeChanges,
} from "./fleet.js";

const servers = usePocketBaseServers();

/** The version vector of a doc on a server, as `status` reads it. */
async function vectorOn(urls: readonly string[], url: string, doc: string): Promise<Record<string, number>> {
  const s = (await cli(["status", ...urls.flatMap((u) => ["--server", u]), "--json"])).json<FleetStatus>();
  return s.docs.find((d) => d.doc === doc)?.servers[url]?.vector ?? {};
}

/** Runs the replicator until `status` says converged. */
async function replicateUntilConverged(
  urls: readonly string[],
  replicator: { email: string; password: string; id: string },
): Promise<void> {
  const stop = new AbortController();
  const running = runReplicator(urls, replicator, stop.signal);
  try {
    await waitFor(
      async () => (await cli(["status", ...urls.flatMap((u) => ["--server", u])])).code === 0 || undefined,
      {
        timeoutMs: 60_000,
        intervalMs: 250,
      },
    );
  } finally {
    stop.abort();
    expect(await running).toBe(0);
  }
}

describe("nxs-sync backup, verify, restore, reseed", () => {
  let a: ProcessPocketBase;
  let b: ProcessPocketBase;
  let ids: string;
  let dir: string;
  beforeAll(async () => {
    ({ a, b, dir, ids } = await startSetUpFleet(servers, "backup"));
  });

  it("restore drill: back up, write more, restore one server, replicate: status converges and no doc goes backwards", async () => {
    const { nodes, replicator } = await readIds(ids);
    const gw = nodes[0]!;
    const urls = [a.url, b.url];
    await writeChanges(a.url, gw, "drill", 1, 5);
    await replicateUntilConverged(urls, replicator);
    const backups = join(dir, "full");
    const backup = await cli(["backup", "--server", a.url, "--dir", backups, "--json", "--progress"]);
    expect(backup.code, backup.stderr).toBe(CliExitCode.Ok);
    expect(leaksPassword(backup)).toBe(false);
    const m = backup.json<{ path: string; manifest: Manifest }>().manifest;
    expect(m.kind).toBe("full");
    expect(m.verified.integrity).toBe("ok");
    expect(m.verified.tables.nxs_changes?.count).toBe(5);
    expect(m.verified.tables.nxs_nodes?.count).toBe(1);
    expect(backup.stderr).toMatch(/100%/); // the progress bar
    const path = backup.json<{ path: string }>().path;
    expect((await cli(["verify", path])).code).toBe(CliExitCode.Ok);

    await writeChanges(a.url, gw, "drill", 6, 5);
    await replicateUntilConverged(urls, replicator);
    const before = await vectorOn(urls, a.url, "drill");
    expect(Object.values(before)).toEqual([10]);

    // No replicator runs during this drill: --no-wait (the fence covers the restore only).
    const restore = await cli(["restore", "--server", a.url, "--file", path, "--no-wait"]);
    expect(restore.code, restore.stderr).toBe(CliExitCode.Ok);
    expect(restore.stdout).toMatch(/answers again/);
    // A is back at the backup (5 of 10): status says so.
    const after = await cli(["status", ...serverArgs([a, b]), "--json"]);
    expect(after.code).toBe(CliExitCode.Diverged);
    expect(after.json<FleetStatus>().docs[0]?.servers[a.url]).toMatchObject({ behind: 5 });

    await replicateUntilConverged(urls, replicator);
    for (const url of urls) {
      const v = await vectorOn(urls, url, "drill");
      for (const [origin, seq] of Object.entries(before)) expect(v[origin]).toBeGreaterThanOrEqual(seq);
    }
  });

  it("restore drill, queue: a job completed after the backup is not run again once the restored server caught up", async () => {
    const { nodes, replicator } = await readIds(ids);
    const gw = nodes[0]!;
    const urls = [a.url, b.url];
    const backend = createPocketBaseQueueBackend({
      endpoints: [a.url],
      auth: { email: gw.email, password: gw.password },
      logger: silentLogger,
    });
    try {
      const id = newJobId(createCryptoRandom());
      await backend.enqueue([
        { id, queue: "drill", payload: { n: 1 }, maxAttempts: 3, backoff: {}, timeoutMs: 0 },
      ]);
      const backup = await cli(["backup", "--server", a.url, "--dir", join(dir, "queue"), "--json"]);
      expect(backup.code, backup.stderr).toBe(0);
      expect(backup.json<{ manifest: Manifest }>().manifest.verified.tables.nxs_jobs?.count).toBe(1);
      const [claimed] = await backend.claim({ queue: "drill", worker: "w1", leaseMs: 30_000, max: 1 });
      expect(claimed?.job.id).toBe(id);
      await backend.settle([{ id, token: claimed!.token, kind: "complete" }]);
      await replicateUntilConverged(urls, replicator);
      await waitFor(
        async () => (await b.client().collection("nxs_jobs").getOne(id)).state === "completed" || undefined,
        { timeoutMs: 30_000 },
      );

      expect(
        (
          await cli([
            "restore",
            "--server",
            a.url,
            "--file",
            backup.json<{ path: string }>().path,
            "--no-wait",
          ])
        ).code,
      ).toBe(0);
      expect((await a.client().collection("nxs_jobs").getOne(id)).state).toBe("waiting"); // the backup's state
      const stop = new AbortController();
      const running = runReplicator(urls, replicator, stop.signal);
      try {
        await waitFor(
          async () => (await a.client().collection("nxs_jobs").getOne(id)).state === "completed" || undefined,
          { timeoutMs: 60_000, intervalMs: 200 },
        );
      } finally {
        stop.abort();
        expect(await running).toBe(0);
      }
      const status = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
      expect(status.servers.map((s) => s.queue?.completed)).toEqual([1, 1]);
      expect(await backend.claim({ queue: "drill", worker: "w2", leaseMs: 30_000, max: 1 })).toEqual([]);
    } finally {
      await backend.close();
    }
  });

  it("restore drill, config: a head moved after the backup comes back to the restored server, never further back", async () => {
    const { nodes, replicator } = await readIds(ids);
    const gw = nodes[0]!;
    const urls = [a.url, b.url];
    const config = createPocketBaseConfigBackend({
      endpoints: [a.url],
      auth: { email: gw.email, password: gw.password },
      logger: silentLogger,
    });
    const put = (expectedVersion: number, value: number) =>
      config.put({
        id: newRecordId(),
        env: "prod",
        key: "limits",
        expectedVersion,
        hlc: encodeHlc({ ms: Date.now(), counter: 0, node: gw.id }),
        node: gw.id,
        author: "ops",
        message: `v${expectedVersion + 1}`,
        value: { max: value },
      });
    try {
      await put(0, 1);
      const backup = await cli(["backup", "--server", a.url, "--dir", join(dir, "config"), "--json"]);
      expect(backup.code, backup.stderr).toBe(0);
      await put(1, 2);
      await replicateUntilConverged(urls, replicator);
      const before = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
      expect(before.servers[0]?.config?.prod).toMatchObject({ keys: 1 });
      expect(before.servers[0]?.config).toEqual(before.servers[1]?.config);

      expect(
        (
          await cli([
            "restore",
            "--server",
            a.url,
            "--file",
            backup.json<{ path: string }>().path,
            "--no-wait",
          ])
        ).code,
      ).toBe(0);
      const restored = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
      expect(restored.servers[0]?.config?.prod?.digest).not.toBe(before.servers[0]?.config?.prod?.digest); // v1 again
      expect(restored.converged).toBe(false);
      await replicateUntilConverged(urls, replicator);
      const after = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
      expect(after.servers[0]?.config).toEqual(before.servers[0]?.config);
      expect(after.servers[1]?.config).toEqual(before.servers[1]?.config);
      const heads = await a
        .client()
        .collection("nxs_config_versions")
        .getFullList({ filter: 'env = "prod" && key = "limits"' });
      expect(Math.max(...heads.map((h) => h.version as number))).toBe(2);
    } finally {
      await config.close();
    }
  });

  it("fence: a fenced server refuses a gateway's writes (503) until lifted", async () => {
    const { nodes } = await readIds(ids);
    const gw = nodes[0]!;
    const set = await cli([
      "fence",
      "--server",
      b.url,
      "--set",
      "--reason",
      "drill",
      "--ttl",
      "60",
      "--json",
    ]);
    expect(set.code, set.stderr).toBe(CliExitCode.Ok);
    expect(set.json()).toMatchObject({ fenced: true, reason: "drill" });
    const lifted = () => cli(["fence", "--server", b.url, "--lift"]);
    onTestFinished(async () => {
      await lifted();
    });
    await expect(writeChanges(b.url, gw, "fenced", 1, 1)).rejects.toMatchObject({
      status: 503,
      response: {
        data: { fence: { code: "nxs_fenced", message: expect.stringMatching(/^drill; until \d+\.?$/i) } },
      },
    });
    // The queue's and config store's write routes check the fence too; their reads do not.
    const pb = new PocketBase(b.url);
    await pb.collection("nxs_nodes").authWithPassword(gw.email, gw.password);
    for (const route of ["/nxs/queue/enqueue", "/nxs/config/put", "/nxs/lease"])
      await expect(pb.send(route, { method: "POST", body: {}, requestKey: null })).rejects.toMatchObject({
        status: 503,
      });
    await expect(
      pb.send("/nxs/queue/counts", { method: "POST", body: { queue: "q" }, requestKey: null }),
    ).resolves.toBeDefined();
    const shown = await cli(["fence", "--server", b.url]);
    expect(shown.stdout).toMatch(/is fenced \(drill\)/);
    const lift = await cli(["fence", "--server", b.url, "--lift", "--json"]);
    expect(lift.json()).toMatchObject({ fenced: false });
    await writeChanges(b.url, gw, "fenced", 1, 1);
    expect((await cli(["fence", "--server", b.url, "--set", "--lift"])).code).toBe(CliExitCode.Usage);
    await replicateUntilConverged([a.url, b.url], (await readIds(ids)).replicator);
  });

  it("restore waits for the replicator: with none running (but one known), exit 9, nothing restored, the fence lifted", async () => {
    const { nodes } = await readIds(ids);
    const gw = nodes[0]!;
    // A replicator has reported on a (the drills above ran one); none runs now.
    const backup = await cli(["backup", "--server", a.url, "--dir", join(dir, "wait"), "--json"]);
    await writeChanges(a.url, gw, "wait", 1, 3);
    const run = await cli([
      "restore",
      "--server",
      a.url,
      "--file",
      backup.json<{ path: string }>().path,
      "--drain-timeout",
      "2",
    ]);
    expect(run.code, run.stderr).toBe(CliExitCode.ReplicationWait);
    expect(run.stderr).toMatch(/nothing restored: no replicator round copied/);
    // Nothing restored: the changes written after the backup are still there, and a takes writes.
    await writeChanges(a.url, gw, "wait", 4, 1);
    const s = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
    expect(s.docs.find((d) => d.doc === "wait")?.servers[a.url]?.vector).toEqual({ [`${gw.id}.t`]: 4 });
    await replicateUntilConverged([a.url, b.url], (await readIds(ids)).replicator);
  });

  it("keeps the newest N backups (--keep)", async () => {
    const d = join(dir, "keep");
    for (let i = 0; i < 3; i++) {
      const run = await cli(["backup", "--server", b.url, "--dir", d, "--keep", "2", "--logical"]);
      expect(run.code, run.stderr).toBe(CliExitCode.Ok);
    }
    const files = (await readdir(d)).filter((f) => f.endsWith(".jsonl"));
    expect(files).toHaveLength(2);
    expect((await cli(["backup", "--server", b.url, "--dir", d, "--keep", "0"])).code).toBe(
      CliExitCode.Usage,
    );
  });

  it("scheduled backups (--every) keep the newest N until interrupted", async () => {
    const d = join(dir, "scheduled");
    const stop = new AbortController();
    let out = "";
    const running = runCli(
      ["backup", "--server", b.url, "--dir", d, "--logical", "--keep", "2", "--every", "50", "--json"],
      {
        env: SUPERUSER_ENV,
        stdout: { write: (t: string) => (out += t) },
        stderr: { write: () => true },
        signal: stop.signal,
      },
    );
    await waitFor(() => out.split("\n").filter((l) => l !== "").length >= 4 || undefined, {
      timeoutMs: 60_000,
    });
    stop.abort();
    expect(await running).toBe(CliExitCode.Ok);
    const lines = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { ok: boolean; removed: string[] });
    expect(lines.every((l) => l.ok)).toBe(true);
    expect(lines.flatMap((l) => l.removed).length).toBe(lines.length - 2);
    expect((await readdir(d)).filter((f) => f.endsWith(".jsonl"))).toHaveLength(2);
  });

  it("a corrupt backup fails verification (exit 5) and restore refuses it before touching the server", async () => {
    const d = join(dir, "corrupt");
    const run = await cli(["backup", "--server", b.url, "--dir", d, "--json"]);
    const path = run.json<{ path: string }>().path;
    const bytes = await readFile(path);
    // Flip bytes in the middle of the archive (inside data.db's compressed data).
    for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 3) + i]! ^= 0xff;
    await writeFile(path, bytes);
    const verify = await cli(["verify", path, "--json"]);
    expect(verify.code).toBe(CliExitCode.VerificationFailed);
    expect(verify.stderr).toMatch(/CRC|inflate|sha256|integrity/);
    const restore = await cli(["restore", "--server", b.url, "--file", path]);
    expect(restore.code).toBe(CliExitCode.VerificationFailed);
    // Not a zip at all.
    const junk = join(d, "junk.zip");
    await writeFile(junk, "not a zip");
    const j = await cli(["verify", junk]);
    expect(j.code).toBe(CliExitCode.VerificationFailed);
    expect(j.stderr).toMatch(/not a readable zip/);
    expect((await cli(["status", ...serverArgs([a, b])])).code).toBe(CliExitCode.Ok);
  });

  it("a logical backup does not need a full one's stall, and restores only what a server lacks", async () => {
    const { nodes } = await readIds(ids);
    // This test's own data, on both servers (as the replicator would leave it).
    for (const s of [a, b]) await writeChanges(s.url, nodes[0]!, "logical", 1, 3);
    const d = join(dir, "logical");
    const run = await cli(["backup", "--server", b.url, "--dir", d, "--logical", "--json"]);
    expect(run.code, run.stderr).toBe(CliExitCode.Ok);
    const { path, manifest } = run.json<{ path: string; manifest: Manifest }>();
    expect(manifest.verified.tables.nxs_changes?.count).toBeGreaterThan(0);
    expect((await cli(["verify", path])).code).toBe(CliExitCode.Ok);
    // A fresh server, set up with the same identities, gets every record back.
    const c = await startFleetServer(servers, "backup-c");
    // Set up beside b (the first --server gives the others its token secrets).
    expect((await cli(["setup", "--server", b.url, "--server", c.url, "--identities", ids])).code).toBe(0);
    const restore = await cli(["restore", "--server", c.url, "--file", path, "--json"]);
    expect(restore.code, restore.stderr).toBe(CliExitCode.Ok);
    expect(restore.json<{ created: Record<string, number> }>().created.nxs_changes).toBe(
      manifest.verified.tables.nxs_changes?.count,
    );
    expect((await cli(["status", ...serverArgs([b, c])])).code).toBe(CliExitCode.Ok);
    // Again: everything is there already, nothing is created.
    const again = await cli(["restore", "--server", c.url, "--file", path, "--json"]);
    expect(again.json<{ created: Record<string, number> }>().created.nxs_changes).toBe(0);
    expect(nodes.length).toBeGreaterThan(0);
  });

  it("reseeds an empty server from its peer; status converges over three servers", async () => {
    const empty = await startFleetServer(servers, "backup-empty");
    const run = await cli(["reseed", "--from", b.url, "--to", empty.url]);
    expect(run.code, run.stderr).toBe(CliExitCode.Ok);
    expect((await cli(["status", ...serverArgs([a, b, empty])])).code).toBe(CliExitCode.Ok);
    const logical = await startFleetServer(servers, "backup-empty2");
    expect((await cli(["setup", "--server", b.url, "--server", logical.url, "--identities", ids])).code).toBe(
      0,
    );
    const run2 = await cli(["reseed", "--from", b.url, "--to", logical.url, "--logical"]);
    expect(run2.code, run2.stderr).toBe(CliExitCode.Ok);
    expect((await cli(["status", ...serverArgs([a, b, logical])])).code).toBe(CliExitCode.Ok);
  });

  it("an unreachable server or a refused login fails the backup with its exit code", async () => {
    const d = join(dir, "fail");
    expect((await cli(["backup", "--server", "http://127.0.0.1:9", "--dir", d])).code).toBe(
      CliExitCode.Unreachable,
    );
    const wrong = await cli(["backup", "--server", a.url, "--dir", d], {
      NXS_SUPERUSER_EMAIL: SUPERUSER.email,
      NXS_SUPERUSER_PASSWORD: "nope-nope-nope",
    });
    expect(wrong.code).toBe(CliExitCode.AuthRefused);
    expect(leaksPassword(wrong, "nope-nope-nope")).toBe(false);
  });
});
