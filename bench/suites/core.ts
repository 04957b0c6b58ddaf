/**
 * `npm run bench -- core`: nxs-sync's document against Yjs (Y.Map), Automerge and TinyBase's
 * MergeableStore on a key-value workload (issue 3, item 9). Each subject does the same work on
 * the same deterministic key sequence; the runner interleaves subjects and takes medians. The
 * workload lines of core-workloads.ts (counters, sets, wide root, B3.1) add Loro as a peer.
 */
import { gc, opsPerSec, retainedMiBInChild, timeMs } from "../lib/measure.js";
import { keySequence } from "../lib/prng.js";
import type { BenchCase, BenchSuite } from "../lib/types.js";
import { nxs, nxsImmer } from "./core-nxs.js";
import {
  automerge,
  filledReplica,
  KEYS,
  type KvReplica,
  type KvSubject,
  tinybase,
  yjs,
} from "./core-subjects.js";
import { workloadCases } from "./core-workloads.js";

function workload(seed: number, sets: number) {
  const idx = keySequence(seed, sets, KEYS);
  const keys = Array.from(idx, (i) => `k${i}`);
  const values = Array.from({ length: sets }, (_, i) => i);
  return { keys, values };
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

const filled = filledReplica;

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`bench self-check failed: ${what}`);
}

export const suite: BenchSuite = {
  name: "core",
  description: "document model vs Yjs, Automerge, TinyBase on 10,000 keys",
  defaultRuns: 5,
  async setup({ quick }) {
    const SETS = quick ? 20_000 : 100_000;
    const subjects: KvSubject[] = [nxs, yjs, automerge, tinybase];
    const w = workload(1, SETS);
    const per = <T>(f: (s: KvSubject) => () => T, list: readonly KvSubject[] = subjects) =>
      Object.fromEntries(list.map((s) => [s.name, f(s)]));

    /** Local sets in changes of 1 and of 100, for one list of subjects. */
    const localSets = (suffix: string, list: readonly KvSubject[], how: string): BenchCase[] => [
      {
        metric: `local-set-change-of-1${suffix}`,
        unit: "µs/set",
        better: "lower",
        note: `${SETS} sets over ${KEYS} keys, one change (transaction) per set${how}; a subject whose first run takes over 60 s runs once`,
        budgetMs: 60_000,
        subjects: per(
          (s) => async () => {
            const r = s.create(0);
            const ms = await timeMs(() => r.setEach(w.keys, w.values));
            check(r.size() === new Set(w.keys).size, `${s.name} size`);
            return (ms * 1000) / SETS;
          },
          list,
        ),
      },
      {
        metric: `local-set-change-of-100${suffix}`,
        unit: "µs/set",
        better: "lower",
        note: `${SETS} sets over ${KEYS} keys, 100 sets per change${how}`,
        subjects: per(
          (s) => async () => {
            const r = s.create(0);
            const ks = chunks(w.keys, 100);
            const vs = chunks(w.values, 100);
            const ms = await timeMs(() => {
              for (let i = 0; i < ks.length; i++) r.setBatch(ks[i]!, vs[i]!);
            });
            check(r.size() === new Set(w.keys).size, `${s.name} size`);
            return (ms * 1000) / SETS;
          },
          list,
        ),
      },
    ];

    const cases: BenchCase[] = [
      ...localSets("", subjects, ""),
      ...localSets(
        "-immer",
        [nxsImmer, ...subjects.slice(1)],
        ", nxs through immer change() (peers as above)",
      ),
      {
        metric: "full-state-bytes",
        unit: "bytes",
        better: "lower",
        note: "encoded full state of the 10,000-key document (built in changes of 100)",
        subjects: per((s) => () => filled(s, 0).encode().byteLength),
      },
      {
        metric: "full-state-encode",
        unit: "ms",
        better: "lower",
        subjects: per((s) => async () => {
          const r = filled(s, 0);
          return timeMs(() => r.encode());
        }),
      },
      {
        metric: "full-state-load",
        unit: "ms",
        better: "lower",
        subjects: per((s) => async () => {
          const bytes = filled(s, 0).encode();
          let loaded: KvReplica | undefined;
          const ms = await timeMs(() => {
            loaded = s.load(bytes, 1);
          });
          check(loaded?.size() === KEYS, `${s.name} load size`);
          return ms;
        }),
      },
      {
        metric: "remote-apply",
        unit: "sets/s",
        better: "higher",
        note: "1,000 remote changes of 100 sets each, applied to a fresh replica",
        subjects: per((s) => async () => {
          const src = s.create(0);
          const updates = src.captureUpdates();
          const r = workload(2, 100_000);
          const ks = chunks(r.keys, 100);
          const vs = chunks(r.values, 100);
          for (let i = 0; i < ks.length; i++) src.setBatch(ks[i]!, vs[i]!);
          check(updates.length === 1000, `${s.name} captured ${updates.length} updates`);
          const dst = s.create(1);
          gc();
          const rate = await opsPerSec(100_000, () => {
            for (const u of updates) dst.applyUpdate(u);
          });
          check(dst.size() === src.size(), `${s.name} remote size`);
          return rate;
        }),
      },
      {
        metric: "catch-up-bytes",
        unit: "bytes",
        better: "lower",
        note: "bytes exchanged (both ways) to bring back a replica that missed 1,000 sets (changes of 1) on the 10,000-key document; nxs: version vector + the missing changes as one encodeChanges batch (JSON, the codec PocketBase pack records use too)",
        subjects: per((s) => () => {
          const a = filled(s, 0);
          const b = s.load(a.encode(), 1);
          const miss = workload(3, 1000);
          a.setEach(miss.keys, miss.values);
          const bytes = a.catchUp(b);
          check(b.size() === a.size(), `${s.name} caught up`);
          return bytes;
        }),
      },
      {
        metric: "heap-10k-keys",
        unit: "MiB",
        better: "lower",
        note: "JS heap + external (incl. WebAssembly) memory retained by the 10,000-key document (built in changes of 100), after GC, in a fresh process per run",
        subjects: per(
          (s) => () => retainedMiBInChild(new URL("./core-heap.ts", import.meta.url).href, s.name),
        ),
      },
      ...workloadCases(quick),
    ];
    return { cases };
  },
};
