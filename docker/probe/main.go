// Command probe is the health check of the nxs-sync images, which are FROM scratch (no shell, no
// curl): `probe HOST:PORT PATH` sends GET http://HOST:PORT/PATH and exits 0 on a 2xx answer, 1 on
// any other answer or error (printed to stderr), 2 on a usage error. Static (CGO_ENABLED=0), the
// standard library only, a 3 s bound (override with PROBE_TIMEOUT_MS).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 3 || (len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help")) {
		fmt.Fprintln(os.Stderr, "usage: probe HOST:PORT PATH   (exit 0 when GET http://HOST:PORT/PATH answers 2xx)")
		os.Exit(2)
	}
	timeout := 3 * time.Second
	if v := os.Getenv("PROBE_TIMEOUT_MS"); v != "" {
		if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
			timeout = time.Duration(ms) * time.Millisecond
		}
	}
	path := os.Args[2]
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := "http://" + os.Args[1] + path
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		os.Exit(2)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: GET %s: %v\n", url, err)
		os.Exit(1)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		fmt.Fprintf(os.Stderr, "probe: GET %s: %s\n", url, res.Status)
		os.Exit(1)
	}
}
