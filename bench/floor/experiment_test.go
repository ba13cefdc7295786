package floor

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/shmring"
)

func goodConfig() Config {
	return Config{Repeats: 1, PingPongN: 100, StreamBytes: 4 << 20, FaninN: 64}
}

func TestConfigCheck(t *testing.T) {
	if err := goodConfig().Check(); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		field string // the ConfigError's Field
		mod   func(*Config)
	}{
		"no repeats":      {"Repeats", func(c *Config) { c.Repeats = 0 }},
		"too many":        {"Repeats", func(c *Config) { c.Repeats = 10_001 }},
		"few trips":       {"PingPongN", func(c *Config) { c.PingPongN = 99 }},
		"small stream":    {"StreamBytes", func(c *Config) { c.StreamBytes = 1 << 20 }},
		"fewer than one":  {"FaninN", func(c *Config) { c.FaninN = 63 }},
		"too many fanins": {"FaninN", func(c *Config) { c.FaninN = 1_000_000_001 }},
	} {
		c := goodConfig()
		tt.mod(&c)
		err := c.Check()
		var ce *ConfigError
		if !errors.Is(err, ErrBadConfig) || !errors.As(err, &ce) || ce.Field != tt.field {
			t.Errorf("%s: %#v, want ErrBadConfig, a *ConfigError for %s", name, err, tt.field)
		}
		if _, err := New(c, Programs{}, Pairs(false)); !errors.Is(err, ErrBadConfig) {
			t.Errorf("New, %s: %v, want ErrBadConfig", name, err)
		}
	}
}

// TestEveryPairIsPlanned: every pair's variant is a transport ipcbench
// knows, its C mode one its program has, and its case is planned, with and
// without two CPUs.
func TestEveryPairIsPlanned(t *testing.T) {
	for _, two := range []bool{false, true} {
		ps := Pairs(two)
		e, err := New(goodConfig(), Programs{}, ps)
		if err != nil {
			t.Fatalf("two CPUs %v: %v", two, err)
		}
		if done, total, _ := e.Progress(); done != 0 || total != 2*len(ps) {
			t.Errorf("progress %d of %d, want 0 of %d", done, total, 2*len(ps))
		}
		names := map[string]bool{}
		for _, p := range ps {
			if names[p.Name()] {
				t.Errorf("pair %s appears twice", p.Name())
			}
			names[p.Name()] = true
			if p.Placement != "unpinned" && !two {
				t.Errorf("pair %s is pinned without two CPUs", p.Name())
			}
		}
		for _, conns := range FaninConns {
			if !slices.ContainsFunc(ps, func(p Pair) bool { return p.Workload == "fanin" && p.Conns == conns }) {
				t.Errorf("no fanin pair at %d connections", conns)
			}
		}
		if !slices.ContainsFunc(ps, func(p Pair) bool { return p.Workload == "stream" && p.Size == 1<<20 }) {
			t.Errorf("no 1 MiB stream pair")
		}
	}
	bad := []Pair{{Workload: "pingpong", Variant: "carrier-pigeon", Size: 64, Conns: 1, Placement: "unpinned", C: CProgram{Program: "pingpong", Mode: "pipe"}}}
	if _, err := New(goodConfig(), Programs{}, bad); !errors.Is(err, ErrBadConfig) {
		t.Errorf("unknown transport: %v", err)
	}
	bad[0].Variant, bad[0].C.Mode = "pipe", "smoke-signal"
	if _, err := New(goodConfig(), Programs{}, bad); !errors.Is(err, ErrUnknownMode) {
		t.Errorf("unknown C mode: %v", err)
	}
}

func TestSelect(t *testing.T) {
	ps := Pairs(true)
	got, err := Select(ps, "^fanin/unix/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(FaninConns) {
		t.Errorf("^fanin/unix/ selected %d pairs, want %d", len(got), len(FaninConns))
	}
	for _, p := range got {
		if !strings.HasPrefix(p.Name(), "fanin/unix/1KiB/") {
			t.Errorf("selected %s", p.Name())
		}
	}
	for _, pat := range []string{"(", "^nothing$"} {
		if _, err := Select(ps, pat); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Select(%q): %v, want ErrBadConfig", pat, err)
		}
	}
}

// TestDescribeLargeStream: a stream total beyond a 32-bit int is recorded
// exactly in the header, on every platform (it went through int, which
// on 386 recorded 4104 MiB as "8MiB").
func TestDescribeLargeStream(t *testing.T) {
	c := goodConfig()
	c.StreamBytes = 4<<30 + 8<<20
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if got := c.Describe()["stream_bytes"]; got != "4104MiB" {
		t.Errorf("stream_bytes = %q, want 4104MiB", got)
	}
}

// TestRingPairsHoldGoRing: the C ring of every shared-memory stream pair
// holds as many bytes as shm-ring's ring (GoRingBytes): -r slots of one
// message each, 16 when -r is not given.
func TestRingPairsHoldGoRing(t *testing.T) {
	rings := 0
	for _, p := range Pairs(true) {
		if p.Workload != "stream" || !strings.HasPrefix(p.C.Mode, "ring-") {
			continue
		}
		rings++
		slots := 16
		if i := slices.Index(p.C.Args, "-r"); i >= 0 && i+1 < len(p.C.Args) {
			n, err := strconv.Atoi(p.C.Args[i+1])
			if err != nil {
				t.Fatalf("%s: -r %q", p.Name(), p.C.Args[i+1])
			}
			slots = n
		}
		if slots*p.Size != GoRingBytes {
			t.Errorf("%s: the C ring holds %d slots of %d bytes, %d bytes; shm-ring's holds %d", p.Name(), slots, p.Size, slots*p.Size, GoRingBytes)
		}
	}
	if rings == 0 {
		t.Fatal("no shared-memory stream pair")
	}
	// GoRingBytes is shm-ring's default ring, as a listener reports it.
	ln, err := shmring.New().Listen(t.Context(), transports.Config{})
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	or, ok := ln.(transports.OptionReporter)
	if !ok {
		t.Fatalf("shm-ring's listener (%T) reports no options", ln)
	}
	if got := or.EffectiveOptions()["ring_bytes"]; got != strconv.Itoa(GoRingBytes) {
		t.Errorf("shm-ring's default ring_bytes = %q, GoRingBytes = %d", got, GoRingBytes)
	}
}
