package main

import (
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/bench"
)

// TestWarmupFlag checks that -warmup 0 asks the runner for no warm-up
// (bench.NoWarmup) rather than for the default, and that other values pass
// through unchanged.
func TestWarmupFlag(t *testing.T) {
	for _, tt := range []struct {
		flag, want time.Duration
	}{
		{0, bench.NoWarmup},
		{bench.DefaultWarmup, bench.DefaultWarmup},
		{7 * time.Millisecond, 7 * time.Millisecond},
	} {
		f := runFlags{transports: "unix", workloads: "pingpong", sizes: "64", conns: "4", placements: "unpinned",
			framing: "length", peerKind: "serve", duration: time.Second, warmup: tt.flag, repeats: 1, rate: 1}
		o, err := f.options()
		if err != nil {
			t.Fatalf("-warmup %v: %v", tt.flag, err)
		}
		if o.Warmup != tt.want {
			t.Errorf("-warmup %v: Options.Warmup = %v, want %v", tt.flag, o.Warmup, tt.want)
		}
	}
}
