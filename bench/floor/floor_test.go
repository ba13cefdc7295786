package floor

import (
	"context"
	"errors"
	"testing"
)

func TestParseResult(t *testing.T) {
	out := []byte("INFO host=- cpuA=0\nRESULT pipe size=64 n=1000 mean_rtt_ns=5012.3 p50_ns=4900.0\n")
	r, err := ParseResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != "pipe" || r.Fields["size"] != "64" {
		t.Fatalf("parsed %+v", r)
	}
	if v, err := r.Float("p50_ns"); err != nil || v != 4900 {
		t.Fatalf("p50_ns = %v, %v", v, err)
	}
	if _, err := r.Float("p99_ns"); !errors.Is(err, ErrBadOutput) {
		t.Fatalf("missing field: %v", err)
	}
	for _, bad := range []string{"", "no result here\n", "RESULT\n", "RESULT pipe size\n", "RESULT pipe =3\n"} {
		if _, err := ParseResult([]byte(bad)); !errors.Is(err, ErrBadOutput) {
			t.Errorf("ParseResult(%q): %v, want ErrBadOutput", bad, err)
		}
	}
	r, _ = ParseResult([]byte("RESULT unix p50_ns=abc\n"))
	if _, err := r.Float("p50_ns"); !errors.Is(err, ErrBadOutput) {
		t.Errorf("non-numeric field: %v", err)
	}
}

// TestBuildAndRun compiles the programs and runs a short ping-pong and
// stream: skipped, saying so, where no C compiler exists.
func TestBuildAndRun(t *testing.T) {
	if _, err := Compiler(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	ctx := context.Background()
	p, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.PingPong(ctx, "pipe", 64, 500, Unpinned)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Float("p50_ns"); err != nil || v <= 0 {
		t.Fatalf("pipe p50 %v, %v (%s)", v, err, r.Line)
	}
	s, err := p.Stream(ctx, "unix", 65536, 64<<20, Unpinned)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Float("GBps"); err != nil || v <= 0 {
		t.Fatalf("unix stream %v GB/s, %v (%s)", v, err, s.Line)
	}
	if _, err := p.PingPong(ctx, "carrier-pigeon", 64, 10, Unpinned); !errors.Is(err, ErrUnknownMode) {
		t.Fatalf("unknown mode: %v", err)
	}
}
