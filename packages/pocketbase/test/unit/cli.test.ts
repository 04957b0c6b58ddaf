import { createManualScheduler } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { ReplicatorExitCode, runReplicatorCli } from "../../src/cli.js";
import { closedUrl, useFakeServers } from "./fake-servers.js";

const quiet = () => {
  const lines: string[] = [];
  const log = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  return { lines, logger: { debug: log, info: log, warn: log, error: log } };
};

const { refusing } = useFakeServers();

/** Runs the command against two servers that refuse every login. */
async function againstRefusing(env: Record<string, string>) {
  const [a, b] = [await refusing(), await refusing()];
  const { lines, logger } = quiet();
  const code = await runReplicatorCli(["--server", a.url, "--server", b.url], {
    env,
    logger,
    signal: new AbortController().signal,
  });
  return { code, lines, urls: [a.url, b.url], identities: a.identities };
}

describe("nxs-replicator command", () => {
  it.each([
    [["--server", "http://a"], { NXS_REPLICATOR_EMAIL: "e", NXS_REPLICATOR_PASSWORD: "p" }],
    [["--server", "http://a", "--server", "http://b"], {}],
    [
      ["--server", "http://a", "--server", "http://b", "--interval", "soon"],
      { NXS_REPLICATOR_EMAIL: "e", NXS_REPLICATOR_PASSWORD: "p" },
    ],
    [
      ["--server", "http://a", "--server", "http://b", "--lost-all-after", "0"],
      { NXS_REPLICATOR_EMAIL: "e", NXS_REPLICATOR_PASSWORD: "p" },
    ],
    [
      ["--server", "http://a", "--server", "http://b", "--log-level", "loud"],
      { NXS_REPLICATOR_EMAIL: "e", NXS_REPLICATOR_PASSWORD: "p" },
    ],
    [["--bogus"], {}],
  ])("exits 2 with the usage on bad input %#", async (argv, env) => {
    const { lines, logger } = quiet();
    const code = await runReplicatorCli(argv, { env, logger, signal: AbortSignal.abort() });
    expect(code).toBe(ReplicatorExitCode.Usage);
    expect(code).toBe(2);
    expect(lines.join("\n")).toContain("usage: nxs-replicator");
  });

  it("prints the usage with --help: the replicator's variables, their old aliases and the exit codes", async () => {
    const { lines, logger } = quiet();
    expect(await runReplicatorCli(["--help"], { env: {}, logger, signal: AbortSignal.abort() })).toBe(0);
    const text = lines.join("\n");
    for (const s of ["NXS_REPLICATOR_EMAIL", "NXS_REPLICATOR_PASSWORD", "NXS_NODE_PASSWORD", "Exit codes"]) {
      expect(text).toContain(s);
    }
  });

  it("exits 3 when every server refuses the login, naming each server and the auth collection", async () => {
    const { code, lines, urls, identities } = await againstRefusing({
      NXS_REPLICATOR_EMAIL: "repl@nodes.test",
      NXS_REPLICATOR_PASSWORD: "wrong",
    });
    expect(code).toBe(ReplicatorExitCode.LoginRefused);
    const exit = lines.filter((l) => l.includes("exit 3"));
    expect(exit).toHaveLength(1);
    expect(exit[0]).toContain("transport/unauthorized");
    for (const url of urls) expect(exit[0]).toContain(`${url} refused the login to nxs_replicators`);
    expect(lines.join("\n")).not.toContain("unreachable");
    expect(lines.join("\n")).not.toContain("deprecated");
    expect(identities).toEqual(["repl@nodes.test"]);
  });

  it("takes NXS_NODE_EMAIL / NXS_NODE_PASSWORD as deprecated aliases, with one warning", async () => {
    const { code, lines, identities } = await againstRefusing({
      NXS_NODE_EMAIL: "old@nodes.test",
      NXS_NODE_PASSWORD: "wrong",
    });
    expect(code).toBe(3);
    expect(identities).toEqual(["old@nodes.test"]);
    const warnings = lines.filter((l) => l.includes("deprecated"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("NXS_NODE_EMAIL and NXS_NODE_PASSWORD are deprecated");
    expect(warnings[0]).toContain("NXS_REPLICATOR_EMAIL and NXS_REPLICATOR_PASSWORD");
  });

  it("prefers NXS_REPLICATOR_* over the old names, and says the old ones are ignored", async () => {
    const { lines, identities } = await againstRefusing({
      NXS_REPLICATOR_EMAIL: "new@nodes.test",
      NXS_REPLICATOR_PASSWORD: "x",
      NXS_NODE_EMAIL: "old@nodes.test",
      NXS_NODE_PASSWORD: "y",
    });
    expect(identities).toEqual(["new@nodes.test"]);
    const warnings = lines.filter((l) => l.includes("deprecated"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("ignored");
  });

  it("exits 4 when no server has been usable for --lost-all-after (a manual clock)", async () => {
    const [a, b] = [await closedUrl(), await closedUrl()];
    const scheduler = createManualScheduler();
    const { lines, logger } = quiet();
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const spy = {
      ...logger,
      info: (m: string) => {
        logger.info(m);
        if (m.includes("replicating between")) started();
      },
    };
    const exit = runReplicatorCli(["--server", a, "--server", b, "--lost-all-after", "5000"], {
      env: { NXS_REPLICATOR_EMAIL: "repl@nodes.test", NXS_REPLICATOR_PASSWORD: "p" },
      logger: spy,
      signal: new AbortController().signal,
      scheduler,
    });
    await running;
    scheduler.advance(4999);
    scheduler.advance(1);
    expect(await exit).toBe(ReplicatorExitCode.LostAll);
    const errors = lines.filter((l) => l.includes("no server usable"));
    // The replicator's error (each server and why), then the command's exit line.
    expect(errors).toHaveLength(2);
    expect(errors[0]).toContain(`${a} unreachable`);
    expect(errors[0]).toContain(`${b} unreachable`);
    expect(errors[1]).toContain("exit 4");
  });
});
