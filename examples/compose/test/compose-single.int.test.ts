/**
 * The one-node deployment of examples/compose (compose.single.yml, copied unchanged into a temp
 * dir with fresh secrets), with Debian's `docker-compose` v1 on the running engine: up, set up with
 * the CLI, a note written and read back, a job run, a greeting, down -v. The two-node file
 * (compose.int.test.ts) does the drills; this one checks the single-node file works as the docs
 * say. Skipped with the reason without Docker or docker-compose; fails under CI=true.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { findFreePort, waitFor } from "@nxs-sync/testing";
import { describeWithDocker } from "@nxs-sync/testing/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  buildImages,
  composeStatus,
  imageEnv,
  prepareComposeDir,
  projectLeftovers,
  run,
  runOk,
} from "./helpers.js";

describeWithDocker(
  "compose: one node (docker-compose v1)",
  () => {
    const project = `nxscs${randomBytes(4).toString("hex")}`;
    let dir = "";
    let env: NodeJS.ProcessEnv = {};
    let gateway = "";
    const file = () => join(dir, "compose.single.yml");
    const compose = (args: readonly string[]) =>
      runOk("docker-compose", ["-p", project, "-f", file(), ...args], { cwd: dir, env, timeoutMs: 180_000 });
    const json = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
      const res = await fetch(`${gateway}${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    };

    beforeAll(async () => {
      const images = await buildImages(process.arch === "arm64" ? "arm64" : "amd64");
      ({ dir } = await prepareComposeDir("nxs-compose-single-", ["compose.single.yml"], "ops@single.test"));
      const gwPort = await findFreePort();
      gateway = `http://127.0.0.1:${gwPort}`;
      env = {
        ...imageEnv(images),
        NXS_PB_PUBLISH: `127.0.0.1:${await findFreePort()}`,
        NXS_GATEWAY_PUBLISH: `127.0.0.1:${gwPort}`,
      };
      await compose(["up", "-d"]);
    }, 600_000);

    afterAll(async () => {
      if (!dir) return;
      await run("docker-compose", ["-p", project, "-f", file(), "down", "-v", "--remove-orphans"], {
        cwd: dir,
        env,
      });
      await rm(dir, { recursive: true, force: true });
    }, 120_000);

    it("comes up, is set up with the CLI, and its gateway writes, runs a job and keeps a greeting", async () => {
      // setup retries until the server answers (its health check may not have passed yet).
      const out = await waitFor(
        async () => {
          const r = await run("docker-compose", ["-p", project, "-f", file(), "run", "--rm", "setup"], {
            cwd: dir,
            env,
          });
          return r.code === 0 ? r.stdout : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 2000, description: "nxs-sync setup succeeds on the one server" },
      );
      expect(out).toMatch(/http:\/\/pocketbase:8090 .*\|\s*ok\s*\|/);
      await waitFor(
        async () => (await fetch(`${gateway}/api/health`).catch(() => undefined))?.status === 200,
        { timeoutMs: 90_000, intervalMs: 500, description: "the gateway answers /api/health with 200" },
      );
      await json("/notes/one", { method: "PUT", body: JSON.stringify({ value: "1" }) });
      expect(await json<Record<string, string>>("/notes")).toEqual({ one: "1" });
      const { id } = await json<{ id: string }>("/jobs", {
        method: "POST",
        body: JSON.stringify({ text: "solo" }),
      });
      const done = await waitFor(
        async () => {
          const j = await json<{ state: string; result: { echo: string } | null }>(`/jobs/${id}`);
          return j.state === "completed" ? j : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, description: `job ${id} completed` },
      );
      expect(done.result?.echo).toBe("SOLO");
      await json("/config/greeting", { method: "PUT", body: JSON.stringify({ text: "hi" }) });
      expect(await json<{ text: string; version: number }>("/config/greeting")).toEqual({
        text: "hi",
        version: 1,
      });
    }, 240_000);

    it("down -v removes its containers and volumes", async () => {
      await compose(["down", "-v"]);
      expect(await projectLeftovers(project)).toEqual({ containers: "", volumes: "" });
    });
  },
  composeStatus(),
);
