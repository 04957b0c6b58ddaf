package main

// Writes windows to the fleet's PocketBase servers as @nxs-sync/metrics/pocketbase does: a node
// account of `nxs_nodes` logs in on each server (a token is per server), a window is created in
// `nxs_metrics_points` with its deterministic id (a repeat finds it there: "exists"), the home
// server first and the others in order when it does not answer. Windows that no server took stay
// buffered, oldest first, up to a bound.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	nodesCollection  = "nxs_nodes"
	pointsCollection = "nxs_metrics_points"
	versionPath      = "/nxs/version" // the nxs-sync pb_hooks bundle answers it
)

// configError is a misconfiguration: the collector stops at once and says how to fix it.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// unavailable is a server that did not answer, or answered 5xx: the next one is tried.
type unavailable struct{ err error }

func (e *unavailable) Error() string { return e.err.Error() }

type server struct {
	url     string
	token   string
	checked bool // the nxs-sync hook bundle answered
}

type writer struct {
	servers  []*server
	email    string
	password string
	http     *http.Client
	timeout  time.Duration
}

// do sends one JSON request; a transport failure or a 5xx is `unavailable`.
func (w *writer) do(s *server, method, path string, body any, auth bool) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := jsJSON(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		return 0, nil, &configError{fmt.Sprintf("server %q: %v", s.url, err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth && s.token != "" {
		req.Header.Set("Authorization", s.token)
	}
	res, err := w.http.Do(req)
	if err != nil {
		return 0, nil, &unavailable{err}
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return 0, nil, &unavailable{err}
	}
	if res.StatusCode >= 500 {
		return res.StatusCode, out, &unavailable{fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, strings.TrimSpace(string(out)))}
	}
	return res.StatusCode, out, nil
}

// login checks (once) that the server runs the nxs-sync hook bundle, as every nxs-sync client does,
// and logs the node account in.
func (w *writer) login(s *server) error {
	if !s.checked {
		status, body, err := w.do(s, http.MethodGet, versionPath, nil, false)
		if err != nil {
			return err
		}
		// PocketBase's own 404 of an unknown route (a proxy's 404 is a server not answering).
		if status == http.StatusNotFound && bytes.Contains(body, []byte(`"status":404`)) {
			return &configError{fmt.Sprintf("server %s does not run the nxs-sync pb_hooks bundle (GET %s is 404): install @nxs-sync/pocketbase's pb_hooks (docs/pocketbase.md)", s.url, versionPath)}
		}
		s.checked = true
	}
	status, body, err := w.do(s, http.MethodPost, "/api/collections/"+nodesCollection+"/auth-with-password",
		map[string]string{"identity": w.email, "password": w.password}, false)
	if err != nil {
		return err
	}
	if status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden {
		return &configError{fmt.Sprintf("server %s refused the node account %q (%d): check NXS_COLLECTOR_EMAIL and NXS_COLLECTOR_PASSWORD, an account of %s", s.url, w.email, status, nodesCollection)}
	}
	if status == http.StatusNotFound && missingCollection(body) {
		return &configError{fmt.Sprintf("server %s has no %s collection (404): apply the nxs-sync collections (`nxs-sync setup`)", s.url, nodesCollection)}
	}
	var auth struct {
		Token string `json:"token"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &auth) != nil || auth.Token == "" {
		return &unavailable{fmt.Errorf("login on %s: %d %s", s.url, status, strings.TrimSpace(string(body)))}
	}
	s.token = auth.Token
	return nil
}

// missingCollection tells PocketBase's 404 of a collection that does not exist ("Missing collection
// context.") from any other 404 (a proxy's, a route's), as @nxs-sync/pocketbase's client does.
func missingCollection(body []byte) bool {
	return bytes.Contains(bytes.ToLower(body), []byte("collection context"))
}

// writeOn creates p on one server: "created", or "exists" when a record of that id is there.
func (w *writer) writeOn(s *server, p point) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if s.token == "" {
			if err := w.login(s); err != nil {
				return "", err
			}
		}
		status, body, err := w.do(s, http.MethodPost, "/api/collections/"+pointsCollection+"/records", p, true)
		if err != nil {
			return "", err
		}
		switch {
		case status == http.StatusOK:
			return "created", nil
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			s.token = "" // expired or revoked: log in again once
			continue
		case status == http.StatusBadRequest && bytes.Contains(body, []byte("validation_not_unique")):
			return "exists", nil
		case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout:
			return "", &unavailable{fmt.Errorf("%s: %d (rate limited or timed out)", s.url, status)}
		case status == http.StatusNotFound && !missingCollection(body):
			return "", &unavailable{fmt.Errorf("%s: 404 not from PocketBase (a proxy?): %s", s.url, strings.TrimSpace(string(body)))}
		case status == http.StatusNotFound:
			return "", &configError{fmt.Sprintf("server %s has no %s collection (404): apply the metrics collections (`nxs-sync setup`)", s.url, pointsCollection)}
		default:
			return "", &configError{fmt.Sprintf("server %s refused window %s of node %s (%d): %s", s.url, p.ID, p.Node, status, strings.TrimSpace(string(body)))}
		}
	}
	return "", &configError{fmt.Sprintf("server %s refused the node account %q after a fresh login: it may not write %s", s.url, w.email, pointsCollection)}
}

// write stores p on the first server that answers (home first).
func (w *writer) write(p point) (string, error) {
	var errs []error
	for _, s := range w.servers {
		r, err := w.writeOn(s, p)
		if err == nil {
			return r, nil
		}
		var ce *configError
		if errors.As(err, &ce) {
			return "", err
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.url, err))
	}
	return "", &unavailable{errors.Join(errs...)}
}
