import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensurePocketBaseBinary } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, describe, expect, it } from "vitest";

describe("harness: the superuser password is on no command line", () => {
  const servers = usePocketBaseServers();
  let dir = "";
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("no argv of any process the harness spawns holds it, nor the server's environment; the superuser works", async () => {
    const real = (await ensurePocketBaseBinary()).path;
    dir = await mkdtemp(join(tmpdir(), "nxs-argv-"));
    // A wrapper binary that records the argv of every run (what `ps` would show), then runs PocketBase.
    const argvLog = join(dir, "argv.log");
    const bin = join(dir, "pocketbase");
    await writeFile(bin, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec '${real}' "$@"\n`);
    await chmod(bin, 0o755);
    const password = `pw-argv-${crypto.randomUUID()}`;
    const server = await servers.start({ name: "argv", bin, superuser: { password } });

    const runs = (await readFile(argvLog, "utf8")).trim().split("\n");
    expect(runs.map((r) => r.split(" ").slice(0, 2).join(" "))).toEqual([
      "migrate up",
      "serve --http=127.0.0.1:" + server.port,
    ]);
    for (const args of runs) expect(args).not.toContain(password);
    // The live server process, as ps and /proc show it.
    const pid = server.pid as number;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    expect(cmdline).toContain("serve");
    expect(cmdline).not.toContain(password);
    expect(await readFile(`/proc/${pid}/environ`, "utf8")).not.toContain(password);
    // No file left behind holds it, and the harness log does not either.
    expect(await server.logs()).not.toContain(password);
    expect(existsSync(join(server.rootDir, "harness_migrations"))).toBe(false);
    // The superuser exists and logs in with that password.
    const res = await fetch(`${server.url}/api/collections/_superusers/auth-with-password`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ identity: server.superuser.email, password }),
    });
    expect(res.status).toBe(200);
  });
});
