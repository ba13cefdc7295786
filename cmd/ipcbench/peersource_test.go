package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
)

// TestRunPeerSources runs -peer-source inherit,address,serve over pipe and
// tcp-localhost: the serve source starts this binary's serve command; every
// record names its source, the sources are variants ("via=address"), tcp
// by address is skipped as the inherit case, every other case is OK, and
// the summary ranks the sources side by side.
func TestRunPeerSources(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run.jsonl")
	code, stdout, stderr := runCLI(t, "", "run", "-t", "pipe,tcp-localhost", "-peer-source", "inherit,address,serve",
		"-w", "pingpong", "-s", "64", "-n", "40", "-warmup", "0", "-repeats", "2", "-network", "host", "-out", out)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	_, rs := readRecords(t, out)
	if len(rs) != 12 {
		t.Fatalf("%d records, want 12 (2 transports × 3 sources × 2 repeats)", len(rs))
	}
	for _, r := range rs {
		name := r.Transport + "[" + r.Variant + "]"
		want := ""
		if r.PeerSource != bench.SourceInherit {
			want = "via=" + r.PeerSource
		}
		if r.PeerSource == "" || r.Variant != want {
			t.Errorf("%s: source %q, variant %q, want %q", name, r.PeerSource, r.Variant, want)
		}
		switch {
		case r.Transport == "tcp-localhost" && r.PeerSource == bench.SourceAddress:
			if r.Status != bench.StatusSkipped || !strings.Contains(r.Reason, "via=inherit case") {
				t.Errorf("%s: %s (%s), want skipped as the inherit case", name, r.Status, r.Reason)
			}
		case r.Status != bench.StatusOK || r.Messages != 40:
			t.Errorf("%s: %s, %d messages (%s)", name, r.Status, r.Messages, r.Reason)
		}
	}
	for _, label := range []string{"pipe[via=address]", "pipe[via=serve]", "tcp-localhost[via=serve]"} {
		if !strings.Contains(stdout, label) {
			t.Errorf("the summary does not rank %s:\n%s", label, stdout)
		}
	}
}

// TestRunNothingMeasured: a run whose every case is skipped (unix by
// address, which is the inherit case) exits 1 saying nothing was measured and why, after
// the summary; its raw file is written whole, with the skipped records.
func TestRunNothingMeasured(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run.jsonl")
	code, stdout, stderr := runCLI(t, "", "run", "-t", "unix", "-peer-source", "address", "-network", "host",
		"-w", "pingpong", "-s", "64", "-n", "40", "-warmup", "0", "-repeats", "2", "-out", out)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	if !strings.Contains(stderr, "nothing was measured: all 2 case runs were skipped") || !strings.Contains(stderr, "is the via=inherit case") {
		t.Errorf("stderr does not say that nothing was measured and why:\n%s", stderr)
	}
	if !strings.Contains(stdout, "none ran") {
		t.Errorf("no summary on stdout:\n%s", stdout)
	}
	_, rs := readRecords(t, out)
	if len(rs) != 2 {
		t.Fatalf("%d records, want the 2 skipped ones", len(rs))
	}
	for _, r := range rs {
		if r.Status != bench.StatusSkipped {
			t.Errorf("%s: %s (%s), want skipped", r.Transport, r.Status, r.Reason)
		}
	}
}
