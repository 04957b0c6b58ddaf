/**
 * The two-node deployment of examples/compose, brought up with a real Docker Compose (Debian's
 * `docker-compose` 1.29, v1) on the running Docker engine (never a second one), with the images
 * of scripts/build-images.mjs: set up with the CLI (`nxs-sync setup`, the file's `setup` service),
 * a note written on one node read on the other, a job enqueued on one run, each gateway's health
 * metrics on both servers, one node's PocketBase
 * killed (the gateway fails over; after `start` both servers hold the same changes), one paused
 * and unpaused, `down` and `up` with the data intact, `down -v` with the volumes gone.
 *
 * The committed compose.two-nodes.yml is copied unchanged into a temp dir with fresh secrets
 * (examples/k3s/make-secrets.mjs); images, ports and the project name (`-p nxsct<random>`) come
 * from the environment. Without Docker or docker-compose the file is skipped with the reason, and
 * fails under CI=true (`bash scripts/ensure-docker.sh && bash scripts/ensure-compose.sh`).
 */
import { randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { decodePoint } from "@nxs-sync/metrics";
import { findFreePort, waitFor } from "@nxs-sync/testing";
import { describeWithDocker } from "@nxs-sync/testing/vitest";
import PocketBase from "pocketbase";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  buildImages,
  composeDir,
  composeStatus,
  type ImageTags,
  imageEnv,
  prepareComposeDir,
  projectLeftovers,
  run,
  runOk,
} from "./helpers.js";

const status = composeStatus();

describeWithDocker(
  "compose: two nodes (docker-compose v1)",
  () => {
    const project = `nxsct${randomBytes(4).toString("hex")}`;
    let dir = "";
    let env: NodeJS.ProcessEnv = {};
    let images: ImageTags;
    let superuser = { email: "", password: "" };
    const port = { pbPrimary: 0, pbSecondary: 0, gwPrimary: 0, gwSecondary: 0 };
    let failed = false;
    let finished = false;

    const compose = (args: readonly string[], timeoutMs = 180_000) =>
      runOk("docker-compose", ["-p", project, "-f", join(dir, "compose.two-nodes.yml"), ...args], {
        cwd: dir,
        env,
        timeoutMs,
      });
    const container = (service: string) => `${project}_${service}_1`;
    const projectVolumes = () =>
      runOk("docker", ["volume", "ls", "-q", "--filter", `label=com.docker.compose.project=${project}`]);
    const gw = (which: "primary" | "secondary") =>
      `http://127.0.0.1:${which === "primary" ? port.gwPrimary : port.gwSecondary}`;

    /** A gateway call; undefined when it does not answer (yet). */
    async function call<T>(url: string, init: RequestInit = {}, timeoutMs = 20_000): Promise<T> {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    }
    const put = (url: string, body: unknown) => call(url, { method: "PUT", body: JSON.stringify(body) });
    const post = <T>(url: string, body: unknown) =>
      call<T>(url, { method: "POST", body: JSON.stringify(body) });
    const notes = (which: "primary" | "secondary") => call<Record<string, string>>(`${gw(which)}/notes`);
    const state = (which: "primary" | "secondary") =>
      call<{ endpoint: string; notes: Record<string, string> }>(`${gw(which)}/state`);

    async function health(service: string): Promise<string> {
      const r = await run("docker", [
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Health.Status}}",
        container(service),
      ]);
      return r.stdout.trim();
    }
    const healthy = (...services: string[]) =>
      waitFor(async () => (await Promise.all(services.map(health))).every((s) => s === "running healthy"), {
        timeoutMs: 90_000,
        intervalMs: 500,
        description: `${services.join(", ")} healthy`,
      });
    const gatewaysUp = () =>
      waitFor(
        async () => {
          for (const which of ["primary", "secondary"] as const) {
            const r = await fetch(`${gw(which)}/api/health`, { signal: AbortSignal.timeout(3000) }).catch(
              () => undefined,
            );
            if (r?.status !== 200) return false;
          }
          return true;
        },
        { timeoutMs: 90_000, intervalMs: 500, description: "both gateways answer /api/health with 200" },
      );

    /** Distinct changes (`origin/seq`) of the notes doc a server holds, read as its superuser. */
    async function changes(pbPort: number): Promise<string[]> {
      const pb = new PocketBase(`http://127.0.0.1:${pbPort}`);
      pb.autoCancellation(false);
      await pb.collection("_superusers").authWithPassword(superuser.email, superuser.password);
      const packs = await pb
        .collection("nxs_changes")
        .getFullList<{ origin: string; seq: number; last: number }>({
          filter: pb.filter("doc = {:doc}", { doc: "notes" }),
          fields: "origin,seq,last",
        });
      const out = new Set<string>();
      for (const p of packs) for (let q = p.seq; q <= p.last; q++) out.add(`${p.origin}/${q}`);
      return [...out].sort();
    }
    /** Waits until both servers hold the same changes, at least `atLeast` of them. */
    const converged = (atLeast: number) =>
      waitFor(
        async () => {
          const [a, b] = await Promise.all([changes(port.pbPrimary), changes(port.pbSecondary)]);
          return a.length >= atLeast && JSON.stringify(a) === JSON.stringify(b) ? a : undefined;
        },
        {
          timeoutMs: 90_000,
          intervalMs: 1000,
          description: `both servers hold the same ${atLeast}+ changes`,
        },
      );

    beforeAll(async () => {
      images = await buildImages(process.arch === "arm64" ? "arm64" : "amd64");
      ({ dir, superuser } = await prepareComposeDir(
        "nxs-compose-test-",
        ["compose.two-nodes.yml"],
        "ops@compose.test",
      ));
      port.pbPrimary = await findFreePort();
      port.pbSecondary = await findFreePort();
      port.gwPrimary = await findFreePort();
      port.gwSecondary = await findFreePort();
      env = {
        ...imageEnv(images),
        NXS_PRIMARY_PUBLISH: `127.0.0.1:${port.pbPrimary}`,
        NXS_SECONDARY_PUBLISH: `127.0.0.1:${port.pbSecondary}`,
        NXS_GATEWAY_PRIMARY_PUBLISH: `127.0.0.1:${port.gwPrimary}`,
        NXS_GATEWAY_SECONDARY_PUBLISH: `127.0.0.1:${port.gwSecondary}`,
      };
      await compose(["up", "-d"]);
    }, 600_000);

    /** The project's logs, printed to stderr while its containers still exist. */
    async function dumpLogs(why: string): Promise<void> {
      const logs = await run(
        "docker-compose",
        ["-p", project, "-f", join(dir, "compose.two-nodes.yml"), "logs", "--no-color", "--tail", "60"],
        { cwd: dir, env },
      ).catch(() => undefined);
      process.stderr.write(
        `[compose test] ${why}; logs of ${project}:\n${logs?.stdout ?? ""}${logs?.stderr ?? ""}\n`,
      );
    }

    afterAll(async () => {
      if (!dir) return;
      if (!failed && !finished) await dumpLogs("the steps did not all run");
      await run(
        "docker-compose",
        ["-p", project, "-f", join(dir, "compose.two-nodes.yml"), "down", "-v", "--remove-orphans"],
        { cwd: dir, env },
      );
      await rm(dir, { recursive: true, force: true });
    }, 120_000);

    const step = (name: string, fn: () => Promise<void>, timeoutMs = 180_000) =>
      it(
        name,
        async () => {
          try {
            await fn();
          } catch (e) {
            if (!failed) await dumpLogs(`"${name}" failed`);
            failed = true;
            throw e;
          }
        },
        timeoutMs,
      );

    const written: Record<string, string> = {};
    let jobId = "";

    step("comes up healthy and is set up with the CLI (nxs-sync setup, idempotent)", async () => {
      await healthy("pb-primary", "pb-secondary");
      const first = await compose(["run", "--rm", "setup"]);
      expect(first).toMatch(/http:\/\/pb-primary:8090\s*\|.*create .*collections/);
      expect(first).toMatch(/change\(s\) made/);
      // The hooks baked into the image are this release's: setup checks them on each server.
      for (const server of ["pb-primary", "pb-secondary"]) {
        expect(first).toMatch(new RegExp(`http://${server}:8090 .*\\|\\s*ok\\s*\\|`));
      }
      const second = await compose(["run", "--rm", "setup"]);
      expect(second).toMatch(/nothing to change/i);
      await gatewaysUp();
      await healthy("gateway-primary", "gateway-secondary");
      expect(
        (await run("docker", ["inspect", "-f", "{{.State.Status}}", container("replicator")])).stdout.trim(),
      ).toBe("running");
    });

    step("a note written on one node is read on the other", async () => {
      await put(`${gw("primary")}/notes/from-primary`, { value: "p1" });
      written["from-primary"] = "p1";
      await put(`${gw("secondary")}/notes/from-secondary`, { value: "s1" });
      written["from-secondary"] = "s1";
      await waitFor(async () => (await notes("secondary"))["from-primary"] === "p1", {
        timeoutMs: 30_000,
        description: "the secondary's gateway reads the primary's note",
      });
      await waitFor(async () => (await notes("primary"))["from-secondary"] === "s1", {
        timeoutMs: 30_000,
        description: "the primary's gateway reads the secondary's note",
      });
      await call(`${gw("primary")}/config/greeting`, {
        method: "PUT",
        body: JSON.stringify({ text: "hello" }),
      });
      await waitFor(
        async () =>
          (await call<{ text: string }>(`${gw("secondary")}/config/greeting`).catch(() => undefined))
            ?.text === "hello",
        { timeoutMs: 30_000, description: "the secondary serves the greeting put on the primary" },
      );
    });

    step("a job enqueued on one node runs", async () => {
      jobId = (await post<{ id: string }>(`${gw("secondary")}/jobs`, { text: "hi" })).id;
      const done = await waitFor(
        async () => {
          const j = await call<{ state: string; result: { echo: string; worker: string } | null }>(
            `${gw("primary")}/jobs/${jobId}`,
          ).catch(() => undefined);
          return j?.state === "completed" ? j : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, description: `job ${jobId} completed` },
      );
      expect(done.result?.echo).toBe("HI");
      expect(["gateway-primary", "gateway-secondary"]).toContain(done.result?.worker);
    });

    step("each gateway's health metrics are on both servers (The Doctor's records, replicated)", async () => {
      /** The nodes with raw windows on a server, every record decoded by @nxs-sync/metrics. */
      const nodesOn = async (pbPort: number): Promise<string[]> => {
        const pb = new PocketBase(`http://127.0.0.1:${pbPort}`);
        pb.autoCancellation(false);
        await pb.collection("_superusers").authWithPassword(superuser.email, superuser.password);
        const raws = await pb.collection("nxs_metrics_points").getFullList({ filter: 'tier = "raw"' });
        const nodes = new Set<string>();
        for (const r of raws) {
          const d = decodePoint(r);
          if (!d.ok) throw new Error(`record ${r.id} does not decode: ${d.reason}`);
          nodes.add(d.value.node);
          expect(Object.keys(d.value.data.s).some((k) => k.startsWith("node_memory_percent{basis="))).toBe(
            true,
          );
        }
        return [...nodes].sort();
      };
      // A flush every 10 s on each gateway; the replicator copies each to the other server.
      const both = await waitFor(
        async () => {
          const [a, b] = await Promise.all([nodesOn(port.pbPrimary), nodesOn(port.pbSecondary)]);
          return a.length >= 2 && JSON.stringify(a) === JSON.stringify(b) ? a : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 1_000, description: "both gateways' windows on both servers" },
      );
      expect(both).toHaveLength(2);
    });

    step(
      "the primary's PocketBase killed: its gateway fails over; started again, both servers converge",
      async () => {
        await runOk("docker", ["kill", container("pb-primary")]);
        // Not restarted: a container stopped by `docker kill` is left alone by `unless-stopped`.
        await waitFor(async () => (await health("pb-primary")).startsWith("exited"), {
          timeoutMs: 20_000,
          intervalMs: 200,
          description: "pb-primary exited",
        });
        // Acknowledged by a server (the secondary's), although the gateway's own server is gone.
        for (let i = 1; i <= 5; i++) {
          await put(`${gw("primary")}/notes/while-down-${i}`, { value: `d${i}` });
          written[`while-down-${i}`] = `d${i}`;
        }
        expect((await state("primary")).endpoint).toBe("http://pb-secondary:8090");
        await waitFor(async () => (await notes("secondary"))["while-down-5"] === "d5", {
          timeoutMs: 30_000,
          description: "the secondary's gateway reads what was written while the primary was down",
        });
        const queued = (await post<{ id: string }>(`${gw("primary")}/jobs`, { text: "failover" })).id;
        await waitFor(
          async () =>
            (await call<{ state: string }>(`${gw("secondary")}/jobs/${queued}`).catch(() => undefined))
              ?.state === "completed",
          { timeoutMs: 60_000, intervalMs: 250, description: "a job enqueued during the outage completed" },
        );

        await compose(["start", "pb-primary"]);
        await healthy("pb-primary");
        const both = await converged(7);
        expect(both.length).toBeGreaterThanOrEqual(7);
        await waitFor(async () => (await state("primary")).endpoint === "http://pb-primary:8090", {
          timeoutMs: 90_000,
          intervalMs: 1000,
          description: "the primary's gateway fails back to its own server",
        });
      },
    );

    step("the secondary's PocketBase paused and unpaused: writes carry on, then converge", async () => {
      await compose(["pause", "pb-secondary"]);
      try {
        await put(`${gw("secondary")}/notes/while-paused`, { value: "x" });
        written["while-paused"] = "x";
        expect((await state("secondary")).endpoint).toBe("http://pb-primary:8090");
        await waitFor(async () => (await notes("primary"))["while-paused"] === "x", {
          timeoutMs: 30_000,
          description: "the primary's gateway reads the note written while the secondary was paused",
        });
      } finally {
        await compose(["unpause", "pb-secondary"]);
      }
      await healthy("pb-secondary");
      await converged(8);
    });

    step("down and up again: the data is intact (named volumes)", async () => {
      const before = await converged(8);
      await compose(["down"]);
      const volumes = await projectVolumes();
      expect(volumes.trim().split("\n").sort()).toEqual(
        ["gateway-primary-state", "gateway-secondary-state", "pb-primary-data", "pb-secondary-data"].map(
          (v) => `${project}_${v}`,
        ),
      );
      await compose(["up", "-d"]);
      await healthy("pb-primary", "pb-secondary");
      await gatewaysUp();
      expect(await changes(port.pbPrimary)).toEqual(before);
      expect(await changes(port.pbSecondary)).toEqual(before);
      for (const which of ["primary", "secondary"] as const) {
        const seen = await notes(which);
        for (const [k, v] of Object.entries(written)) expect(seen[k], `${which}: note ${k}`).toBe(v);
      }
      const job = await call<{ state: string }>(`${gw("secondary")}/jobs/${jobId}`);
      expect(job.state).toBe("completed");
      expect((await call<{ text: string }>(`${gw("primary")}/config/greeting`)).text).toBe("hello");
      // The gateway's state volume kept its config cache file.
      const cache = await runOk("docker", [
        "exec",
        container("gateway-primary"),
        "/node",
        "-e",
        "process.stdout.write(String(require('fs').existsSync('/var/lib/nxs-gateway/config-cache.json')))",
      ]);
      expect(cache).toBe("true");
    });

    step("down -v removes the volumes", async () => {
      await compose(["down", "-v"]);
      expect(await projectLeftovers(project)).toEqual({ containers: "", volumes: "" });
      finished = true;
    });

    // Keep the read of the env file honest: the compose file names the secrets it reads.
    it("reads its secrets from the env files under secrets/", async () => {
      const yml = await readFile(join(composeDir, "compose.two-nodes.yml"), "utf8");
      for (const f of [
        "superuser.env",
        "gateway-primary.env",
        "gateway-secondary.env",
        "replicator.env",
        "config-keys.env",
      ]) {
        expect(yml).toContain(`secrets/${f}`);
      }
      expect(yml).not.toMatch(/PASSWORD\s*[:=]\s*\S/);
    });
  },
  status,
);
