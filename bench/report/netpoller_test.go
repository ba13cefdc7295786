package report

import (
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
)

// TestNetpollerCost pairs a transport with its io=raw variant (and a
// variant with other options with its io=raw twin) and words the result.
func TestNetpollerCost(t *testing.T) {
	var rs []bench.Result
	add := func(variant string, us float64) {
		ns := int64(us * 1000)
		for _, r := range repeatsOf(t, "unix", ns, ns+10, ns-10, ns+20, ns-20, ns) {
			r.Variant = variant
			rs = append(rs, r)
		}
	}
	add("", 40)
	add("io=raw", 30)
	add("sndbuf=65536", 41)
	add("io=raw,sndbuf=65536", 40.5)
	lines := NetpollerCost(Summarize(rs))
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %v", len(lines), lines)
	}
	got := lines[0].String() + "\n" + lines[1].String()
	for _, want := range []string{
		"netpoller cost: pingpong 64B: unix 40.0µs vs unix[io=raw] 30.0µs p50 round trip: netpoll 1.33× slower",
		"unix[sndbuf=65536] 41.0µs vs unix[io=raw,sndbuf=65536] 40.5µs",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lines lack %q:\n%s", want, got)
		}
	}
}
