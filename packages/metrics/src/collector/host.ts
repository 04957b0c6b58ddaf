/**
 * The host's figures from `/proc` (pure parsers of the files' text).
 */

/** CPU time of all cores from `/proc/stat`'s `cpu` line, seconds (USER_HZ 100). */
export interface HostCpu {
  readonly busySeconds: number;
  readonly totalSeconds: number;
}

/**
 * Parses `/proc/stat`'s aggregate `cpu` line.
 * @param text - The file's text.
 * @returns Busy and total CPU time (all cores), or undefined.
 */
export function parseProcStat(text: string | undefined): HostCpu | undefined {
  const line = text?.split("\n").find((l) => l.startsWith("cpu "));
  if (line === undefined) return undefined;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  if (v.length < 4 || v.some((x) => !Number.isFinite(x))) return undefined;
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busySeconds: (total - idle) / 100, totalSeconds: total / 100 };
}

/**
 * Parses `/proc/meminfo`: used memory is `MemTotal - MemAvailable`.
 * @param text - The file's text.
 * @returns Used and total bytes, or undefined.
 */
export function parseMeminfo(
  text: string | undefined,
): { usedBytes: number; totalBytes: number } | undefined {
  if (text === undefined) return undefined;
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(text);
    return m === null ? undefined : Number(m[1]) * 1024;
  };
  const total = kb("MemTotal");
  const available = kb("MemAvailable");
  if (total === undefined || available === undefined) return undefined;
  return { usedBytes: total - available, totalBytes: total };
}
