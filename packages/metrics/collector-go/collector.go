package main

// One collection: the node's figures into the window's gauges, under the names and labels of
// createCollector (packages/metrics/src/collector/collector.ts), so checks, queries, the dashboard
// and `nxs-sync metrics` read them as they read a gateway's. Go has no event loop: the
// nodejs_eventloop_* series are not written; process_heap_used_bytes is the Go heap in use.

import (
	"context"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
)

type cpuSample struct{ at, used, capacity float64 }

// collector holds what one collection needs from the last ones.
type collector struct {
	read          readText
	cgroupRoot    string
	diskPath      string
	capPercent    float64
	cpuWindow     time.Duration
	healthURLs    []string
	healthTimeout time.Duration
	httpClient    *http.Client

	cpuSamples []cpuSample
	lastProc   *struct{ at, cpu float64 }
}

// figures is what a collection found (also in the gauges).
type figures struct {
	cpuPercent, memoryPercent, diskPercent opt
	cpuBasis, memoryBasis                  string
	overCap                                []string
}

func (c *collector) collect(w *window, now time.Time) figures {
	nowS := float64(now.UnixMilli()) / 1000
	var out figures
	cg, hasCg := readCgroup(c.read, c.cgroupRoot)
	// CPU: cgroup time against its quota, or host busy time against all cores; averaged over the window.
	out.cpuBasis = "host"
	var sample *cpuSample
	if hasCg && cg.cpuLimitCores.ok && cg.cpuUsageSeconds.ok {
		out.cpuBasis = "cgroup"
		sample = &cpuSample{at: nowS, used: cg.cpuUsageSeconds.v, capacity: nowS * cg.cpuLimitCores.v}
	} else if busy, total, ok := parseProcStat(c.read("/proc/stat")); ok {
		sample = &cpuSample{at: nowS, used: busy, capacity: total}
	}
	if sample != nil {
		c.cpuSamples = append(c.cpuSamples, *sample)
		for len(c.cpuSamples) > 2 && c.cpuSamples[1].at <= nowS-c.cpuWindow.Seconds() {
			c.cpuSamples = c.cpuSamples[1:]
		}
		first := c.cpuSamples[0]
		if dCap := sample.capacity - first.capacity; len(c.cpuSamples) > 1 && dCap > 0 {
			p := math.Min(100, math.Max(0, (sample.used-first.used)/dCap*100))
			out.cpuPercent = some(p)
			w.set(seriesKey("node_cpu_percent", [2]string{"basis", out.cpuBasis}), p)
		}
	}
	// Memory: the cgroup against its limit when there is one, else the host.
	out.memoryBasis = "host"
	if hasCg && cg.memoryLimitBytes.ok && cg.memoryBytes.ok {
		out.memoryBasis = "cgroup"
		out.memoryPercent = some(cg.memoryBytes.v / cg.memoryLimitBytes.v * 100)
		w.set(seriesKey("node_memory_bytes", [2]string{"basis", "cgroup"}), cg.memoryBytes.v)
		w.set(seriesKey("node_memory_limit_bytes", [2]string{"basis", "cgroup"}), cg.memoryLimitBytes.v)
	} else if used, total, ok := parseMeminfo(c.read("/proc/meminfo")); ok {
		out.memoryPercent = some(used / total * 100)
		w.set(seriesKey("node_memory_bytes", [2]string{"basis", "host"}), used)
		w.set(seriesKey("node_memory_limit_bytes", [2]string{"basis", "host"}), total)
	}
	if out.memoryPercent.ok {
		w.set(seriesKey("node_memory_percent", [2]string{"basis", out.memoryBasis}), out.memoryPercent.v)
	}
	if total, free, ok := disk(c.diskPath); ok && total > 0 {
		out.diskPercent = some((total - free) / total * 100)
		w.set("node_disk_percent", out.diskPercent.v)
		w.set("node_disk_used_bytes", total-free)
	}
	for _, r := range []struct {
		name string
		v    opt
	}{{"cpu", out.cpuPercent}, {"memory", out.memoryPercent}, {"disk", out.diskPercent}} {
		if !r.v.ok {
			continue
		}
		over := 0.0
		if r.v.v > c.capPercent {
			over = 1
			out.overCap = append(out.overCap, r.name)
		}
		w.set(seriesKey("node_over_cap", [2]string{"resource", r.name}), over)
	}
	// This process.
	if rss, ok := selfRSS(c.read); ok {
		w.set("process_rss_bytes", rss)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.set("process_heap_used_bytes", float64(ms.HeapAlloc))
	cpu := selfCPUSeconds()
	if c.lastProc != nil && nowS > c.lastProc.at {
		w.set("process_cpu_percent", (cpu-c.lastProc.cpu)/(nowS-c.lastProc.at)*100)
	}
	c.lastProc = &struct{ at, cpu float64 }{nowS, cpu}
	// Each PocketBase server's /api/health, at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, u := range c.healthURLs {
		wg.Add(1)
		go func(u string) {
			defer wg.Done()
			up, ms := c.health(u)
			mu.Lock()
			defer mu.Unlock()
			w.set(seriesKey("pocketbase_up", [2]string{"server", u}), up)
			if up == 1 {
				w.set(seriesKey("pocketbase_health_ms", [2]string{"server", u}), ms)
			}
		}(u)
	}
	wg.Wait()
	return out
}

// health asks url's /api/health: 1 and the time taken when it answered 200.
func (c *collector) health(url string) (up, ms float64) {
	ctx, cancel := context.WithTimeout(context.Background(), c.healthTimeout)
	defer cancel()
	started := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/api/health", nil)
	if err != nil {
		return 0, 0
	}
	res, err := c.httpClient.Do(req)
	if err != nil {
		return 0, 0
	}
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode >= 300 {
		return 0, 0
	}
	return 1, float64(time.Since(started).Microseconds()) / 1000
}
