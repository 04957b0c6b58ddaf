import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { beforeAll, describe, expect, it } from "vitest";
import { CliExitCode, runCli } from "../../src/index.js";

const sink = { write: () => true };

import { cli, leaksPassword, SUPERUSER, serverArgs, startFleetServer, tempDir } from "./fleet.js";

const servers = usePocketBaseServers();

describe("nxs-sync setup", () => {
  let a: ProcessPocketBase;
  let b: ProcessPocketBase;
  let dir: string;
  beforeAll(async () => {
    a = await startFleetServer(servers, "setup-a");
    b = await startFleetServer(servers, "setup-b");
    dir = await tempDir();
  });

  it("a dry run prints what it would change and changes nothing", async () => {
    const ids = join(dir, "dry.json");
    const run = await cli(["setup", ...serverArgs([a, b]), "--identities", ids, "--dry-run", "--json"]);
    expect(run.code, run.stderr).toBe(CliExitCode.Ok);
    const out = run.json<{
      dryRun: boolean;
      changes: number;
      servers: { created: string[]; identities: { action: string }[] }[];
    }>();
    expect(out.dryRun).toBe(true);
    expect(out.changes).toBeGreaterThan(0);
    expect(out.servers[0]?.created).toContain("nxs_changes");
    expect(out.servers[0]?.identities.map((i) => i.action)).toEqual(["create", "create"]);
    // Nothing written: no collection on the server, no identities file.
    await expect(a.client().collections.getOne("nxs_changes")).rejects.toMatchObject({ status: 404 });
    await expect(stat(ids)).rejects.toMatchObject({ code: "ENOENT" });
    const table = await cli(["setup", ...serverArgs([a]), "--identities", ids, "--dry-run"]);
    expect(table.stdout).toMatch(/would create \d+ collections/);
    expect(table.stdout).toMatch(/nothing was written/);
  });

  it("sets up both servers with equal ids, then a second run changes nothing", async () => {
    const ids = join(dir, "ids.json");
    const first = await cli([
      "setup",
      ...serverArgs([a, b]),
      "--identities",
      ids,
      "--node",
      "gw-a",
      "--node",
      "gw-b",
    ]);
    expect(first.code, first.stderr).toBe(CliExitCode.Ok);
    expect(first.stdout).toMatch(/generated identities/);
    expect(leaksPassword(first)).toBe(false);
    const file = JSON.parse(await readFile(ids, "utf8")) as {
      replicator: { id: string; email: string; password: string };
      nodes: { id: string; email: string; password: string }[];
    };
    expect(file.nodes.map((n) => n.id)).toHaveLength(2);
    expect(((await stat(ids)).mode & 0o777).toString(8)).toBe("600");
    for (const s of [a, b]) {
      const pb = s.client();
      for (const n of file.nodes) expect((await pb.collection("nxs_nodes").getOne(n.id)).email).toBe(n.email);
      expect((await pb.collection("nxs_replicators").getOne(file.replicator.id)).email).toBe(
        file.replicator.email,
      );
      // The generated password logs in on every server.
      const login = await s
        .client()
        .collection("nxs_nodes")
        .authWithPassword(file.nodes[0]!.email, file.nodes[0]!.password);
      expect(login.record.id).toBe(file.nodes[0]!.id);
      const settings = (await pb.settings.getAll()) as { batch: { enabled: boolean } };
      expect(settings.batch.enabled).toBe(true);
    }
    const second = await cli(["setup", ...serverArgs([a, b]), "--identities", ids, "--json"]);
    expect(second.code, second.stderr).toBe(CliExitCode.Ok);
    const out = second.json<{
      changes: number;
      identitiesGenerated: boolean;
      servers: { identities: { action: string }[] }[];
    }>();
    expect(out.changes).toBe(0);
    expect(out.identitiesGenerated).toBe(false);
    expect(out.servers.flatMap((s) => s.identities.map((i) => i.action))).toEqual(Array(6).fill("unchanged"));
    expect((await cli(["setup", ...serverArgs([a, b]), "--identities", ids])).stdout).toMatch(
      /nothing to change/,
    );
    // A changed password in the file is set again (an update), on both servers.
    file.nodes[0]!.password = "a-new-password-123";
    await writeFile(ids, JSON.stringify(file));
    const third = await cli(["setup", ...serverArgs([a, b]), "--identities", ids, "--json"]);
    expect(
      third
        .json<{ servers: { identities: { action: string }[] }[] }>()
        .servers.map((s) => s.identities[1]?.action),
    ).toEqual(["update", "update"]);
    await b.client().collection("nxs_nodes").authWithPassword(file.nodes[0]!.email, "a-new-password-123");
  });

  it("refuses wrong credentials (exit 3), an unreachable server (exit 4), a bad URL (exit 2), never echoing the password", async () => {
    const ids = join(dir, "ids.json");
    const wrong = await cli(["setup", ...serverArgs([a]), "--identities", ids, "--json"], {
      NXS_SUPERUSER_EMAIL: SUPERUSER.email,
      NXS_SUPERUSER_PASSWORD: "wrong-password-here",
    });
    expect(wrong.code).toBe(CliExitCode.AuthRefused);
    expect(wrong.stderr).toMatch(/superuser login was refused/);
    expect(wrong.json()).toMatchObject({ ok: false, exitCode: 3, error: { code: "transport/unauthorized" } });
    expect(leaksPassword(wrong, "wrong-password-here")).toBe(false);
    const down = await cli(["setup", "--server", "http://127.0.0.1:9", "--identities", ids]);
    expect(down.code).toBe(CliExitCode.Unreachable);
    expect(down.stderr).toMatch(/127\.0\.0\.1:9.*unavailable/);
    expect(leaksPassword(down)).toBe(false);
    const bad = await cli(["setup", "--server", "127.0.0.1:8090", "--identities", ids]);
    expect(bad.code).toBe(CliExitCode.Usage);
    const none = await cli(["setup", ...serverArgs([a]), "--identities", ids], {});
    expect(none.code).toBe(CliExitCode.Usage);
    expect(none.stderr).toMatch(/NXS_SUPERUSER_EMAIL/);
    // Flags and a credentials file work as well as the environment.
    const flags = await cli(
      [
        "--superuser-email",
        SUPERUSER.email,
        "--superuser-password",
        SUPERUSER.password,
        "setup",
        ...serverArgs([a]),
        "--identities",
        ids,
      ],
      {},
    );
    expect(flags.code, flags.stderr).toBe(CliExitCode.Ok);
    expect(leaksPassword(flags)).toBe(false);
    const creds = join(dir, "creds.json");
    await writeFile(creds, JSON.stringify({ servers: { [a.url]: SUPERUSER } }));
    const fromFile = await cli(
      ["setup", ...serverArgs([a]), "--identities", ids, "--credentials", creds, "--json"],
      {},
    );
    expect(fromFile.code, fromFile.stderr).toBe(CliExitCode.Ok);
    expect(leaksPassword(fromFile)).toBe(false);
  });

  it("says how to install the hooks on a server without them (exit 6)", async () => {
    const bare = await startFleetServer(servers, "setup-nohooks", { nxsHooks: false, hookFiles: [] });
    const run = await cli(["setup", ...serverArgs([bare]), "--identities", join(dir, "ids.json")]);
    expect(run.code).toBe(CliExitCode.NotReady);
    expect(run.stdout).toMatch(/MISSING/);
    expect(run.stderr).toMatch(/nxs-sync hooks write/);
    // Writing the hooks into its dir and restarting makes it ready.
    const write = await cli(["hooks", "write", join(bare.rootDir, "pb_hooks")]);
    expect(write.code).toBe(CliExitCode.Ok);
    await bare.restart();
    const again = await cli(["setup", ...serverArgs([bare]), "--identities", join(dir, "ids.json")]);
    expect(again.code, again.stderr + again.stdout).toBe(CliExitCode.Ok);
  });

  it("runs the replicator as `nxs-sync replicator` (the flags of nxs-replicator), with the identities setup wrote", async () => {
    // Its own identities file (setup is idempotent on these servers), so the test runs alone too.
    const ids = join(dir, "replicator-ids.json");
    expect((await cli(["setup", ...serverArgs([a, b]), "--identities", ids])).code).toBe(0);
    const file = JSON.parse(await readFile(ids, "utf8")) as {
      replicator: { email: string; password: string };
    };
    const lines: string[] = [];
    const logger = {
      debug: () => {},
      info: (m: string) => lines.push(m),
      warn: (m: string) => lines.push(m),
      error: (m: string) => lines.push(m),
    };
    const help = await runCli(["replicator", "--help"], {
      env: {},
      stdout: sink,
      stderr: sink,
      signal: new AbortController().signal,
      logger,
    });
    expect(help).toBe(0);
    expect(lines.join("\n")).toMatch(/usage: nxs-replicator --server URL/);
    expect(
      await runCli(["replicator", "--server", a.url], {
        env: {},
        stdout: sink,
        stderr: sink,
        signal: new AbortController().signal,
        logger,
      }),
    ).toBe(CliExitCode.Usage);
    const stop = new AbortController();
    const running = runCli(["replicator", ...serverArgs([a, b])], {
      env: { NXS_REPLICATOR_EMAIL: file.replicator.email, NXS_REPLICATOR_PASSWORD: file.replicator.password },
      stdout: sink,
      stderr: sink,
      signal: stop.signal,
      logger,
    });
    await waitFor(() => lines.some((l) => l.includes("replicating between")) || undefined, {
      timeoutMs: 30_000,
    });
    stop.abort();
    expect(await running).toBe(0);
  });

  it("prints help with the exit codes; an unknown option is a usage error", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(CliExitCode.Ok);
    expect(help.stdout).toMatch(/Exit codes:/);
    expect((await cli(["setup", "--nope"])).code).toBe(CliExitCode.Usage);
  });
});
