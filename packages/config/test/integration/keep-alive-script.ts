// A plain script using a config store, run as a child process by keep-alive.int.test.ts
// (`node --import tsx keep-alive-script.ts <mode> <cacheFile> [endpoint...]`). Nothing else keeps
// its process alive: what it prints says whether an awaited store call settled before Node exited.
//   closed-ports: starts a store whose endpoints refuse connections, boots from the cache file,
//                 prints its source.
//   hang:         starts a store whose (memory) server hangs, boots from the cache file when the
//                 bound runs out, prints its source.
//   bake:         bakes a rollout, prints the state it ended in.
//   idle:         starts a store and does nothing else (the process must exit on its own).
import { createConfigStore, createMemoryConfigBackend } from "@nxs-sync/config";
import { createPocketBaseConfigBackend } from "@nxs-sync/config/pocketbase";
import { silentLogger } from "@nxs-sync/core";
import { z } from "zod";

const [mode, cacheFile, ...endpoints] = process.argv.slice(2);
if (cacheFile === undefined) throw new Error("usage: keep-alive-script.ts <mode> <cacheFile> [endpoint...]");
const schemas = { limits: z.object({ rps: z.number().int() }) };
const who = { author: "ann", message: "script" };

// The cache file a previous run of the gateway left.
const memory = createMemoryConfigBackend({ logger: silentLogger });
const first = createConfigStore({
  backend: memory,
  env: "prod",
  node: "gw-1",
  schemas,
  cacheFile,
  logger: silentLogger,
});
await first.start();
await first.put("limits", { rps: 5 }, { expectedVersion: 0, ...who });
if (mode === "idle") {
  console.log("started");
} else if (mode === "bake") {
  const r = await first.rollout(
    "limits",
    { rps: 6 },
    { ...who, nodes: ["gw-1"], bakeMs: 300, check: async () => true },
  );
  console.log(r.state);
} else {
  await first.close();
  const backend =
    mode === "closed-ports"
      ? createPocketBaseConfigBackend({
          endpoints,
          auth: { email: "gateway@example.com", password: "not-used-1234" },
          logger: silentLogger,
        })
      : memory;
  if (mode === "hang") memory.setLink("hang");
  const store = createConfigStore({
    backend,
    env: "prod",
    node: "gw-1",
    schemas,
    cacheFile,
    logger: silentLogger,
    ...(mode === "hang" ? { bootTimeoutMs: 300 } : {}),
  });
  const { source } = await store.start();
  console.log(source);
  await store.close();
  await backend.close?.();
}
