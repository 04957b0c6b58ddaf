/**
 * Where the collector reads the machine: files (`/proc`, `/sys/fs/cgroup`), the disk, the
 * process. The default reads the real ones; tests pass fixtures.
 */
import { readFileSync, statfsSync } from "node:fs";
import { availableParallelism } from "node:os";

/** The collector's view of the machine. */
export interface SystemReader {
  /** A file's text, or undefined when it cannot be read. */
  readText(path: string): string | undefined;
  /** The size and free space of the filesystem holding `path`, or undefined. */
  disk(path: string): { readonly totalBytes: number; readonly freeBytes: number } | undefined;
  /** Cores the host offers this process. */
  cores(): number;
  /** This process's resident set, heap use and CPU time (seconds). */
  process(): { readonly rssBytes: number; readonly heapUsedBytes: number; readonly cpuSeconds: number };
}

/**
 * The real machine.
 * @returns A reader of `/proc`, `/sys/fs/cgroup`, `statfs` and `process`.
 */
export function nodeSystemReader(): SystemReader {
  return {
    readText(path) {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return undefined;
      }
    },
    disk(path) {
      try {
        const s = statfsSync(path);
        return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
      } catch {
        return undefined;
      }
    },
    cores: () => availableParallelism(),
    process() {
      const m = process.memoryUsage();
      const c = process.cpuUsage();
      return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, cpuSeconds: (c.user + c.system) / 1e6 };
    },
  };
}
