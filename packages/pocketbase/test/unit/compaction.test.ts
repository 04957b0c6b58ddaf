import type { Logger } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";
import { createCompactor } from "../../src/index.js";
import { closedUrl } from "./fake-servers.js";

const auth = { email: "repl@nodes.test", password: "secret" };

function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return {
    lines,
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
  };
}

describe("compactor: user callbacks are guarded", () => {
  it("an onError handler that throws is logged; run() still resolves (no unhandled rejection)", async () => {
    const logger = recordingLogger();
    const seen: Error[] = [];
    const compactor = createCompactor({
      servers: [{ url: await closedUrl(), auth }],
      docs: ["doc-1"],
      logger,
      onError: (e) => {
        seen.push(e);
        throw new Error("handler bug");
      },
    });
    try {
      await expect(compactor.run()).resolves.toEqual([]);
    } finally {
      compactor.stop();
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]?.message).toContain("ECONNREFUSED");
    expect(logger.lines.some((l) => l.startsWith("error [nxs-compactor] onError threw"))).toBe(true);
  });

  it("an async onError that rejects is logged too", async () => {
    const logger = recordingLogger();
    const compactor = createCompactor({
      servers: [{ url: await closedUrl(), auth }],
      docs: ["doc-1"],
      logger,
      onError: async () => {
        throw new Error("async handler bug");
      },
    });
    try {
      await expect(compactor.run()).resolves.toEqual([]);
    } finally {
      compactor.stop();
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(logger.lines).toContainEqual(expect.stringContaining("onError threw: async handler bug"));
  });
});
