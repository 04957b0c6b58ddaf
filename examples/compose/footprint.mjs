#!/usr/bin/env node
// Measures the footprint of the two-node Compose deployment: each container's memory and CPU
// (`docker stats --no-stream`) at idle and under a steady load, printed as a markdown table.
// Brings up its own project (`-p nxsfp<random>`, fresh secrets in a temp dir, images of
// scripts/build-images.mjs), sets it up with the CLI, measures, and always takes it down (-v).
//
// Usage (from the repository root; a Docker engine and docker-compose):
//   node examples/compose/footprint.mjs [--idle-s 60] [--load-s 90] [--samples 5]
//     [--writes 20] [--jobs 5] [--reads 10]     (per second and per gateway)
// Load per gateway: `--writes` note writes (PUT /notes/<key>, answered after the server's ack),
// `--jobs` echo jobs enqueued (both gateways work them), `--reads` GET /state, at a steady pace.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const args = process.argv.slice(2);
const num = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const idleS = num("--idle-s", 60);
const loadS = num("--load-s", 90);
const samples = num("--samples", 5);
const rate = { writes: num("--writes", 20), jobs: num("--jobs", 5), reads: num("--reads", 10) };

const log = (line) => process.stderr.write(`footprint: ${line}\n`);
function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { encoding: "utf8", maxBuffer: 16 * 1024 * 1024, ...options });
  if (r.status !== 0)
    throw new Error(`${cmd} ${argv.join(" ")} exited ${r.status}: ${(r.stderr || r.stdout).slice(-2000)}`);
  return r.stdout;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const images = JSON.parse(run(process.execPath, [join(root, "scripts", "build-images.mjs"), "--json"]))[
  process.arch === "arm64" ? "arm64" : "amd64"
];
const project = `nxsfp${randomBytes(3).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "nxs-footprint-"));
copyFileSync(join(here, "compose.two-nodes.yml"), join(dir, "compose.two-nodes.yml"));
mkdirSync(join(dir, "secrets"));
run(process.execPath, [join(root, "examples", "k3s", "make-secrets.mjs"), join(dir, "secrets")]);
writeFileSync(
  join(dir, "secrets", "superuser.env"),
  `NXS_SUPERUSER_EMAIL=ops@footprint.test\nNXS_SUPERUSER_PASSWORD=${randomBytes(18).toString("base64url")}\n`,
  { mode: 0o600 },
);
const ports = { gwP: await freePort(), gwS: await freePort(), pbP: await freePort(), pbS: await freePort() };
const env = {
  ...process.env,
  NXS_PB_IMAGE: images.pocketbase,
  NXS_GATEWAY_IMAGE: images.gateway,
  NXS_CLI_IMAGE: images.cli,
  NXS_PRIMARY_PUBLISH: `127.0.0.1:${ports.pbP}`,
  NXS_SECONDARY_PUBLISH: `127.0.0.1:${ports.pbS}`,
  NXS_GATEWAY_PRIMARY_PUBLISH: `127.0.0.1:${ports.gwP}`,
  NXS_GATEWAY_SECONDARY_PUBLISH: `127.0.0.1:${ports.gwS}`,
};
const compose = (...a) =>
  run("docker-compose", ["-p", project, "-f", join(dir, "compose.two-nodes.yml"), ...a], { cwd: dir, env });
const gateways = [`http://127.0.0.1:${ports.gwP}`, `http://127.0.0.1:${ports.gwS}`];

/** One `docker stats --no-stream` of the project's containers: name -> {memMiB, cpu}. */
function stats() {
  const names = run("docker", ["ps", "-q", "--filter", `label=com.docker.compose.project=${project}`])
    .trim()
    .split("\n");
  const out = run("docker", [
    "stats",
    "--no-stream",
    "--format",
    "{{.Name}}\t{{.MemUsage}}\t{{.CPUPerc}}",
    ...names,
  ]);
  const unit = { B: 1 / 1048576, KiB: 1 / 1024, MiB: 1, GiB: 1024 };
  const res = {};
  for (const line of out.trim().split("\n")) {
    const [name, mem, cpu] = line.split("\t");
    const m = /^([\d.]+)(B|KiB|MiB|GiB)/.exec(mem);
    res[name.replace(`${project}_`, "").replace(/_1$/, "")] = {
      memMiB: m ? Number(m[1]) * unit[m[2]] : Number.NaN,
      cpu: Number(cpu.replace("%", "")),
    };
  }
  return res;
}
async function sample(n, everyMs) {
  const all = [];
  for (let i = 0; i < n; i++) {
    all.push(stats());
    if (i < n - 1) await sleep(everyMs);
  }
  return all;
}

let loadResult;
try {
  log(`up ${project}`);
  compose("up", "-d");
  for (let i = 0; ; i++) {
    const r = spawnSync(
      "docker-compose",
      ["-p", project, "-f", join(dir, "compose.two-nodes.yml"), "run", "--rm", "setup"],
      { cwd: dir, env, encoding: "utf8" },
    );
    if (r.status === 0) break;
    if (i > 30) throw new Error(`setup failed: ${r.stdout}${r.stderr}`);
    await sleep(2000);
  }
  for (const g of gateways) {
    for (let i = 0; ; i++) {
      const ok = await fetch(`${g}/api/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 120) throw new Error(`${g} not healthy`);
      await sleep(500);
    }
  }
  log(`idle: ${idleS} s to settle, then ${samples} samples`);
  await sleep(idleS * 1000);
  const idle = await sample(samples, 5000);

  log(`load: ${JSON.stringify(rate)} per second per gateway for ${loadS} s`);
  const counts = { writes: 0, jobs: 0, reads: 0, errors: 0 };
  /** Each distinct failure (`<what> <status> <body>`) and how often. */
  const failures = {};
  const stopAt = Date.now() + loadS * 1000;
  const pace = async (perS, fn) => {
    if (perS <= 0) return;
    const every = 1000 / perS;
    let next = Date.now();
    const inflight = new Set();
    while (Date.now() < stopAt) {
      const p = fn().catch((e) => {
        counts.errors++;
        const why = String(e?.message ?? e).slice(0, 160);
        failures[why] = (failures[why] ?? 0) + 1;
      });
      inflight.add(p);
      p.finally(() => inflight.delete(p));
      next += every;
      await sleep(Math.max(0, next - Date.now()));
    }
    await Promise.all(inflight);
  };
  const value = "v".repeat(100);
  let k = 0;
  const loops = gateways.flatMap((g) => [
    pace(rate.writes, async () => {
      const r = await fetch(`${g}/notes/k${k++ % 200}`, { method: "PUT", body: JSON.stringify({ value }) });
      if (!r.ok) throw new Error(`write ${r.status} ${await r.text()}`);
      counts.writes++;
    }),
    pace(rate.jobs, async () => {
      const r = await fetch(`${g}/jobs`, { method: "POST", body: JSON.stringify({ text: "load" }) });
      if (!r.ok) throw new Error(`enqueue ${r.status} ${await r.text()}`);
      counts.jobs++;
    }),
    pace(rate.reads, async () => {
      const r = await fetch(`${g}/state`);
      if (!r.ok) throw new Error(`read ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
      counts.reads++;
    }),
  ]);
  await sleep(Math.min(20_000, (loadS * 1000) / 4));
  const loadSamples = await sample(samples, Math.max(1000, (loadS * 1000) / 2 / samples));
  await Promise.all(loops);
  loadResult = { idle, load: loadSamples, counts, failures };
} finally {
  try {
    compose("down", "-v");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const limits = Object.fromEntries(
  [
    ["pb-primary", "2 GiB", 1.5],
    ["gateway-primary", "1 GiB", 0.5],
    ["replicator", "512 MiB", 0.25],
    ["pb-secondary", "96 MiB", 0.5],
    ["gateway-secondary", "80 MiB", 0.25],
  ].map(([n, m, c]) => [n, { mem: m, cpus: c }]),
);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = (list, name) => {
  const mem = list.map((s) => s[name]?.memMiB ?? Number.NaN);
  const cpu = list.map((s) => s[name]?.cpu ?? Number.NaN);
  return { memMed: median(mem), memMax: Math.max(...mem), cpuMed: median(cpu), cpuMax: Math.max(...cpu) };
};
const rows = Object.keys(limits).map((name) => {
  const i = summary(loadResult.idle, name);
  const l = summary(loadResult.load, name);
  const f = (x, d = 1) => x.toFixed(d);
  return `| ${name} | ${limits[name].mem} / ${limits[name].cpus} | ${f(i.memMed)} (${f(i.memMax)}) | ${f(i.cpuMed, 2)} (${f(i.cpuMax, 2)}) | ${f(l.memMed)} (${f(l.memMax)}) | ${f(l.cpuMed, 2)} (${f(l.cpuMax, 2)}) |`;
});
const c = loadResult.counts;
console.log(
  [
    `${samples} samples each; load ${loadS} s: ${c.writes} note writes, ${c.jobs} jobs enqueued, ${c.reads} reads acknowledged, ${c.errors} errors`,
    "",
    "| container | limit (memory / CPUs) | idle MiB median (max) | idle CPU % median (max) | load MiB median (max) | load CPU % median (max) |",
    "|---|---|---|---|---|---|",
    ...rows,
    ...(c.errors
      ? ["", "failures:", ...Object.entries(loadResult.failures).map(([w, n]) => `- ${n} x ${w}`)]
      : []),
  ].join("\n"),
);
