/**
 * The notes doc over NATS JetStream in Compose (issue 24, item 6): compose.two-nodes.yml with the
 * overlay compose.nats.yml (three NATS servers, the gateways' notes transport switched by
 * NXS_NATS_SERVERS), copied unchanged into a temp dir with fresh secrets, on the running Docker
 * engine with Debian's docker-compose v1 and the images of `scripts/build-images.mjs --nats`.
 *
 * Checked: both gateways write notes that the other reads, through NATS only (PocketBase holds no
 * change of the doc); the server leading the changes stream is killed while both gateways keep
 * writing (each write acknowledged after the election), and started again; every acknowledged
 * note is on both gateways afterwards; `down -v` leaves nothing. In `npm run test:long` (project
 * `long` of vitest.workspace.ts), not in `npm test`: about a minute and a half more of the CI budget.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { findFreePort, waitFor } from "@nxs-sync/testing";
import { describeWithDocker } from "@nxs-sync/testing/vitest";
import PocketBase from "pocketbase";
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

type Side = "primary" | "secondary";
/** A map's JSON with its keys sorted (each gateway shows notes in the order it learned them). */
const sorted = (notes: Record<string, string>) =>
  JSON.stringify(Object.fromEntries(Object.entries(notes).sort()));

describeWithDocker(
  "compose: the notes doc over a 3-server NATS cluster (docker-compose v1)",
  () => {
    const project = `nxscn${randomBytes(4).toString("hex")}`;
    let dir = "";
    let env: NodeJS.ProcessEnv = {};
    let superuser = { email: "", password: "" };
    const port = { pbPrimary: 0, gwPrimary: 0, gwSecondary: 0 };
    const files = () => ["-f", join(dir, "compose.two-nodes.yml"), "-f", join(dir, "compose.nats.yml")];
    const compose = (args: readonly string[], timeoutMs = 180_000) =>
      runOk("docker-compose", ["-p", project, ...files(), ...args], { cwd: dir, env, timeoutMs });
    const gw = (side: Side) => `http://127.0.0.1:${side === "primary" ? port.gwPrimary : port.gwSecondary}`;

    async function call<T>(url: string, init: RequestInit = {}): Promise<T> {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    }
    const state = (side: Side) =>
      call<{ endpoint?: string; streamLeader?: string; notes: Record<string, string> }>(`${gw(side)}/state`);
    /** Writes a note until the gateway acknowledges it (a write during an election is refused, not lost). */
    const write = (side: Side, key: string, value: string) =>
      waitFor(
        async () => {
          try {
            await call(`${gw(side)}/notes/${key}`, { method: "PUT", body: JSON.stringify({ value }) });
            return true;
          } catch {
            return undefined;
          }
        },
        {
          timeoutMs: 60_000,
          intervalMs: 250,
          description: `note ${key} acknowledged by the ${side} gateway`,
        },
      );

    beforeAll(async () => {
      const images = await buildImages(process.arch === "arm64" ? "arm64" : "amd64", { nats: true });
      if (images.nats === undefined) throw new Error("scripts/build-images.mjs --nats printed no NATS image");
      ({ dir, superuser } = await prepareComposeDir(
        "nxs-compose-nats-",
        ["compose.two-nodes.yml", "compose.nats.yml", "nats.conf"],
        "ops@nats.test",
      ));
      port.pbPrimary = await findFreePort();
      port.gwPrimary = await findFreePort();
      port.gwSecondary = await findFreePort();
      env = {
        ...imageEnv(images),
        NXS_PRIMARY_PUBLISH: `127.0.0.1:${port.pbPrimary}`,
        NXS_SECONDARY_PUBLISH: `127.0.0.1:${await findFreePort()}`,
        NXS_GATEWAY_PRIMARY_PUBLISH: `127.0.0.1:${port.gwPrimary}`,
        NXS_GATEWAY_SECONDARY_PUBLISH: `127.0.0.1:${port.gwSecondary}`,
        NXS_NATS_PUBLISH: `127.0.0.1:${await findFreePort()}`,
      };
      await compose(["up", "-d"]);
      await waitFor(
        async () => {
          const r = await run("docker-compose", ["-p", project, ...files(), "run", "--rm", "setup"], {
            cwd: dir,
            env,
          });
          return r.code === 0 ? true : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 2000, description: "nxs-sync setup succeeds on both servers" },
      );
      for (const side of ["primary", "secondary"] as const) {
        await waitFor(
          async () => (await fetch(`${gw(side)}/api/health`).catch(() => undefined))?.status === 200,
          {
            timeoutMs: 120_000,
            intervalMs: 500,
            description: `the ${side} gateway answers /api/health with 200`,
          },
        );
      }
    }, 900_000);

    afterAll(async () => {
      if (!dir) return;
      await run("docker-compose", ["-p", project, ...files(), "down", "-v", "--remove-orphans"], {
        cwd: dir,
        env,
        timeoutMs: 180_000,
      });
      await rm(dir, { recursive: true, force: true });
    }, 240_000);

    it("syncs the notes through NATS only, and loses no acknowledged note when the stream leader is killed", async () => {
      await write("primary", "a", "from-primary");
      await write("secondary", "b", "from-secondary");
      const both = { a: "from-primary", b: "from-secondary" };
      for (const side of ["primary", "secondary"] as const) {
        await waitFor(async () => sorted((await state(side)).notes) === sorted(both) || undefined, {
          timeoutMs: 30_000,
          intervalMs: 250,
          description: `the ${side} gateway shows both notes`,
        });
        expect((await state(side)).endpoint).toMatch(/^(nats:\/\/)?nats-[123]:4222$/);
      }
      // The transport is the only difference: PocketBase holds no change of the notes doc.
      const pb = new PocketBase(`http://127.0.0.1:${port.pbPrimary}`);
      pb.autoCancellation(false);
      await pb.collection("_superusers").authWithPassword(superuser.email, superuser.password);
      const onPocketBase = await pb.collection("nxs_changes").getList(1, 1, { filter: 'doc = "notes"' });
      expect(onPocketBase.totalItems).toBe(0);

      const leader = await waitFor(async () => (await state("primary")).streamLeader, {
        timeoutMs: 30_000,
        intervalMs: 250,
        description: "the primary gateway names the changes stream's leader",
      });
      expect(leader).toMatch(/^nats-[123]$/);
      await runOk("docker", ["kill", `${project}_${leader}_1`]);
      const written: Record<string, string> = { ...both };
      for (let i = 0; i < 6; i++) {
        const side: Side = i % 2 === 0 ? "primary" : "secondary";
        await write(side, `k${i}`, `${side}-${i}`);
        written[`k${i}`] = `${side}-${i}`;
      }
      await compose(["start", leader]);
      await write("secondary", "after", "restart");
      written.after = "restart";
      const expected = sorted(written);
      for (const side of ["primary", "secondary"] as const) {
        const notes = await waitFor(
          async () => {
            const got = (await state(side)).notes;
            return sorted(got) === expected ? got : undefined;
          },
          {
            timeoutMs: 60_000,
            intervalMs: 500,
            description: `the ${side} gateway shows every acknowledged note`,
          },
        );
        expect(Object.keys(notes)).toHaveLength(Object.keys(written).length);
      }
      // The cluster has a leader again, seen by the gateways' health probes.
      const newLeader = await waitFor(async () => (await state("secondary")).streamLeader, {
        timeoutMs: 30_000,
        intervalMs: 250,
        description: "the secondary gateway names the changes stream's leader after the restart",
      });
      expect(newLeader).toMatch(/^nats-[123]$/);
    }, 300_000);

    it("down -v removes its containers and volumes", async () => {
      await compose(["down", "-v"]);
      expect(await projectLeftovers(project)).toEqual({ containers: "", volumes: "" });
    }, 180_000);
  },
  composeStatus(),
);
