/**
 * The container's limits and usage from the cgroup files, v1 and v2. The parsers are pure (they
 * take the files' text); {@link readCgroup} finds the files through a `read` function.
 *
 * What the figures mean: `memoryBytes` is the cgroup's charged memory minus inactive file cache
 * (what the kernel would reclaim first, as `docker stats` does), `memoryLimitBytes` its limit
 * (undefined when unlimited); `cpuUsageSeconds` the cgroup's CPU time since it started,
 * `cpuLimitCores` the cores its quota allows (undefined when unlimited).
 */

/** What the cgroup says. */
export interface CgroupFigures {
  readonly version: 1 | 2;
  readonly memoryBytes: number | undefined;
  readonly memoryLimitBytes: number | undefined;
  readonly cpuUsageSeconds: number | undefined;
  readonly cpuLimitCores: number | undefined;
}

/** Reads a file's text, or undefined when it is not there. */
export type ReadText = (path: string) => string | undefined;

/** Above this, a v1 limit means "no limit" (the kernel writes PAGE_COUNTER_MAX rounded). */
const V1_UNLIMITED = 2 ** 60;

const num = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : undefined;
};

/** A `key value` line's value from a stat file (`memory.stat`, `cpu.stat`). */
export function statValue(text: string | undefined, key: string): number | undefined {
  if (text === undefined) return undefined;
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key) return num(v);
  }
  return undefined;
}

/**
 * Parses cgroup v2 files.
 * @param files - `memory.current`, `memory.max`, `memory.stat`, `cpu.max`, `cpu.stat` (text, or undefined).
 * @returns The figures.
 */
export function parseCgroupV2(files: {
  readonly memoryCurrent?: string | undefined;
  readonly memoryMax?: string | undefined;
  readonly memoryStat?: string | undefined;
  readonly cpuMax?: string | undefined;
  readonly cpuStat?: string | undefined;
}): CgroupFigures {
  const current = num(files.memoryCurrent);
  const inactive = statValue(files.memoryStat, "inactive_file") ?? 0;
  const max = files.memoryMax?.trim();
  const [quota, period] = (files.cpuMax?.trim() ?? "max").split(/\s+/);
  const usageUsec = statValue(files.cpuStat, "usage_usec");
  return {
    version: 2,
    memoryBytes: current === undefined ? undefined : Math.max(0, current - inactive),
    memoryLimitBytes: max === undefined || max === "max" ? undefined : num(max),
    cpuUsageSeconds: usageUsec === undefined ? undefined : usageUsec / 1e6,
    cpuLimitCores:
      quota === undefined || quota === "max" ? undefined : Number(quota) / Number(period ?? 100_000),
  };
}

/**
 * Parses cgroup v1 files.
 * @param files - `memory.usage_in_bytes`, `memory.limit_in_bytes`, `memory.stat`,
 *   `cpu.cfs_quota_us`, `cpu.cfs_period_us`, `cpuacct.usage` (ns).
 * @returns The figures.
 */
export function parseCgroupV1(files: {
  readonly memoryUsage?: string | undefined;
  readonly memoryLimit?: string | undefined;
  readonly memoryStat?: string | undefined;
  readonly cfsQuota?: string | undefined;
  readonly cfsPeriod?: string | undefined;
  readonly cpuacctUsage?: string | undefined;
}): CgroupFigures {
  const usage = num(files.memoryUsage);
  const inactive =
    statValue(files.memoryStat, "total_inactive_file") ?? statValue(files.memoryStat, "inactive_file") ?? 0;
  const limit = num(files.memoryLimit);
  const quota = num(files.cfsQuota);
  const period = num(files.cfsPeriod);
  const ns = num(files.cpuacctUsage);
  return {
    version: 1,
    memoryBytes: usage === undefined ? undefined : Math.max(0, usage - inactive),
    memoryLimitBytes: limit === undefined || limit >= V1_UNLIMITED ? undefined : limit,
    cpuUsageSeconds: ns === undefined ? undefined : ns / 1e9,
    cpuLimitCores:
      quota === undefined || quota <= 0 || period === undefined || period <= 0 ? undefined : quota / period,
  };
}

/**
 * The path of each controller's cgroup from `/proc/self/cgroup` (`""` for the v2 unified one).
 * @param text - The file's text.
 * @returns Controller name to path.
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (m === null) continue;
    for (const c of (m[1] as string).split(",")) out.set(c, m[2] as string);
  }
  return out;
}

/**
 * Reads this process's cgroup (v2 when `<root>/cgroup.controllers` exists, else v1). Each file is
 * looked up under the process's own cgroup path first, then at the mount's root (inside a
 * container's cgroup namespace the root is the container's).
 * @param read - Reads a file.
 * @param root - The cgroup mount. Default `/sys/fs/cgroup`.
 * @returns The figures, or undefined when no cgroup file is readable.
 */
export function readCgroup(read: ReadText, root = "/sys/fs/cgroup"): CgroupFigures | undefined {
  const paths = parseProcCgroup(read("/proc/self/cgroup") ?? "");
  const at = (controller: string, file: string): string | undefined => {
    const dir = controller === "" ? root : `${root}/${controller}`;
    const own = paths.get(controller);
    return (
      (own !== undefined && own !== "/" ? read(`${dir}${own}/${file}`) : undefined) ?? read(`${dir}/${file}`)
    );
  };
  if (read(`${root}/cgroup.controllers`) !== undefined) {
    const f = parseCgroupV2({
      memoryCurrent: at("", "memory.current"),
      memoryMax: at("", "memory.max"),
      memoryStat: at("", "memory.stat"),
      cpuMax: at("", "cpu.max"),
      cpuStat: at("", "cpu.stat"),
    });
    return f.memoryBytes === undefined && f.cpuUsageSeconds === undefined ? undefined : f;
  }
  const f = parseCgroupV1({
    memoryUsage: at("memory", "memory.usage_in_bytes"),
    memoryLimit: at("memory", "memory.limit_in_bytes"),
    memoryStat: at("memory", "memory.stat"),
    cfsQuota: at("cpu", "cpu.cfs_quota_us") ?? at("cpu,cpuacct", "cpu.cfs_quota_us"),
    cfsPeriod: at("cpu", "cpu.cfs_period_us") ?? at("cpu,cpuacct", "cpu.cfs_period_us"),
    cpuacctUsage: at("cpuacct", "cpuacct.usage") ?? at("cpu,cpuacct", "cpuacct.usage"),
  });
  return f.memoryBytes === undefined && f.cpuUsageSeconds === undefined ? undefined : f;
}
