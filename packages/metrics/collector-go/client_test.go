package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A stand-in for PocketBase's answers to the three requests the writer makes (the real server is
// in go-collector.int.test.ts); `records` decides the answer to a window's create.
func fakeServer(t *testing.T, records func(n int64) (int, string)) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var creates, logins atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == versionPath:
			w.Write([]byte(`{"version":1}`))
		case strings.HasSuffix(r.URL.Path, "/auth-with-password"):
			logins.Add(1)
			w.Write([]byte(`{"token":"tok"}`))
		case strings.HasSuffix(r.URL.Path, "/records"):
			code, body := records(creates.Add(1))
			w.WriteHeader(code)
			w.Write([]byte(body))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"status":404,"message":"The requested resource wasn't found."}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &creates, &logins
}

func testWriter(urls ...string) *writer {
	w := &writer{email: "n@x", password: "pw", http: &http.Client{}, timeout: 2 * time.Second}
	for _, u := range urls {
		w.servers = append(w.servers, &server{url: u})
	}
	return w
}

func TestWriterAnswers(t *testing.T) {
	p, _ := makePoint("n", "raw", 1_000, 1_000, 1, pointData{})
	cases := []struct {
		name   string
		code   int
		body   string
		result string
		kind   string // "", "config", "unavailable"
	}{
		{"created", 200, `{}`, "created", ""},
		{"a duplicate id is there already", 400, `{"data":{"id":{"code":"validation_not_unique"}}}`, "exists", ""},
		{"rate limited", 429, `{}`, "", "unavailable"},
		{"a proxy's 404", 404, `page not found`, "", "unavailable"},
		{"the collection is missing", 404, `{"status":404,"message":"Missing collection context."}`, "", "config"},
		{"refused data", 400, `{"data":{"data":{"code":"validation_json_size_limit"}}}`, "", "config"},
		{"a server error", 503, `{}`, "", "unavailable"},
	}
	for _, c := range cases {
		srv, _, _ := fakeServer(t, func(int64) (int, string) { return c.code, c.body })
		r, err := testWriter(srv.URL).write(p)
		var ce *configError
		var un *unavailable
		switch {
		case c.kind == "" && (err != nil || r != c.result):
			t.Errorf("%s: %q %v", c.name, r, err)
		case c.kind == "config" && !errors.As(err, &ce):
			t.Errorf("%s: %v, want a configuration error", c.name, err)
		case c.kind == "unavailable" && !errors.As(err, &un):
			t.Errorf("%s: %v, want unavailable", c.name, err)
		}
	}
}

func TestWriterLogsInAgainOnceAfterA401AndFailsOverInOrder(t *testing.T) {
	p, _ := makePoint("n", "raw", 1_000, 1_000, 1, pointData{})
	srv, creates, logins := fakeServer(t, func(n int64) (int, string) {
		if n == 1 {
			return 401, `{}`
		}
		return 200, `{}`
	})
	if r, err := testWriter(srv.URL).write(p); err != nil || r != "created" || logins.Load() != 2 || creates.Load() != 2 {
		t.Errorf("%q %v: %d logins, %d creates", r, err, logins.Load(), creates.Load())
	}
	// The home server does not answer: the next one takes the window.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	other, otherCreates, _ := fakeServer(t, func(int64) (int, string) { return 200, `{}` })
	if r, err := testWriter(deadURL, other.URL).write(p); err != nil || r != "created" || otherCreates.Load() != 1 {
		t.Errorf("failover: %q %v", r, err)
	}
}

func TestOutboxKeepsTheNewestUpToItsBound(t *testing.T) {
	box := &outbox{max: 2, wake: make(chan struct{}, 1)}
	for i := int64(1); i <= 3; i++ {
		p, _ := makePoint("n", "raw", i*1_000, 1_000, 1, pointData{})
		box.push(p)
	}
	first, _ := box.front()
	if box.size() != 2 || first.Start != 2_000 {
		t.Errorf("size %d, oldest %d", box.size(), first.Start)
	}
	box.pop(first)
	if next, _ := box.front(); box.size() != 1 || next.Start != 3_000 {
		t.Errorf("after pop: %d %d", box.size(), next.Start)
	}
}
