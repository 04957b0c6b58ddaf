import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { beforeAll, describe, expect, it } from "vitest";
import { CliExitCode } from "../../src/index.js";
import type { FleetStatus } from "../../src/status.js";
import {
  cli,
  leaksPassword,
  readIds,
  runReplicator,
  SUPERUSER,
  serverArgs,
  startFleetServer,
  startSetUpFleet,
  writeChanges,
} from "./fleet.js";

const servers = usePocketBaseServers();

describe("nxs-sync status", () => {
  let a: ProcessPocketBase;
  let b: ProcessPocketBase;
  let ids: string;
  beforeAll(async () => {
    ({ a, b, ids } = await startSetUpFleet(servers, "status"));
  });

  it("shows a server behind (exit 7), then convergence once the replicator ran (exit 0); reads only", async () => {
    const { nodes, replicator } = await readIds(ids);
    const gw = nodes[0]!;
    await writeChanges(a.url, gw, "doc-1", 1, 5);
    const behind = await cli(["status", ...serverArgs([a, b]), "--json"]);
    expect(behind.code, behind.stderr).toBe(CliExitCode.Diverged);
    const s = behind.json<FleetStatus>();
    const origin = `${gw.id}.t`;
    expect(s.docs).toHaveLength(1);
    expect(s.docs[0]?.servers[a.url]).toMatchObject({ vector: { [origin]: 5 }, behind: 0, records: 5 });
    expect(s.docs[0]?.servers[b.url]).toMatchObject({ vector: {}, behind: 5, records: 0 });
    expect(s.docs[0]?.diverged).toBe(true);
    expect(s.servers.map((x) => [x.reachable, x.hooks, x.schema])).toEqual([
      [true, 4, 4],
      [true, 4, 4],
    ]);
    // Reading wrote nothing: a second reading is the same.
    const again = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
    expect(again.docs).toEqual(s.docs);
    const table = await cli(["status", ...serverArgs([a, b])]);
    expect(table.stdout).toMatch(/doc-1 .*\| 5 +\|/);
    expect(table.stdout).toMatch(/NOT converged: doc-1/);
    expect(leaksPassword(table)).toBe(false);

    const stop = new AbortController();
    const running = runReplicator([a.url, b.url], replicator, stop.signal);
    try {
      await waitFor(async () => (await cli(["status", ...serverArgs([a, b])])).code === 0 || undefined, {
        timeoutMs: 30_000,
        intervalMs: 200,
      });
    } finally {
      stop.abort();
      expect(await running).toBe(0);
    }
    const done = await cli(["status", ...serverArgs([a, b])]);
    expect(done.code).toBe(CliExitCode.Ok);
    expect(done.stdout).toMatch(/converged: 1 doc\(s\) equal on 2 server\(s\)/);
    const json = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
    expect(json.docs[0]?.servers[b.url]).toMatchObject({ vector: { [origin]: 5 }, behind: 0 });
    expect(json.docs[0]?.servers[a.url]?.digest).toBe(json.docs[0]?.servers[b.url]?.digest);
  });

  it("shows the queue's jobs per state when nxs_jobs exists", async () => {
    const s = (await cli(["status", ...serverArgs([a]), "--json"])).json<FleetStatus>();
    expect(s.servers[0]?.queue).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 0 });
  });

  it("an unreachable server is NO (exit 4), a refused login exit 3, never echoing the password", async () => {
    const down = await cli(["status", ...serverArgs([a]), "--server", "http://127.0.0.1:9"]);
    expect(down.code).toBe(CliExitCode.Unreachable);
    expect(down.stdout).toMatch(/127\.0\.0\.1:9 +\| NO/);
    expect(down.stdout).toMatch(/server unavailable/);
    const wrong = await cli(["status", ...serverArgs([a]), "--json"], {
      NXS_SUPERUSER_EMAIL: SUPERUSER.email,
      NXS_SUPERUSER_PASSWORD: "not-the-password",
    });
    expect(wrong.code).toBe(CliExitCode.AuthRefused);
    expect(wrong.json<FleetStatus>().servers[0]?.error?.code).toBe("transport/unauthorized");
    expect(leaksPassword(wrong, "not-the-password")).toBe(false);
  });

  it("a server without the hooks bundle is a PROBLEM with its fix (exit 6)", async () => {
    const bare = await startFleetServer(servers, "status-nohooks", { nxsHooks: false, hookFiles: [] });
    expect((await cli(["setup", "--server", bare.url, "--identities", ids])).code).toBe(CliExitCode.NotReady);
    const run = await cli(["status", "--server", bare.url]);
    expect(run.code).toBe(CliExitCode.NotReady);
    expect(run.stdout).toMatch(/PROBLEM/);
    expect(run.stdout).toMatch(/no nxs-sync hooks bundle/);
  });

  it("token secrets: equal after setup; an authRule edit on one server shows as drift (exit 7) until setup repairs it", async () => {
    const secretsOf = (st: FleetStatus) => st.servers.map((x) => x.records?.users?.secrets);
    const before = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
    const [sa, sb] = secretsOf(before);
    expect(sa).toMatch(/^[0-9a-f]{64}$/);
    expect(sb).toBe(sa);
    // An operator edits the users collection's authRule in the Admin UI: PocketBase makes a new
    // token secret there, and a session made on a is no longer accepted by b.
    await b.client().collections.update("users", { authRule: "verified = true || verified = false" });
    const drift = await cli(["status", ...serverArgs([a, b])]);
    expect(drift.code).toBe(CliExitCode.Diverged);
    expect(drift.stdout).toMatch(/token secrets differ: run nxs-sync setup/);
    const setup = await cli(["setup", ...serverArgs([a, b]), "--identities", ids]);
    expect(setup.code, setup.stderr).toBe(CliExitCode.Ok);
    expect(setup.stdout).toMatch(new RegExp(`copied the token secrets of users to ${b.url}`));
    const after = await cli(["status", ...serverArgs([a, b]), "--json"]);
    expect(after.code).toBe(CliExitCode.Ok);
    expect(secretsOf(after.json<FleetStatus>())).toEqual([sa, sa]);
  });

  it("nxs-sync replicator copies accounts (--records, default users): sign up on a, log in on b", async () => {
    const { replicator } = await readIds(ids);
    const email = `ann-${Date.now()}@example.test`;
    const user = await a.client().collection("users").create({
      email,
      password: "a-long-password-1",
      passwordConfirm: "a-long-password-1",
    });
    const stop = new AbortController();
    const running = runReplicator([a.url, b.url], replicator, stop.signal);
    try {
      await waitFor(
        async () =>
          (await b
            .client()
            .collection("users")
            .getOne(user.id)
            .catch(() => undefined)) ?? undefined,
        { timeoutMs: 30_000, description: "the account on b" },
      );
    } finally {
      stop.abort();
      expect(await running).toBe(0);
    }
    const onB = b.client();
    onB.authStore.clear();
    const auth = await onB.collection("users").authWithPassword(email, "a-long-password-1");
    expect(auth.record.id).toBe(user.id);
    const st = (await cli(["status", ...serverArgs([a, b]), "--json"])).json<FleetStatus>();
    expect(st.servers.map((x) => x.records?.users?.count)).toEqual([1, 1]);
  });

  it("--watch refreshes until interrupted (one JSON line per reading)", async () => {
    const stop = new AbortController();
    let out = "";
    const { runCli } = await import("../../src/index.js");
    const running = runCli(
      ["status", ...serverArgs([a, b]), "--watch", "--interval", "50", "--json", "--stale-after", "86400"],
      {
        env: { NXS_SUPERUSER_EMAIL: SUPERUSER.email, NXS_SUPERUSER_PASSWORD: SUPERUSER.password },
        stdout: { write: (t: string) => (out += t) },
        stderr: { write: () => true },
        signal: stop.signal,
      },
    );
    await waitFor(() => out.split("\n").filter((l) => l !== "").length >= 3 || undefined, {
      timeoutMs: 30_000,
    });
    stop.abort();
    expect(await running).toBe(CliExitCode.Ok);
    for (const line of out.trim().split("\n")) expect(JSON.parse(line)).toMatchObject({ converged: true });
  });

  it("shows a running replicator's last round, and a stopped one stale once past --stale-after (exit 8)", async () => {
    const { replicator } = await readIds(ids);
    const rowOf = (s: FleetStatus) => s.replicators.find((x) => x.id === replicator.id);
    const read = async (now?: () => number) => {
      const run = await cli(
        ["status", ...serverArgs([a, b]), "--json", "--stale-after", "120"],
        undefined,
        undefined,
        now,
      );
      return { code: run.code, status: run.json<FleetStatus>() };
    };
    // The first test's replicator left its rows: this run's first round rewrites them (rounds from 1 again).
    const before = rowOf((await read()).status)?.lastRound;
    const stop = new AbortController();
    const running = runReplicator([a.url, b.url], replicator, stop.signal);
    let alive: FleetStatus | undefined;
    try {
      // Its first round writes its row on both servers (then at most every 15 s).
      alive = await waitFor(
        async () => {
          const { code, status } = await read();
          const r = rowOf(status);
          return code === CliExitCode.Ok && r?.on.length === 2 && r.lastRound !== before ? status : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
    } finally {
      stop.abort();
      expect(await running).toBe(0);
    }
    expect(rowOf(alive)).toMatchObject({
      name: "replicator",
      stale: false,
      lastError: "",
      intervalMs: 200,
      sees: [
        { url: a.url, state: "ok" },
        { url: b.url, state: "ok" },
      ],
    });
    expect(rowOf(alive)?.rounds).toBeGreaterThanOrEqual(1);
    // Its last row, once stopped (it may have written one more since the reading above).
    const r = rowOf((await read()).status);
    const lastRound = Date.parse(String(r?.lastRound).replace(" ", "T"));

    // Stopped: it writes no more. Judged by a clock 2 min + 1 s after its last round, it is stale;
    // 1 s after, it is not (the threshold, not the wall clock, decides).
    const fresh = await cli(
      ["status", ...serverArgs([a, b]), "--stale-after", "120"],
      undefined,
      undefined,
      () => lastRound + 1000,
    );
    expect(fresh.code, fresh.stdout).toBe(CliExitCode.Ok);
    expect(fresh.stdout).toMatch(/replicator +\| [a-z0-9]+ +\| 1s ago +\|/);
    const later = () => lastRound + 121_000;
    const stale = await cli(
      ["status", ...serverArgs([a, b]), "--stale-after", "120"],
      undefined,
      undefined,
      later,
    );
    expect(stale.code, stale.stdout).toBe(CliExitCode.ReplicatorStale);
    expect(stale.stdout).toMatch(/2m ago STALE \(> 120s\)/);
    const json = await cli(
      ["status", ...serverArgs([a, b]), "--json", "--stale-after", "120"],
      undefined,
      undefined,
      later,
    );
    expect(json.code).toBe(CliExitCode.ReplicatorStale);
    const s = json.json<FleetStatus>();
    expect(s.replicators.find((x) => x.id === replicator.id)).toMatchObject({ stale: true, ageMs: 121_000 });
    // The data still agree: staleness is about the process, not the docs.
    expect(s.converged).toBe(true);
    expect((await cli(["status", ...serverArgs([a, b]), "--stale-after", "0"])).code).toBe(CliExitCode.Usage);
  });
});
