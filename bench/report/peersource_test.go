package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
)

// TestPeerSourceCost pairs a transport's via=address and via=serve
// variants with its inherit row, words a clear difference and a tie, and
// leaves out a source whose cases were all skipped; the text and Markdown
// reports carry the lines.
func TestPeerSourceCost(t *testing.T) {
	var rs []bench.Result
	add := func(transport, variant string, us float64) {
		ns := int64(us * 1000)
		for _, r := range repeatsOf(t, transport, ns, ns+10, ns-10, ns+20, ns-20, ns) {
			r.Variant = variant
			rs = append(rs, r)
		}
	}
	add("pipe", "", 40)
	add("pipe", "via=address", 40)
	add("pipe", "via=serve", 60)
	add("unix", "", 50)
	for _, r := range repeatsOf(t, "unix", 1, 1, 1, 1, 1, 1) {
		r.Variant, r.Status, r.Reason = "via=address", bench.StatusSkipped, "the inherit case"
		r.Hist, r.Messages = "", 0
		rs = append(rs, r)
	}
	lines := PeerSourceCost(Summarize(rs))
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (pipe's two sources; unix by address was skipped): %v", len(lines), lines)
	}
	got := lines[0].String() + "\n" + lines[1].String()
	for _, want := range []string{
		"peer source: pingpong 64B: pipe[via=address] 40.0µs vs pipe 40.0µs p50 round trip: ~ (no significant difference",
		"peer source: pingpong 64B: pipe[via=serve] 60.0µs vs pipe 40.0µs p50 round trip: pipe[via=serve] 1.50× slower",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lines lack %q:\n%s", want, got)
		}
	}
	recs := &bench.Records{Header: bench.Header{Type: bench.KindHeader, Version: bench.RecordVersion}, Results: rs}
	for format, want := range map[string]string{"table": "peer source: pingpong 64B: pipe[via=serve] 60.0µs vs pipe", "markdown": "## What the peer's source costs"} {
		var b bytes.Buffer
		if err := Render(&b, format, recs); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("the %s report lacks %q", format, want)
		}
	}
}
