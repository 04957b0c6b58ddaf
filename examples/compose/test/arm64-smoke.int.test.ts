/**
 * The linux/arm64 images, smoke-run on this amd64 machine under Debian's `qemu-user`
 * (`qemu-aarch64`, user-mode emulation of one program; no VM, no binfmt): the arm64 image's own
 * files are exported (`docker create` + `docker export`, nothing started by Docker) and run:
 * - PocketBase (static): `--version`, then `serve` with the image's hooks and its superuser
 *   migration, checked by the image's arm64 probe, the hooks' `/nxs/version` route and a superuser login;
 * - Node (dynamic, glibc): `node -e` with crypto, zlib and Intl, once with Debian's cross libraries
 *   as the sysroot (`-L /usr/aarch64-linux-gnu`) and once with the image's own files as the sysroot
 *   (so the libraries the image carries are enough), running the bundled CLI.
 * Without Docker or qemu-aarch64 the file is skipped with the reason, and fails under CI=true
 * (`bash scripts/ensure-qemu.sh`).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DockerStatus } from "@nxs-sync/testing";
import { findFreePort, waitFor } from "@nxs-sync/testing";
import { describeWithDocker, dockerStatusForTests } from "@nxs-sync/testing/vitest";
import PocketBase from "pocketbase";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildImages, type ImageTags, run, runOk } from "./helpers.js";

const SYSROOT = "/usr/aarch64-linux-gnu";

function qemuStatus(): DockerStatus {
  const docker = dockerStatusForTests();
  if (!docker.available) return docker;
  const r = spawnSync("qemu-aarch64", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    return { available: false, reason: "qemu-aarch64 is not installed: run `bash scripts/ensure-qemu.sh`" };
  }
  if (!existsSync(join(SYSROOT, "lib", "libstdc++.so.6"))) {
    return {
      available: false,
      reason: `no arm64 sysroot in ${SYSROOT}: run \`bash scripts/ensure-qemu.sh\``,
    };
  }
  return { available: true, reason: "", version: r.stdout.split("\n")[0] ?? "" };
}

/** The ELF machine of a file: 183 is EM_AARCH64, 62 EM_X86_64. */
async function elfMachine(path: string): Promise<number> {
  const f = await open(path, "r");
  try {
    const buf = Buffer.alloc(20);
    await f.read(buf, 0, 20, 0);
    expect(buf.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    return buf.readUInt16LE(18);
  } finally {
    await f.close();
  }
}

describeWithDocker(
  "arm64 images under qemu-aarch64",
  () => {
    let images: ImageTags;
    let work = "";
    const pbRoot = () => join(work, "pocketbase");
    const gwRoot = () => join(work, "gateway");

    /** Exports an image's files into a directory without running it. */
    async function exportImage(tag: string, into: string): Promise<void> {
      await mkdir(into, { recursive: true });
      const id = (await runOk("docker", ["create", "--platform", "linux/arm64", tag])).trim();
      try {
        await runOk("bash", ["-c", `docker export "$1" | tar -x -C "$2"`, "export", id, into]);
      } finally {
        await run("docker", ["rm", "-f", id]);
      }
    }

    beforeAll(async () => {
      images = await buildImages("arm64");
      work = await mkdtemp(join(tmpdir(), "nxs-arm64-smoke-"));
      await exportImage(images.pocketbase, pbRoot());
      await exportImage(images.gateway, gwRoot());
    }, 600_000);

    afterAll(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("the images are linux/arm64 and their binaries aarch64 ELF files", async () => {
      for (const tag of [images.pocketbase, images.gateway, images.cli]) {
        expect(
          (await runOk("docker", ["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", tag])).trim(),
        ).toBe("linux/arm64");
      }
      expect(await elfMachine(join(pbRoot(), "pocketbase"))).toBe(183);
      expect(await elfMachine(join(pbRoot(), "probe"))).toBe(183);
      expect(await elfMachine(join(gwRoot(), "node"))).toBe(183);
      expect(await elfMachine(join(gwRoot(), "lib", "ld-linux-aarch64.so.1"))).toBe(183);
    });

    it("PocketBase answers --version under qemu", async () => {
      const out = await runOk("qemu-aarch64", [join(pbRoot(), "pocketbase"), "--version"]);
      expect(out.trim()).toBe("pocketbase version v0.39.11");
    });

    it("PocketBase serves with the image's hooks and migration; the arm64 probe sees it healthy", async () => {
      const port = await findFreePort();
      const data = join(work, "pb_data");
      const email = "ops@arm64.test";
      const password = "arm64-smoke-password-1";
      const server = spawn(
        "qemu-aarch64",
        [
          join(pbRoot(), "pocketbase"),
          "serve",
          `--http=127.0.0.1:${port}`,
          `--dir=${data}`,
          "--automigrate=false",
          "--dev=false",
          `--hooksDir=${join(pbRoot(), "pb_hooks")}`,
          "--hooksWatch=false",
          `--migrationsDir=${join(pbRoot(), "pb_migrations")}`,
        ],
        {
          env: { ...process.env, NXS_SUPERUSER_EMAIL: email, NXS_SUPERUSER_PASSWORD: password },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let log = "";
      server.stdout.on("data", (d: Buffer) => {
        log += d.toString();
      });
      server.stderr.on("data", (d: Buffer) => {
        log += d.toString();
      });
      const probe = (path: string) =>
        run("qemu-aarch64", [join(pbRoot(), "probe"), `127.0.0.1:${port}`, path], { timeoutMs: 20_000 });
      try {
        await waitFor(async () => (await probe("/api/health")).code === 0, {
          timeoutMs: 60_000,
          intervalMs: 500,
          description: `the arm64 PocketBase answers /api/health (log: ${log.slice(-500)})`,
        });
        // The probe says no as well: a 404 exits 1.
        expect((await probe("/api/no-such-route")).code).toBe(1);
        const version = (await (await fetch(`http://127.0.0.1:${port}/nxs/version`)).json()) as {
          name: string;
        };
        expect(version.name).toBe("nxs-sync");
        const pb = new PocketBase(`http://127.0.0.1:${port}`);
        const auth = await pb.collection("_superusers").authWithPassword(email, password);
        expect(auth.record.email).toBe(email);
      } finally {
        server.kill("SIGTERM");
        await new Promise((r) => server.once("close", r));
      }
    });

    it("Node runs under qemu with Debian's arm64 cross libraries as sysroot", async () => {
      const script = [
        "const c = require('node:crypto'), z = require('node:zlib');",
        "const text = 'nxs-sync '.repeat(1000);",
        "const back = z.gunzipSync(z.gzipSync(text)).toString();",
        "console.log(JSON.stringify({ arch: process.arch, version: process.version,",
        "  sha: c.createHash('sha256').update('nxs').digest('hex'), same: back === text,",
        "  number: new Intl.NumberFormat('de-DE').format(1234.5) }));",
      ].join("\n");
      const out = await runOk("qemu-aarch64", ["-L", SYSROOT, join(gwRoot(), "node"), "-e", script]);
      const r = JSON.parse(out) as Record<string, unknown>;
      expect(r).toEqual({
        arch: "arm64",
        version: expect.stringMatching(/^v24\./),
        sha: expect.any(String),
        same: true,
        number: "1.234,5",
      });
      // The digest is the one the host's Node computes.
      const { createHash } = await import("node:crypto");
      expect(r.sha).toBe(createHash("sha256").update("nxs").digest("hex"));
    });

    it("the image's own files are enough for Node: the bundled CLI runs with the image as sysroot", async () => {
      const out = await runOk("qemu-aarch64", [
        "-L",
        gwRoot(),
        join(gwRoot(), "node"),
        join(gwRoot(), "app", "nxs-sync.mjs"),
        "--help",
      ]);
      expect(out).toMatch(/Usage: nxs-sync/);
      expect(out).toMatch(/replicator/);
    });
  },
  qemuStatus(),
);
