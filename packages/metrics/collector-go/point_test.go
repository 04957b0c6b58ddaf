package main

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// The vectors made by the TypeScript code (packages/metrics/test/fixtures/point-vectors.ts).
type vectors struct {
	Hash53 []struct {
		Text string `json:"text"`
		Seed uint32 `json:"seed"`
		Hash uint64 `json:"hash"`
	} `json:"hash53"`
	DeterministicID []struct {
		Text string `json:"text"`
		ID   string `json:"id"`
	} `json:"deterministicId"`
	Points []struct {
		Node  string `json:"node"`
		Tier  string `json:"tier"`
		Start int64  `json:"start"`
		Span  int64  `json:"span"`
		N     int64  `json:"n"`
		ID    string `json:"id"`
		Rev   int64  `json:"rev"`
		JSON  string `json:"json"`
	} `json:"points"`
	SeriesKeys []struct {
		Name   string      `json:"name"`
		Labels [][2]string `json:"labels"`
		Key    string      `json:"key"`
	} `json:"seriesKeys"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile("../test/fixtures/point-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Hash53) == 0 || len(v.Points) == 0 || len(v.SeriesKeys) == 0 {
		t.Fatal("empty vectors")
	}
	return v
}

func TestHash53AndIDsMatchTypeScript(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Hash53 {
		if got := hash53(c.Text, c.Seed); got != c.Hash {
			t.Errorf("hash53(%q, %d) = %d, want %d", c.Text, c.Seed, got, c.Hash)
		}
	}
	for _, c := range v.DeterministicID {
		if got := deterministicID(c.Text); got != c.ID {
			t.Errorf("deterministicID(%q) = %s, want %s", c.Text, got, c.ID)
		}
	}
}

func TestPointsMatchTypeScript(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Points {
		var data pointData
		if err := json.Unmarshal([]byte(c.JSON), &data); err != nil {
			t.Fatal(err)
		}
		p, err := makePoint(c.Node, c.Tier, c.Start, c.Span, c.N, data)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := jsJSON(p.Data)
		if string(text) != c.JSON {
			t.Errorf("JSON of %s:\n got %s\nwant %s", c.Node, text, c.JSON)
		}
		if p.ID != c.ID || p.Rev != c.Rev {
			t.Errorf("%s: id %s rev %d, want %s %d", c.Node, p.ID, p.Rev, c.ID, c.Rev)
		}
	}
}

func TestSeriesKeysMatchTypeScript(t *testing.T) {
	for _, c := range loadVectors(t).SeriesKeys {
		if got := seriesKey(c.Name, c.Labels...); got != c.Key {
			t.Errorf("seriesKey(%s, %v) = %s, want %s", c.Name, c.Labels, got, c.Key)
		}
	}
}

func TestWindowRepeatsAGaugeNotSetAndAggregatesOneThatWas(t *testing.T) {
	w := newWindow()
	w.set("a", 3)
	w.set("a", 1)
	w.set("a", 2)
	d := w.take()
	if got, _ := jsJSON(d.S["a"]); string(got) != `["g",1,3,6,3,2]` {
		t.Errorf("a: %s", got)
	}
	d = w.take() // not set in this window: its last value, once
	if got, _ := jsJSON(d.S["a"]); string(got) != `["g",2,2,2,1,2]` {
		t.Errorf("a repeated: %s", got)
	}
	w.set("b", -0.0)
	w.set("c", math.NaN()) // NaN: ignored, as a non-finite value is by the recorder
	d = w.take()
	if got, _ := jsJSON(d.S["b"]); string(got) != `["g",0,0,0,1,0]` {
		t.Errorf("b: %s", got)
	}
	if _, ok := d.S["c"]; ok {
		t.Error("a NaN made a series")
	}
}
