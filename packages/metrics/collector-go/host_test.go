package main

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fixture files of packages/metrics/test/fixtures, read as /sys/fs/cgroup and /proc.
func fixtureReader(dir string, overrides map[string]string) readText {
	return func(path string) (string, bool) {
		if v, ok := overrides[path]; ok {
			return v, true
		}
		if !strings.HasPrefix(path, "/sys/fs/cgroup/") {
			return "", false
		}
		b, err := os.ReadFile("../test/fixtures/" + dir + "/" + strings.TrimPrefix(path, "/sys/fs/cgroup/"))
		if err != nil {
			return "", false
		}
		return string(b), true
	}
}

func TestCgroupV2LikeTheTypeScriptReader(t *testing.T) {
	f, ok := readCgroup(fixtureReader("cgroup-v2", map[string]string{"/proc/self/cgroup": "0::/\n"}), "/sys/fs/cgroup")
	if !ok || f.version != 2 {
		t.Fatalf("no v2 cgroup: %+v", f)
	}
	want := cgroupFigures{2, some(805306368 - 105306368), some(1073741824), some(90), some(1.5)}
	if f != want {
		t.Errorf("got %+v, want %+v", f, want)
	}
	f, _ = readCgroup(fixtureReader("cgroup-v2", map[string]string{
		"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n", "/sys/fs/cgroup/cpu.max": "max 100000\n",
	}), "/sys/fs/cgroup")
	if f.memoryLimitBytes.ok || f.cpuLimitCores.ok {
		t.Errorf("max read as a limit: %+v", f)
	}
}

func TestCgroupV1LikeTheTypeScriptReader(t *testing.T) {
	proc := "4:memory:/process_api/x\n2:cpuacct:/\n1:cpu:/\n"
	f, ok := readCgroup(fixtureReader("cgroup-v1", map[string]string{"/proc/self/cgroup": proc}), "/sys/fs/cgroup")
	if !ok {
		t.Fatal("no v1 cgroup")
	}
	want := cgroupFigures{1, some(3615211520 - 1436471296), opt{}, some(36834303448315 / 1e9), opt{}}
	if f != want {
		t.Errorf("got %+v, want %+v", f, want)
	}
	if parseProcCgroup(proc)["memory"] != "/process_api/x" {
		t.Error("memory path")
	}
}

func TestProcStatAndMeminfo(t *testing.T) {
	stat, _ := os.ReadFile("../test/fixtures/proc-stat")
	busy, total, ok := parseProcStat(string(stat), true)
	if !ok || math.Abs(busy-(4705+150+1120+20+5)/100.0) > 1e-9 || math.Abs(total-(4705+150+1120+16250+520+20+5)/100.0) > 1e-9 {
		t.Errorf("proc/stat: %v %v %v", busy, total, ok)
	}
	mem, _ := os.ReadFile("../test/fixtures/proc-meminfo")
	used, all, ok := parseMeminfo(string(mem), true)
	if !ok || used != 6000000*1024 || all != 8000000*1024 {
		t.Errorf("meminfo: %v %v %v", used, all, ok)
	}
}

func TestCollectOnACgroupOverTheCap(t *testing.T) {
	cpu := 90.0
	read := func(path string) (string, bool) {
		if path == "/sys/fs/cgroup/cpu.stat" {
			return "usage_usec " + strconv.FormatFloat(cpu*1e6, 'f', 0, 64) + "\n", true
		}
		if path == "/proc/self/status" {
			return osReadText(path)
		}
		return fixtureReader("cgroup-v2", map[string]string{"/proc/self/cgroup": "0::/\n"})(path)
	}
	c := &collector{read: read, cgroupRoot: "/sys/fs/cgroup", diskPath: ".", capPercent: 75, cpuWindow: 60e9}
	w := newWindow()
	at := int64(1_000_000_000_000)
	c.collect(w, time.UnixMilli(at))
	cpu += 1.5 * 10 * 0.9 // 90% of the 1.5-core quota over 10 s
	f := c.collect(w, time.UnixMilli(at+10_000))
	if f.cpuBasis != "cgroup" || !f.cpuPercent.ok || math.Abs(f.cpuPercent.v-90) > 1e-6 {
		t.Errorf("cpu: %+v", f)
	}
	if f.memoryBasis != "cgroup" || math.Abs(f.memoryPercent.v-700000000.0/1073741824*100) > 1e-9 {
		t.Errorf("memory: %+v", f)
	}
	d := w.take()
	if g := d.S[`node_over_cap{resource="cpu"}`]; g == nil || g[5] != 1.0 {
		t.Errorf("cpu over the cap: %v", g)
	}
	if g := d.S[`node_over_cap{resource="memory"}`]; g == nil || g[5] != 0.0 {
		t.Errorf("memory under the cap: %v", g)
	}
	if g := d.S["process_rss_bytes"]; g == nil {
		t.Error("no process_rss_bytes")
	}
}

func TestOptionsFailEarlyWithWhatToFix(t *testing.T) {
	os.Setenv("NXS_COLLECTOR_PASSWORD", "")
	for args, want := range map[string]string{
		"":                                      "--node",
		"--node n":                              "--servers",
		"--node n --servers ftp://x":            "http(s) URL",
		"--node n --servers http://127.0.0.1:1": "NXS_COLLECTOR_PASSWORD",
	} {
		_, err := parseOptions(strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %s", args, err, want)
		}
	}
	os.Setenv("NXS_COLLECTOR_PASSWORD", "secret-pass")
	defer os.Unsetenv("NXS_COLLECTOR_PASSWORD")
	o, err := parseOptions([]string{"--node", "n", "--servers", "http://a:1/, http://b:2", "--email", "n@x"})
	// URLs as given (a health URL is a label, as createCollector writes it); the password read once and
	// taken out of the environment.
	if err != nil || len(o.servers) != 2 || o.servers[0] != "http://a:1/" || len(o.healthURLs) != 2 || o.password != "secret-pass" {
		t.Errorf("%+v %v", o, err)
	}
	if _, still := os.LookupEnv("NXS_COLLECTOR_PASSWORD"); still {
		t.Error("the password stayed in the environment")
	}
	for args, want := range map[string]string{
		"--node a/b --servers http://a:1 --email n@x":                  "[A-Za-z0-9._-]",
		"--node n --servers http://u:secret@a:1 --email n@x":           "credentials",
		"--node n --servers http://a:1 --email n@x --interval-ms 7000": "divide 60000",
		"--node n --servers http://a:1 --email n@x --timeout-ms 0":     "--timeout-ms",
		"--node n --servers http://a:1/é --email n@x":                  "printable ASCII",
	} {
		os.Setenv("NXS_COLLECTOR_PASSWORD", "secret-pass")
		_, err := parseOptions(strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %s", args, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the credentials: %v", args, err)
		}
	}
}
