/** Shared setup of the store's unit tests: memory backends, a manual scheduler, a keyring, event logs. */
import {
  createManualScheduler,
  createSeededRandom,
  type ManualScheduler,
  silentLogger,
} from "@nxs-sync/core";
import { z } from "zod";
import { createMemoryConfigBackend, type MemoryConfigBackend } from "../../src/memory-backend.js";
import { createKeyring, type Keyring, secret } from "../../src/secrets.js";
import {
  type ConfigStore,
  type ConfigStoreEvent,
  type ConfigStoreOptions,
  type ConfigWatchEvent,
  createConfigStore,
} from "../../src/store.js";

export const schemas = {
  limits: z.object({ rps: z.number().int().min(1), burst: z.number().int().min(0).default(10) }),
  providers: z.object({ name: z.string(), apiKey: secret(z.string().min(1)) }),
  flags: z.record(z.string(), z.boolean()),
};
export type Schemas = typeof schemas;

/** Lets queued microtasks and immediates run (deliveries, awaited continuations). */
export const flush = async (rounds = 5): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** A key of 32 bytes derived from a label (tests only). */
export const keyBytes = (label: string): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = (label.charCodeAt(i % label.length) * (i + 7)) & 0xff;
  return out;
};
export const keyringOf = (kid: string): Keyring => createKeyring({ keys: { [kid]: keyBytes(kid) } });

/** Version ids from a seed: 15 chars of [a-z0-9], distinct per seed. */
export const seededIds = (seed: number): (() => string) => {
  const random = createSeededRandom(seed);
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return () => {
    let s = "";
    for (let i = 0; i < 15; i++) s += alphabet[random.int(alphabet.length)];
    return s;
  };
};

export interface Harness {
  readonly scheduler: ManualScheduler;
  backend(name?: string): MemoryConfigBackend;
  store(
    backend: MemoryConfigBackend,
    over?: Partial<ConfigStoreOptions<Schemas>>,
  ): { store: ConfigStore<Schemas>; events: ConfigStoreEvent[] };
  /** Moves the manual clock by `ms` in steps, letting promises run between them. */
  advance(ms: number, step?: number): Promise<void>;
}

let seedCounter = 1;

export function harness(): Harness {
  const scheduler = createManualScheduler({ now: 1_700_000_000_000 });
  return {
    scheduler,
    backend: (name = "a") =>
      createMemoryConfigBackend({ name, now: () => scheduler.now(), logger: silentLogger }),
    store(backend, over = {}) {
      const events: ConfigStoreEvent[] = [];
      const store = createConfigStore({
        backend,
        env: "prod",
        node: "gw-1",
        schemas,
        keyring: keyringOf("k1"),
        scheduler,
        logger: silentLogger,
        newId: seededIds(seedCounter++),
        onEvent: (e) => events.push(e),
        ...over,
      });
      return { store, events };
    },
    async advance(ms, step = 10) {
      for (let t = 0; t < ms; t += step) {
        scheduler.advance(Math.min(step, ms - t));
        await flush(2);
      }
      await flush();
    },
  };
}

/** Collects what a watch listener receives. */
export function watchLog<V>() {
  const events: ConfigWatchEvent<V>[] = [];
  return {
    events,
    listener: (e: ConfigWatchEvent<V>) => events.push(e),
    versions: () => events.flatMap((e) => (e.type === "version" ? [e.version] : [])),
    conflicts: () => events.filter((e) => e.type === "conflict"),
  };
}

/**
 * Writes straight to the backend, past the store's validation, a version of `limits` that fails its
 * schema (an older schema's value, a hostile writer), with id `hostile00000000`.
 */
export const putHostile = (backend: MemoryConfigBackend, expectedVersion: number) =>
  backend.put({
    id: "hostile00000000",
    env: "prod",
    key: "limits",
    expectedVersion,
    hlc: "0000000000ff000000x",
    node: "x",
    author: "x",
    message: "bad",
    value: { rps: "fast" },
  });
