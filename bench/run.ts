/**
 * Benchmark runner: `npm run bench -- <suite> [--out file.json] [--runs N] [--quick] [--only a,b]`
 * (`--only`: run just the cases whose metric starts with one of the given prefixes; a prefix ending
 * in `$` must match the whole metric).
 * Runs a named suite from bench/suites, prints a markdown table (medians and the ratio to the
 * best peer) and writes the JSON report (default bench/results/<suite>.json).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { advantage, median } from "./lib/stats.js";
import type { BenchReport, BenchResult, BenchSuite } from "./lib/types.js";

const here = dirname(fileURLToPath(import.meta.url));

/** Whether an `--only` entry selects a metric: a prefix, or the whole name when it ends in `$`. */
function selects(entry: string, metric: string): boolean {
  return entry.endsWith("$") ? metric === entry.slice(0, -1) : metric.startsWith(entry);
}

function parseArgs(argv: readonly string[]) {
  const out: { suite?: string; out?: string; runs?: number; quick: boolean; only?: string[] } = {
    quick: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--out") out.out = argv[++i];
    else if (a === "--runs") out.runs = Number(argv[++i]);
    else if (a === "--quick") out.quick = true;
    else if (a === "--only") out.only = (argv[++i] ?? "").split(",").filter(Boolean);
    else if (!a.startsWith("-")) out.suite = a;
    else throw new Error(`unknown option ${a}`);
  }
  return out;
}

function suiteNames(): string[] {
  return readdirSync(join(here, "suites"))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.replace(/\.ts$/, ""));
}

function fmt(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 100_000) return n.toExponential(3);
  if (a >= 100) return n.toFixed(0);
  if (a >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

function pocketbaseVersion(): string {
  const bin = process.env.POCKETBASE_BIN;
  if (!bin) return "n/a";
  try {
    return execFileSync(bin, ["--version"], { encoding: "utf8" }).trim().split(/\s+/).pop() ?? "n/a";
  } catch {
    return "n/a";
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!args.suite) {
    console.error(
      `usage: npm run bench -- <suite> [--out file.json] [--runs N] [--quick] [--only a,b]\nsuites: ${suiteNames().join(", ")}`,
    );
    process.exit(2);
  }
  if (!suiteNames().includes(args.suite)) {
    console.error(`unknown suite "${args.suite}"; suites: ${suiteNames().join(", ")}`);
    process.exit(2);
  }
  const mod = (await import(`./suites/${args.suite}.ts`)) as { suite: BenchSuite };
  const suite = mod.suite;
  const runs = args.runs ?? (args.quick ? Math.min(3, suite.defaultRuns) : suite.defaultRuns);
  console.error(`# ${suite.name}: ${suite.description} (${runs} runs per subject)`);
  const {
    cases,
    teardown,
    machine: extra,
  } = await suite.setup({
    quick: args.quick,
    wants: (metric) => args.only === undefined || args.only.some((p) => selects(p, metric)),
  });
  const results: BenchResult[] = [];
  try {
    for (const c of cases) {
      if (args.only !== undefined && !args.only.some((p) => selects(p, c.metric))) continue;
      const samples: Record<string, number[]> = {};
      const names = Object.keys(c.subjects);
      const overBudget = new Set<string>();
      for (let r = 0; r < runs; r++) {
        // Rotate the order each run so no subject always goes first (warm caches, GC debt).
        const order = names.map((_, i) => names[(i + r) % names.length]!);
        for (const name of order) {
          if (overBudget.has(name)) continue;
          const t0 = performance.now();
          const v = await c.subjects[name]!();
          if (c.budgetMs !== undefined && performance.now() - t0 > c.budgetMs) overBudget.add(name);
          const list = samples[name] ?? [];
          list.push(v);
          samples[name] = list;
        }
      }
      const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
      const nxs = med.nxs ?? null;
      const peers = Object.fromEntries(Object.entries(med).filter(([k]) => k !== "nxs"));
      let bestPeer: string | null = null;
      for (const [k, v] of Object.entries(peers)) {
        if (bestPeer === null || advantage(v, peers[bestPeer]!, c.better) > 1) bestPeer = k;
      }
      const vsBestPeer =
        nxs !== null && bestPeer !== null ? advantage(nxs, peers[bestPeer]!, c.better) : null;
      results.push({
        metric: c.metric,
        unit: c.unit,
        better: c.better,
        runs,
        nxs,
        peers,
        vsBestPeer,
        bestPeer,
        samples,
        ...(c.note ? { note: c.note } : {}),
      });
      console.error(
        `  ${c.metric}: nxs ${fmt(nxs)} ${c.unit}; ${Object.entries(peers)
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join(", ")}`,
      );
    }
  } finally {
    await teardown?.();
  }

  const report: BenchReport = {
    suite: suite.name,
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? "unknown",
      memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      pocketbase: pocketbaseVersion(),
      ...extra,
    },
    results,
  };

  const peerKeys = [...new Set(results.flatMap((r) => Object.keys(r.peers)))];
  const lines = [
    `## bench: ${suite.name} (medians of ${runs} runs; node ${process.version}, ${report.machine.cpus} cpus)`,
    "",
    `| metric | unit | better | nxs | ${peerKeys.join(" | ")} | nxs vs best peer |`,
    `|---|---|---|---:|${peerKeys.map(() => "---:").join("|")}|---|`,
    ...results.map((r) => {
      const ratio =
        r.vsBestPeer === null
          ? "n/a"
          : `${r.vsBestPeer.toFixed(2)}x ${r.vsBestPeer >= 1 ? "better" : "worse"} than ${r.bestPeer}`;
      return `| ${r.metric} | ${r.unit} | ${r.better} | ${fmt(r.nxs)} | ${peerKeys.map((k) => fmt(r.peers[k] ?? null)).join(" | ")} | ${ratio} |`;
    }),
  ];
  const notes = results.filter((r) => r.note).map((r) => `- ${r.metric}: ${r.note}`);
  if (notes.length) lines.push("", ...notes);
  console.log(lines.join("\n"));

  const out = args.out ?? join(here, "results", `${suite.name}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.error(`wrote ${out}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
