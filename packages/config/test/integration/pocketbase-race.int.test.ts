import { type ChildProcess, fork } from "node:child_process";
import type { ProcessPocketBase } from "@nxs-sync/testing";
import { waitFor } from "@nxs-sync/testing";
import { usePocketBaseServers } from "@nxs-sync/testing/vitest";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { RacerConfig, RacerMessage } from "./pocketbase-racer.js";
import {
  authOf,
  backendOf,
  closeBackends,
  gateway,
  here,
  newEnv,
  startConfigServer,
} from "./pocketbase-servers.js";

/**
 * Writers in separate processes race for one key's next version on a real server, round after
 * round: the compare-and-swap of the put route lets exactly one win each round, and every other
 * gets config/conflict naming the winner.
 */
const servers = usePocketBaseServers();
let server: ProcessPocketBase;
const children: ChildProcess[] = [];
beforeAll(async () => {
  server = await startConfigServer(servers, "config-race");
});
afterEach(() => {
  for (const p of children.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
});
afterAll(closeBackends);

function spawnRacer(config: RacerConfig, sink: RacerMessage[]): ChildProcess {
  const proc = fork(here("./pocketbase-racer.ts"), [JSON.stringify(config)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(proc);
  proc.on("message", (m: RacerMessage) => sink.push(m));
  return proc;
}

it("lets exactly one of five writer processes win each round; the others get config/conflict with the winner", async () => {
  const env = newEnv("race");
  const key = "routes";
  const names = ["a", "b", "c", "d", "e"];
  const rounds = 20;
  const seen: RacerMessage[] = [];
  const racers = names.map((name) =>
    spawnRacer({ name, endpoints: [server.url], auth: authOf(gateway), env, key }, seen),
  );
  await waitFor(
    () =>
      seen.filter((m) => m.type === "ready").length === names.length || seen.find((m) => m.type === "error"),
    {
      timeoutMs: 60_000,
      description: "every racer ready",
    },
  );
  expect(seen.filter((m) => m.type === "error")).toEqual([]);
  const winners: string[] = [];
  for (let round = 0; round < rounds; round++) {
    // Each round another racer hears first (the signal goes out one by one).
    for (let i = 0; i < racers.length; i++) racers[(round + i) % racers.length]?.send({ go: round });
    const results = await waitFor(
      () => {
        const got = seen.filter((m) => m.type !== "ready" && m.round === round);
        return got.length === names.length ? got : undefined;
      },
      { timeoutMs: 30_000, description: `round ${round}: every racer answered` },
    );
    const won = results.filter((m) => m.type === "won");
    const lost = results.filter((m) => m.type === "lost");
    expect(won, `round ${round}: ${JSON.stringify(results)}`).toHaveLength(1);
    expect(won[0]).toMatchObject({ version: round + 1 });
    expect(lost).toHaveLength(names.length - 1);
    for (const l of lost) {
      expect(l).toMatchObject({ code: "config/conflict", currentVersion: round + 1, currentId: won[0]?.id });
    }
    winners.push(String(won[0]?.id));
  }
  for (const r of racers) r.send({ stop: true });
  const stored = await backendOf([server.url]).list({ env, key, limit: 1000 });
  expect(stored.map((v) => v.version)).toEqual(Array.from({ length: rounds }, (_, i) => i + 1));
  expect(stored.map((v) => v.id)).toEqual(winners);
  // Not one process winning everything: the race is real.
  const byWinner = new Set(stored.map((v) => v.node));
  expect(byWinner.size, [...byWinner].join(",")).toBeGreaterThan(1);
});
