import { describe, expect, it } from "vitest";
import { runReplicatorCli } from "../../src/cli.js";

const quiet = () => {
  const lines: string[] = [];
  const log = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  return { lines, logger: { debug: log, info: log, warn: log, error: log } };
};

describe("nxs-replicator command", () => {
  it.each([
    [["--server", "http://a"], { NXS_NODE_EMAIL: "e", NXS_NODE_PASSWORD: "p" }],
    [["--server", "http://a", "--server", "http://b"], {}],
    [
      ["--server", "http://a", "--server", "http://b", "--interval", "soon"],
      { NXS_NODE_EMAIL: "e", NXS_NODE_PASSWORD: "p" },
    ],
    [["--bogus"], {}],
  ])("exits 2 with the usage on bad input %#", async (argv, env) => {
    const { lines, logger } = quiet();
    const code = await runReplicatorCli(argv, { env, logger, signal: AbortSignal.abort() });
    expect(code).toBe(2);
    expect(lines.join("\n")).toContain("usage: nxs-replicator");
  });

  it("prints the usage with --help", async () => {
    const { lines, logger } = quiet();
    expect(await runReplicatorCli(["--help"], { env: {}, logger, signal: AbortSignal.abort() })).toBe(0);
    expect(lines.join("\n")).toContain("NXS_NODE_PASSWORD");
  });
});
