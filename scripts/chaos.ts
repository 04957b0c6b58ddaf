/**
 * `npm run chaos -- --seed N --seconds S [--gateways 2|3] [--no-empty-restarts] [--without kind,…]
 * [--quiet]`: one
 * seed of the chaos suite on real PocketBase servers (see docs/testing.md, "Chaos suite"). Prints
 * the progress, the report, and a last line with ops written, acked, lost and the time to
 * converge. Exit code 0 when the seed passes, 1 when it fails (a loss, no convergence), 2 on bad
 * arguments or a fleet that cannot start.
 */
import { parseArgs } from "node:util";
import { FaultKind, formatChaosReport } from "@nxs-sync/testing";
import { runChaosSeed } from "../packages/pocketbase/test/integration/chaos-fleet.js";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: "string" },
      seconds: { type: "string", default: "60" },
      gateways: { type: "string", default: "3" },
      "no-empty-restarts": { type: "boolean", default: false },
      without: { type: "string", default: "" },
      quiet: { type: "boolean", default: false },
    },
  });
  const seed = Number(values.seed);
  const seconds = Number(values.seconds);
  const gateways = Number(values.gateways);
  const kinds = new Set<string>(Object.values(FaultKind));
  const exclude = values.without.split(",").filter((k) => k !== "") as FaultKind[];
  const unknown = exclude.filter((k) => !kinds.has(k));
  if (!Number.isInteger(seed) || !(seconds > 0) || (gateways !== 2 && gateways !== 3) || unknown.length > 0) {
    if (unknown.length > 0)
      console.error(`unknown fault kinds: ${unknown.join(", ")} (known: ${[...kinds].join(", ")})`);
    console.error(
      "usage: npm run chaos -- --seed N [--seconds S] [--gateways 2|3] [--no-empty-restarts] [--without kind,…] [--quiet]",
    );
    return 2;
  }
  const started = performance.now();
  const log = values.quiet ? undefined : (line: string) => console.error(`[chaos] ${line}`);
  const report = await runChaosSeed({
    seed,
    seconds,
    gateways,
    emptyRestarts: !values["no-empty-restarts"],
    exclude,
    ...(log ? { log } : {}),
  });
  console.log(formatChaosReport(report));
  const converge = report.convergeMs === undefined ? "not converged" : `${report.convergeMs} ms`;
  console.log(
    `ops written ${report.written}, acked ${report.acked}, lost ${report.lost}, time to converge ${converge} ` +
      `(run ${((performance.now() - started) / 1000).toFixed(0)} s)`,
  );
  return report.passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
