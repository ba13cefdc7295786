package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedResultsAreFresh regenerates every report in results/ from
// the committed raw records (reference.jsonl in three formats and its
// plots; floor*.jsonl for their floor tables; every other X.jsonl for its
// markdown report X.md), as `make results` does, and fails when a
// committed file differs, or when a committed raw file is not rendered
// here: the reports cited in docs must be exactly what the raw records say.
func TestCommittedResultsAreFresh(t *testing.T) {
	t.Chdir("../..") // reports name their source as `make results` does
	const dir = "results"
	raw := filepath.Join(dir, "reference.jsonl")
	if _, err := os.Stat(raw); err != nil {
		t.Fatalf("no reference run: %v", err)
	}
	reports := []struct{ raw, file, format string }{
		{raw, "reference.md", "markdown"},
		{raw, "reference.bench", "benchfmt"},
		{raw, "reference.csv", "csv"},
		{filepath.Join(dir, "veth.jsonl"), "veth.md", "markdown"},
		{filepath.Join(dir, "models.jsonl"), "models.md", "markdown"},
		{filepath.Join(dir, "peer-source.jsonl"), "peer-source.md", "markdown"},
		{filepath.Join(dir, "shm-fanin.jsonl"), "shm-fanin.md", "markdown"},
		{filepath.Join(dir, "shm-large.jsonl"), "shm-large.md", "markdown"},
		{filepath.Join(dir, "shm-wait.jsonl"), "shm-wait.md", "markdown"},
		{filepath.Join(dir, "shm-fanin-epyc.jsonl"), "shm-fanin-epyc.md", "markdown"},
		{filepath.Join(dir, "shm-fanin-nowait.jsonl"), "shm-fanin-nowait.md", "markdown"},
		{filepath.Join(dir, "shm-large-epyc.jsonl"), "shm-large-epyc.md", "markdown"},
		{filepath.Join(dir, "shm-wait-epyc.jsonl"), "shm-wait-epyc.md", "markdown"},
		{filepath.Join(dir, "http.jsonl"), "http.md", "markdown"},
		{filepath.Join(dir, "shm-hotlap-before.jsonl"), "shm-hotlap-before.md", "markdown"},
		{filepath.Join(dir, "shm-hotlap-after.jsonl"), "shm-hotlap-after.md", "markdown"},
		{filepath.Join(dir, "shm-lock-hotlap-before.jsonl"), "shm-lock-hotlap-before.md", "markdown"},
		{filepath.Join(dir, "shm-lock-hotlap-after.jsonl"), "shm-lock-hotlap-after.md", "markdown"},
		{filepath.Join(dir, "shm-lock-wait.jsonl"), "shm-lock-wait.md", "markdown"},
		{filepath.Join(dir, "shm-wait-lsl.jsonl"), "shm-wait-lsl.md", "markdown"},
		{filepath.Join(dir, "shm-fanin-phase.jsonl"), "shm-fanin-phase.md", "markdown"},
		{filepath.Join(dir, "shm-fanin-placement.jsonl"), "shm-fanin-placement.md", "markdown"},
		{filepath.Join(dir, "shm-poller-spin-before.jsonl"), "shm-poller-spin-before.md", "markdown"},
		{filepath.Join(dir, "shm-poller-spin-after.jsonl"), "shm-poller-spin-after.md", "markdown"},
		{filepath.Join(dir, "shm-fanin-spin.jsonl"), "shm-fanin-spin.md", "markdown"},
		{filepath.Join(dir, "shm-fanin-spin-check.jsonl"), "shm-fanin-spin-check.md", "markdown"},
	}
	floors := []string{"floor", "floor-stream", "floor-pipe-before", "floor-pipe-after", "floor-netpoll-before", "floor-netpoll-yield", "floor-epyc", "floor-stream-epyc-before", "floor-stream-epyc-after", "floor-nowait-before", "floor-nowait-after", "floor-nowait-before2", "floor-nowait-after2", "floor-epyc-nowait", "floor-epyc-lsl", "floor-epyc-line"}
	// Every committed raw file is checked: a new one without a line here
	// fails, instead of going unchecked.
	checked := map[string]bool{}
	for _, c := range reports {
		checked[c.raw] = true
	}
	for _, name := range floors {
		checked[filepath.Join(dir, name+".jsonl")] = true
	}
	all, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	for _, f := range all {
		if !checked[f] {
			t.Errorf("%s is not rendered here (nor, likely, by make results): add it to both", f)
		}
	}
	for _, c := range reports {
		code, out, stderr := runCLI(t, "", "report", "-format", c.format, c.raw)
		if code != exitOK {
			t.Fatalf("report -format %s: exit %d: %s", c.format, code, stderr)
		}
		want, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("results/%s is stale: run 'make results' and commit", c.file)
		}
	}
	for _, name := range floors {
		code, out, stderr := runCLI(t, "", "floor", "-report", filepath.Join(dir, name+".jsonl"))
		if code != exitOK {
			t.Fatalf("floor -report %s.jsonl: exit %d: %s", name, code, stderr)
		}
		if want, err := os.ReadFile(filepath.Join(dir, name+".md")); err != nil || out != string(want) {
			t.Errorf("results/%s.md is stale or missing (%v): run 'make results' and commit", name, err)
		}
	}
	plots := t.TempDir()
	code, out, stderr := runCLI(t, "", "plot", "-out", plots, raw)
	if code != exitOK {
		t.Fatalf("plot: exit %d: %s", code, stderr)
	}
	fresh, _ := filepath.Glob(filepath.Join(plots, "*.svg"))
	committed, _ := filepath.Glob(filepath.Join(dir, "plots", "*.svg"))
	if len(fresh) == 0 || len(fresh) != len(committed) {
		t.Fatalf("plot wrote %d SVGs (%s), results/plots has %d", len(fresh), out, len(committed))
	}
	for _, f := range fresh {
		got, _ := os.ReadFile(f)
		want, err := os.ReadFile(filepath.Join(dir, "plots", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("results/plots/%s is stale or missing: run 'make results' and commit", filepath.Base(f))
		}
	}
}
