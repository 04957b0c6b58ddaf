package main

// The compact record of one node and one window, as @nxs-sync/metrics writes it
// (packages/metrics/src/point.ts): the same deterministic id, the same revision digest over the same
// JSON. packages/metrics/test/fixtures/point-vectors.json holds vectors made by the TypeScript code;
// point_test.go checks this file against them, and a unit test of the metrics package checks the
// TypeScript code against the same file.

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
)

// hash53 is cyrb53 over the UTF-16 code units of text, as hash53 in packages/metrics/src/hash.ts.
func hash53(text string, seed uint32) uint64 {
	h1 := uint32(0xdeadbeef) ^ seed
	h2 := uint32(0x41c6ce57) ^ seed
	for _, c := range utf16.Encode([]rune(text)) {
		h1 = (h1 ^ uint32(c)) * 2654435761
		h2 = (h2 ^ uint32(c)) * 1597334677
	}
	h1 = (h1 ^ (h1 >> 16)) * 2246822507
	h1 ^= (h2 ^ (h2 >> 13)) * 3266489909
	h2 = (h2 ^ (h2 >> 16)) * 2246822507
	h2 ^= (h1 ^ (h1 >> 13)) * 3266489909
	return 4294967296*uint64(2097151&h2) + uint64(h1)
}

// deterministicID is a 15-character PocketBase id derived from text (deterministicId in hash.ts).
func deterministicID(text string) string {
	part := func(seed uint32, keep int) string {
		s := strconv.FormatUint(hash53(text, seed), 36)
		if len(s) < 11 {
			s = strings.Repeat("0", 11-len(s)) + s
		}
		return s[len(s)-keep:]
	}
	return part(1, 8) + part(2, 7)
}

// pointID is the id of a node's window in a tier (pointId in point.ts).
func pointID(node, tier string, start int64) string {
	return deterministicID(node + "|" + tier + "|" + strconv.FormatInt(start, 10))
}

// pointData is the record's data: format version, histogram bounds by metric name, values by
// series key. encoding/json writes map keys sorted, as sortData does, and floats as JavaScript's
// JSON.stringify does (shortest form, exponent below 1e-6 and from 1e21).
type pointData struct {
	V int                    `json:"v"`
	B map[string][]float64   `json:"b"`
	S map[string]seriesValue `json:"s"`
}

// seriesValue is a tuple led by its kind: ["g", min, max, sum, count, last] here (the collector
// only sets gauges).
type seriesValue []any

// point is one stored window of one node.
type point struct {
	ID    string    `json:"id"`
	Node  string    `json:"node"`
	Tier  string    `json:"tier"`
	Start int64     `json:"start"`
	Span  int64     `json:"span"`
	N     int64     `json:"n"`
	Rev   int64     `json:"rev"`
	Data  pointData `json:"data"`
}

// jsJSON serializes v as JSON.stringify would (no HTML escaping, no trailing newline).
func jsJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsNumber normalizes a float as JSON.stringify prints it: -0 is 0.
func jsNumber(v float64) float64 {
	if v == 0 {
		return 0
	}
	return v
}

// revisionOf is n * 2^21 plus a 21-bit digest of the data's JSON (revisionOf in point.ts).
func revisionOf(n int64, data pointData) (int64, error) {
	text, err := jsJSON(data)
	if err != nil {
		return 0, err
	}
	return n*(1<<21) + int64(hash53(string(text), 7)%(1<<21)), nil
}

// makePoint builds a point with its id and revision.
func makePoint(node, tier string, start, span, n int64, data pointData) (point, error) {
	if data.B == nil {
		data.B = map[string][]float64{}
	}
	if data.S == nil {
		data.S = map[string]seriesValue{}
	}
	data.V = 1
	rev, err := revisionOf(n, data)
	if err != nil {
		return point{}, err
	}
	return point{ID: pointID(node, tier, start), Node: node, Tier: tier, Start: start, Span: span, N: n, Rev: rev, Data: data}, nil
}

// maxLabelValue is MAX_LABEL_VALUE of names.ts (UTF-16 code units).
const maxLabelValue = 128

// seriesKey is `name` alone, else `name{a="x",b="y"}` in the given order, values escaped as
// encodeSeriesKey in names.ts does.
func seriesKey(name string, labels ...[2]string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range labels {
		v := l[1]
		if u := utf16.Encode([]rune(v)); len(u) > maxLabelValue {
			v = string(utf16.Decode(u[:maxLabelValue]))
		}
		v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l[0])
		b.WriteString(`="`)
		b.WriteString(v)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// gauge is one series' state within the current window (as a gauge of recorder.ts): a window in
// which it was not set repeats its last value.
type gauge struct {
	has                 bool
	n                   int
	min, max, sum, last float64
}

func (g *gauge) set(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	v = jsNumber(v)
	if g.n == 0 {
		g.min, g.max, g.sum = v, v, 0
	}
	g.min = math.Min(g.min, v)
	g.max = math.Max(g.max, v)
	g.sum += v
	g.n++
	g.last = v
	g.has = true
}

// window is the gauges of the window under way.
type window struct{ gauges map[string]*gauge }

func newWindow() *window { return &window{gauges: map[string]*gauge{}} }

func (w *window) set(key string, v float64) {
	g := w.gauges[key]
	if g == nil {
		g = &gauge{}
		w.gauges[key] = g
	}
	g.set(v)
}

// take returns the window's data and starts the next window.
func (w *window) take() pointData {
	s := map[string]seriesValue{}
	for k, g := range w.gauges {
		if !g.has {
			continue
		}
		if g.n == 0 {
			s[k] = seriesValue{"g", g.last, g.last, g.last, 1, g.last}
		} else {
			s[k] = seriesValue{"g", g.min, g.max, jsNumber(g.sum), g.n, g.last}
		}
		g.n = 0
		g.sum = 0
	}
	return pointData{V: 1, B: map[string][]float64{}, S: s}
}
