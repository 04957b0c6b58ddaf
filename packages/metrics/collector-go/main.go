// Command nxs-collector is The Doctor's node collector as a small standalone process: every
// interval it reads the machine (CPU, memory and disk against the 75% cap, its own RSS and CPU,
// each PocketBase server's /api/health) and at every window's end writes one compact record of the
// node to the fleet's PocketBase servers, in the format of @nxs-sync/metrics. Rollups, retention,
// checks and alerts are done by the fleet's createMetrics instances (gateways), which read these
// records as their own. See docs/metrics.md, "The standalone collector".
//
// Usage:
//
//	NXS_COLLECTOR_EMAIL=node-1@fleet.local NXS_COLLECTOR_PASSWORD=... \
//	  nxs-collector --node node-1 --servers http://10.0.0.1:8090,http://10.0.0.2:8090 [--interval-ms 10000]
//
// Exit codes: 0 after SIGTERM or SIGINT (the window under way is written first), 2 on a
// misconfiguration (the message says what to fix).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	node        string
	servers     []string
	healthURLs  []string
	email       string
	password    string
	interval    time.Duration
	cpuWindow   time.Duration
	capRatio    float64
	diskPath    string
	maxBuffered int
	timeout     time.Duration
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func splitURLs(list string) ([]string, error) {
	var out []string
	for _, u := range strings.Split(list, ",") {
		// As given (a health URL is a series label, as createCollector writes it); requests trim a
		// trailing slash.
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("%q is not an http(s) URL", u)
		}
		if p.User != nil {
			return nil, fmt.Errorf("%q holds credentials: they would be logged and stored as a label; use NXS_COLLECTOR_EMAIL and NXS_COLLECTOR_PASSWORD", p.Redacted())
		}
		for _, r := range u {
			if r > 0x7e || r < 0x20 {
				return nil, fmt.Errorf("%q: only printable ASCII (percent-encode the rest)", u)
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// parseOptions reads the flags and the environment; the password only from the environment (a
// command line is visible to `ps`).
func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("nxs-collector", flag.ContinueOnError)
	node := fs.String("node", env("NXS_NODE", ""), "this node's id, as the gateways name it (env NXS_NODE)")
	servers := fs.String("servers", env("NXS_SERVERS", ""), "PocketBase URLs, home first, comma-separated (env NXS_SERVERS)")
	health := fs.String("health", env("NXS_HEALTH_URLS", ""), "URLs whose /api/health is probed (default: --servers)")
	email := fs.String("email", env("NXS_COLLECTOR_EMAIL", ""), "the node account of nxs_nodes (env NXS_COLLECTOR_EMAIL); the password is read from NXS_COLLECTOR_PASSWORD")
	intervalMs := fs.Int("interval-ms", 10000, "probe and flush interval, ms")
	cpuWindowMs := fs.Int("cpu-window-ms", 60000, "window of the CPU average, ms")
	capRatio := fs.Float64("cap", 0.75, "the hardware cap as a ratio")
	diskPath := fs.String("disk-path", ".", "a path on the disk to watch (PocketBase's pb_data)")
	maxBuffered := fs.Int("max-buffered", 360, "windows kept while no server is reachable")
	timeoutMs := fs.Int("timeout-ms", 5000, "timeout of one request, ms")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{
		node: *node, email: *email, password: os.Getenv("NXS_COLLECTOR_PASSWORD"),
		interval: time.Duration(*intervalMs) * time.Millisecond, cpuWindow: time.Duration(*cpuWindowMs) * time.Millisecond,
		capRatio: *capRatio, diskPath: *diskPath, maxBuffered: *maxBuffered, timeout: time.Duration(*timeoutMs) * time.Millisecond,
	}
	var err error
	if o.servers, err = splitURLs(*servers); err != nil {
		return o, fmt.Errorf("--servers: %v", err)
	}
	if *health == "" {
		o.healthURLs = o.servers
	} else if o.healthURLs, err = splitURLs(*health); err != nil {
		return o, fmt.Errorf("--health: %v", err)
	}
	os.Unsetenv("NXS_COLLECTOR_PASSWORD") // out of /proc/<pid>/environ's later readers' reach
	switch {
	case !nodePattern.MatchString(o.node):
		return o, errors.New("--node (or NXS_NODE) is required: 1 to 200 characters of [A-Za-z0-9._-] naming this node")
	case len(o.servers) == 0:
		return o, errors.New("--servers (or NXS_SERVERS) is required: the PocketBase URLs, home first")
	case o.email == "" || o.password == "":
		return o, errors.New("NXS_COLLECTOR_EMAIL and NXS_COLLECTOR_PASSWORD are required: a node account of nxs_nodes")
	case o.interval < 100*time.Millisecond || (60*time.Second)%o.interval != 0:
		return o, errors.New("--interval-ms must be at least 100 and divide 60000 (windows must not straddle a 1 m rollup)")
	case o.timeout <= 0:
		return o, errors.New("--timeout-ms must be positive")
	case o.capRatio <= 0 || o.capRatio > 1:
		return o, errors.New("--cap must be in (0, 1]")
	case o.maxBuffered < 1:
		return o, errors.New("--max-buffered must be at least 1")
	}
	return o, nil
}

// nodePattern is the node ids nxs-sync accepts (checkNode in @nxs-sync/metrics).
var nodePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "nxs-collector: "+format+"\n", args...)
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		logf("%v", err)
		os.Exit(2)
	}
	os.Exit(run(o))
}

// outbox holds the windows not written yet, oldest first, up to a bound (the oldest dropped first).
// The collection loop pushes; the writer goroutine writes and pops, so a slow or dead server never
// delays a collection or a window's boundary.
type outbox struct {
	mu      sync.Mutex
	pending []point
	max     int
	wake    chan struct{}
}

func (o *outbox) push(p point) {
	o.mu.Lock()
	o.pending = append(o.pending, p)
	if len(o.pending) > o.max {
		o.pending = o.pending[len(o.pending)-o.max:]
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) front() (point, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) == 0 {
		return point{}, false
	}
	return o.pending[0], true
}

// pop removes p when it is still the oldest (a push past the bound may have dropped it).
func (o *outbox) pop(p point) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) > 0 && o.pending[0].ID == p.ID {
		o.pending = o.pending[1:]
	}
}

func (o *outbox) size() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}

// run collects and flushes until a signal; returns the exit code.
func run(o options) int {
	httpClient := &http.Client{Timeout: o.timeout}
	c := &collector{
		read: osReadText, cgroupRoot: "/sys/fs/cgroup", diskPath: o.diskPath, capPercent: o.capRatio * 100,
		cpuWindow: o.cpuWindow, healthURLs: o.healthURLs, healthTimeout: 2 * time.Second, httpClient: httpClient,
	}
	w := &writer{email: o.email, password: o.password, http: httpClient, timeout: o.timeout}
	for _, u := range o.servers {
		w.servers = append(w.servers, &server{url: strings.TrimRight(u, "/")})
	}
	span := o.interval.Milliseconds()
	win := newWindow()
	box := &outbox{max: o.maxBuffered, wake: make(chan struct{}, 1)}
	fatal := make(chan error, 1)

	// The writer: everything buffered, oldest first, at every window (and again at the next one
	// after a failure). A misconfiguration stops the process.
	go func() {
		failing := false
		for range box.wake {
			for {
				p, ok := box.front()
				if !ok {
					break
				}
				if _, err := w.write(p); err != nil {
					var ce *configError
					if errors.As(err, &ce) {
						fatal <- err
						return
					}
					if !failing {
						failing = true
						logf("no server took window %d (%v); %d window(s) kept for the next flush", p.Start, err, box.size())
					}
					break
				}
				box.pop(p)
				if failing {
					failing = false
					logf("writing again; %d window(s) to catch up", box.size())
				}
			}
		}
	}()
	take := func(start int64) {
		p, err := makePoint(o.node, "raw", start, span, 1, win.take())
		if err != nil {
			logf("window %d: %v", start, err)
			return
		}
		box.push(p)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	logf("node %s, %d server(s), every %s", o.node, len(o.servers), o.interval)
	c.collect(win, time.Now())
	next := (time.Now().UnixMilli()/span)*span + span
	for {
		timer := time.NewTimer(time.Until(time.UnixMilli(next)))
		select {
		case err := <-fatal:
			timer.Stop()
			logf("%v", err)
			return 2
		case <-stop:
			timer.Stop()
			// The window under way is written now (a later start would not write it again), and
			// what is buffered, for at most shutdownWait: a stop must not hang on a dead server.
			take((time.Now().UnixMilli() / span) * span)
			deadline := time.Now().Add(shutdownWait)
			for box.size() > 0 && time.Now().Before(deadline) {
				select {
				case err := <-fatal:
					logf("%v", err)
					return 2
				case <-time.After(20 * time.Millisecond):
				}
			}
			if n := box.size(); n > 0 {
				logf("stopped with %d window(s) not written", n)
			}
			return 0
		case <-timer.C:
			// The window that just ended (after a freeze, the last one: what was recorded since
			// belongs to it, as the TypeScript flusher does), then a collection.
			now := time.Now().UnixMilli()
			for next <= now {
				next += span
			}
			take(next - 2*span)
			c.collect(win, time.Now())
		}
	}
}

// shutdownWait bounds the last flush at a stop (Docker's default stop timeout is 10 s).
const shutdownWait = 5 * time.Second
