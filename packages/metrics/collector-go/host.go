package main

// What the machine says: cgroup v1 and v2, /proc/stat, /proc/meminfo, the disk, this process.
// The same readings and the same meaning as packages/metrics/src/collector/cgroup.ts and host.ts:
// memory is what the cgroup is charged minus its inactive file cache (the host: total minus
// available), CPU is busy time against the cgroup's quota or all the host's cores.

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// readText reads a file, or reports it absent.
type readText func(path string) (string, bool)

func osReadText(path string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// opt is a number that may be absent.
type opt struct {
	v  float64
	ok bool
}

func some(v float64) opt { return opt{v, true} }

func num(text string, present bool) opt {
	if !present {
		return opt{}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return opt{}
	}
	return some(v)
}

// statValue is the value of `key value` lines (memory.stat, cpu.stat).
func statValue(text string, present bool, key string) opt {
	if !present {
		return opt{}
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == key {
			return num(f[1], true)
		}
	}
	return opt{}
}

// cgroupFigures is what a cgroup says of memory and CPU.
type cgroupFigures struct {
	version                        int
	memoryBytes, memoryLimitBytes  opt
	cpuUsageSeconds, cpuLimitCores opt
}

const v1Unlimited = 1 << 60

// The patterns of the files read at every collection, compiled once.
var (
	procCgroupLine   = regexp.MustCompile(`^\d+:([^:]*):(.*)$`)
	memTotalLine     = regexp.MustCompile(`(?m)^MemTotal:\s+(\d+)`)
	memAvailableLine = regexp.MustCompile(`(?m)^MemAvailable:\s+(\d+)`)
	vmRSSLine        = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+)\s+kB`)
)

// parseProcCgroup maps each controller of /proc/self/cgroup to its path ("" for v2).
func parseProcCgroup(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		m := procCgroupLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		for _, c := range strings.Split(m[1], ",") {
			out[c] = m[2]
		}
	}
	return out
}

// readCgroup reads this process's cgroup under root (v2 when root has cgroup.controllers), or
// reports none.
func readCgroup(read readText, root string) (cgroupFigures, bool) {
	selfText, _ := read("/proc/self/cgroup")
	paths := parseProcCgroup(selfText)
	at := func(controller, file string) (string, bool) {
		dir := root
		if controller != "" {
			dir = root + "/" + controller
		}
		if own, ok := paths[controller]; ok && own != "/" {
			if t, ok := read(dir + own + "/" + file); ok {
				return t, true
			}
		}
		return read(dir + "/" + file)
	}
	first := func(a, b func() (string, bool)) (string, bool) {
		if t, ok := a(); ok {
			return t, true
		}
		return b()
	}
	var f cgroupFigures
	if _, v2 := read(root + "/cgroup.controllers"); v2 {
		f.version = 2
		current := num(at("", "memory.current"))
		statText, statOK := at("", "memory.stat")
		inactive := statValue(statText, statOK, "inactive_file")
		if current.ok {
			f.memoryBytes = some(math.Max(0, current.v-inactive.v))
		}
		if maxText, ok := at("", "memory.max"); ok && strings.TrimSpace(maxText) != "max" {
			f.memoryLimitBytes = num(maxText, true)
		}
		cpuMax, ok := at("", "cpu.max")
		if !ok {
			cpuMax = "max"
		}
		parts := strings.Fields(cpuMax)
		if len(parts) >= 1 && parts[0] != "max" {
			quota := num(parts[0], true)
			period := some(100000)
			if len(parts) >= 2 {
				period = num(parts[1], true)
			}
			if quota.ok && period.ok && period.v > 0 {
				f.cpuLimitCores = some(quota.v / period.v)
			}
		}
		cpuStat, cpuOK := at("", "cpu.stat")
		if u := statValue(cpuStat, cpuOK, "usage_usec"); u.ok {
			f.cpuUsageSeconds = some(u.v / 1e6)
		}
	} else {
		f.version = 1
		usage := num(at("memory", "memory.usage_in_bytes"))
		statText, statOK := at("memory", "memory.stat")
		inactive := statValue(statText, statOK, "total_inactive_file")
		if !inactive.ok {
			inactive = statValue(statText, statOK, "inactive_file")
		}
		if usage.ok {
			f.memoryBytes = some(math.Max(0, usage.v-inactive.v))
		}
		if limit := num(at("memory", "memory.limit_in_bytes")); limit.ok && limit.v < v1Unlimited {
			f.memoryLimitBytes = limit
		}
		quota := num(first(func() (string, bool) { return at("cpu", "cpu.cfs_quota_us") },
			func() (string, bool) { return at("cpu,cpuacct", "cpu.cfs_quota_us") }))
		period := num(first(func() (string, bool) { return at("cpu", "cpu.cfs_period_us") },
			func() (string, bool) { return at("cpu,cpuacct", "cpu.cfs_period_us") }))
		if quota.ok && quota.v > 0 && period.ok && period.v > 0 {
			f.cpuLimitCores = some(quota.v / period.v)
		}
		if ns := num(first(func() (string, bool) { return at("cpuacct", "cpuacct.usage") },
			func() (string, bool) { return at("cpu,cpuacct", "cpuacct.usage") })); ns.ok {
			f.cpuUsageSeconds = some(ns.v / 1e9)
		}
	}
	if !f.memoryBytes.ok && !f.cpuUsageSeconds.ok {
		return cgroupFigures{}, false
	}
	return f, true
}

// hostCPU is the host's busy and total CPU time from /proc/stat (seconds, all cores).
func parseProcStat(text string, present bool) (busy, total float64, ok bool) {
	if !present {
		return 0, 0, false
	}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "cpu ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if len(f) < 4 {
			return 0, 0, false
		}
		v := make([]float64, 0, 8)
		for i, s := range f {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, 0, false
			}
			if i < 8 {
				v = append(v, x)
			}
		}
		for _, x := range v {
			total += x
		}
		idle := v[3]
		if len(v) > 4 {
			idle += v[4] // iowait
		}
		return (total - idle) / 100, total / 100, true
	}
	return 0, 0, false
}

// parseMeminfo is the host's used (total minus available) and total memory in bytes.
func parseMeminfo(text string, present bool) (used, total float64, ok bool) {
	if !present {
		return 0, 0, false
	}
	kb := func(re *regexp.Regexp) opt {
		m := re.FindStringSubmatch(text)
		if m == nil {
			return opt{}
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return some(v * 1024)
	}
	t, a := kb(memTotalLine), kb(memAvailableLine)
	if !t.ok || !a.ok {
		return 0, 0, false
	}
	return t.v - a.v, t.v, true
}

// disk is the total and free (for unprivileged users) bytes of the filesystem holding path.
func disk(path string) (total, free float64, ok bool) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(path, &s); err != nil {
		return 0, 0, false
	}
	return float64(s.Blocks) * float64(s.Bsize), float64(s.Bavail) * float64(s.Bsize), true
}

// selfRSS is this process's resident set (VmRSS of /proc/self/status), in bytes.
func selfRSS(read readText) (float64, bool) {
	text, ok := read("/proc/self/status")
	if !ok {
		return 0, false
	}
	m := vmRSSLine.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v * 1024, true
}

// selfCPUSeconds is this process's user and system CPU time.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	sec := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return sec(ru.Utime) + sec(ru.Stime)
}
