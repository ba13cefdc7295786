package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/report"
	"github.com/ipcbench/ipcbench/transports/all"
)

// TestChooseFrom answers from the committed reference records: the winner
// spec on the second line, the nearest size said, and the JSON answer
// machine-readable.
func TestChooseFrom(t *testing.T) {
	ref := filepath.Join("..", "..", "bench", "choose", "testdata", "records.jsonl") // fixed records with a measurement-only variant
	code, out, stderr := runCLI(t, "", "choose", "-w", "pingpong", "-s", "4k", "-from", ref)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 3 {
		t.Fatalf("answer:\n%s", out)
	}
	winner := strings.TrimSpace(lines[1])
	if _, err := all.Resolve(winner); err != nil {
		t.Errorf("second line %q is not a spec: %v\n%s", winner, err, out)
	}
	for _, want := range []string{"4KiB was not measured", "nearest measured size, 64KiB", "CPU/MSG", "measurement-only"} {
		if !strings.Contains(out, want) {
			t.Errorf("answer does not say %q:\n%s", want, out)
		}
	}
	code, out, stderr = runCLI(t, "", "choose", "-w", "stream", "-s", "64k", "-format", "json", "-from", ref)
	if code != exitOK {
		t.Fatalf("json: exit %d: %s", code, stderr)
	}
	var a struct {
		Winner     string
		Metric     string
		Candidates []struct {
			Spec        string
			Tied        bool
			Lo, Hi      *float64
			CPUPerMsgNS float64 `json:"cpu_per_msg_ns"`
		}
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("json answer: %v\n%s", err, out)
	}
	if a.Metric != report.MetricMBps || len(a.Candidates) < 2 || a.Candidates[0].Spec != a.Winner || a.Candidates[0].CPUPerMsgNS <= 0 || a.Candidates[0].Lo == nil {
		t.Errorf("json answer %+v", a)
	}
	if strings.Contains(a.Winner, "zerocopy=off") {
		t.Errorf("measurement-only winner %q", a.Winner)
	}
}

// TestChooseFromRefuses: with -from nothing is measured, so the flags that
// shape a calibration are refused rather than ignored, as is a -t that is
// not a list of transport specs, and an empty -from
// (an unset variable) is refused rather than read as "measure" (which ran
// a calibration and exited 0).
func TestChooseFromRefuses(t *testing.T) {
	ref := filepath.Join("..", "..", "bench", "choose", "testdata", "records.jsonl")
	for _, args := range [][]string{
		{"-t", "shm-ring[", "-from", ref},
		{"-budget", "5s", "-from", ref},
		{"-out", filepath.Join(t.TempDir(), "x.jsonl"), "-from", ref},
		{"-network", "host", "-from", ref},
		{"-from", ""},
	} {
		code, _, stderr := runCLI(t, "", append([]string{"choose", "-w", "pingpong", "-s", "64"}, args...)...)
		if code != exitUsage || !strings.Contains(stderr, "-"+strings.TrimPrefix(args[0], "-")) {
			t.Errorf("choose %q: exit %d, stderr %q; want exit %d naming %s", args, code, stderr, exitUsage, args[0])
		}
	}
}

// TestChooseMeasures runs a small calibration through the CLI.
func TestChooseMeasures(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "choose.jsonl")
	code, out, stderr := runCLI(t, "", "choose", "-w", "pingpong", "-s", "1k", "-t", "unix,shm-ring", "-budget", "2s", "-out", raw)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	winner := strings.TrimSpace(strings.Split(out, "\n")[1])
	if winner != "unix" && winner != "shm-ring" {
		t.Errorf("winner %q:\n%s", winner, out)
	}
	if !strings.Contains(out, "calibration:") || stderr != "" {
		t.Errorf("stdout:\n%s\nstderr (no progress off a terminal):\n%s", out, stderr)
	}
	run, err := bench.ReadRecordsFile(raw)
	if err != nil || len(run.Results) != 12 || run.Header.Command[1] != "choose" {
		t.Errorf("raw records: %v", err)
	}
}
