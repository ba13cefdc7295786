package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/floor"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

// TestFloorBadInput: every mistake is one line and exit status 2, before
// anything is built or measured.
func TestFloorBadInput(t *testing.T) {
	dir := t.TempDir()
	notFloor := filepath.Join(dir, "run.jsonl")
	if err := os.WriteFile(notFloor, []byte(`{"type":"header","version":1,"machine":{},"network":"host","options":{}}`+"\n"+`{"type":"result","workload":"pingpong"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"floor", "-repeats", "0"}, "repeats"},
		{[]string{"floor", "-n", "10"}, "round trips per pingpong"},
		{[]string{"floor", "-stream-bytes", "lots"}, "lots"},
		{[]string{"floor", "-stream-bytes", "1MiB"}, "1MiB per stream: want at least 4MiB"},
		{[]string{"floor", "-fanin-n", "3"}, "per connection"},
		{[]string{"floor", "-only", "("}, "-only"},
		{[]string{"floor", "-only", "^nothing$"}, "matches no pair"},
		{[]string{"floor", "extra"}, `"extra"`},
		{[]string{"floor", "-report", filepath.Join(dir, "missing.jsonl")}, "missing.jsonl"},
		{[]string{"floor", "-report", notFloor}, "ipcbench report"},
		{[]string{"floor", "-report", notFloor, "-raw", filepath.Join(dir, "x")}, "-raw"},
		// What shapes a measurement is refused with -report, not ignored
		// (with a file -report renders).
		{[]string{"floor", "-report", floorRaw, "-only", "^fanin/"}, "-only"},
		{[]string{"floor", "-report", floorRaw, "-n", "50000", "-repeats", "9"}, "-n, -repeats"},
		{[]string{"floor", "-report", floorRaw, "-stream-bytes", "8MiB"}, "-stream-bytes"},
		{[]string{"floor", "-report", floorRaw, "-fanin-n", "100"}, "-fanin-n"},
		{[]string{"floor", "-report", floorRaw, "-q"}, "-q"},
		{[]string{"floor", "-out", filepath.Join(dir, "same"), "-raw", filepath.Join(dir, "same")}, "both name"},
		{[]string{"floor", "-force", "-out", dir + "/./same", "-raw", filepath.Join(dir, "same")}, "both name"},
		{[]string{"floor", "-report", ""}, "-report: empty path"}, // not "measure for ten minutes"
		{[]string{"floor", "-out", ""}, "-out: empty path"},
	} {
		code, out, stderr := runCLI(t, "", c.args...)
		if code != exitUsage || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line naming %q", c.args, code, out, stderr, c.want)
		}
	}
}

// TestFloorRawAndReport measures three pairs briefly and checks that the
// raw file has a run header and a record per side, and that -report
// renders from it exactly the table the run printed and wrote.
func TestFloorRawAndReport(t *testing.T) {
	if _, err := floor.Compiler(); err != nil {
		t.Skipf("skipped: the floor needs a C compiler: %v", err)
	}
	dir := t.TempDir()
	raw, md := filepath.Join(dir, "floor.jsonl"), filepath.Join(dir, "out", "floor.md")
	args := []string{"floor", "-q", "-repeats", "1", "-n", "200", "-stream-bytes", "4MiB", "-fanin-n", "64",
		"-only", `^(pingpong/pipe/64B/1/unpinned|stream/unix/64KiB/1/unpinned|fanin/unix/1KiB/4/unpinned)$`, "-raw", raw, "-out", md}
	code, out, stderr := runCLI(t, "", args...)
	if code != exitOK {
		t.Fatalf("floor: exit %d: %s", code, stderr)
	}
	written, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if string(written) != out {
		t.Errorf("-out differs from what floor printed")
	}
	f, err := floor.Read(bytes.NewReader(mustRead(t, raw)), raw)
	if err != nil {
		t.Fatal(err)
	}
	h := f.Header
	if h.Type != bench.KindHeader || h.Version != bench.RecordVersion || !strings.HasPrefix(h.Tool, "ipcbench ") ||
		h.Machine["kernel"] == "" || h.Machine["go_version"] == "" || h.Options["repeats"] != "1" || h.Options["c_compiler"] == "" ||
		strings.Join(h.Command, " ") != "ipcbench "+strings.Join(args, " ") {
		hb, _ := json.Marshal(h)
		t.Errorf("header lacks the run's facts: %s", hb)
	}
	if len(f.Records) != 6 {
		t.Fatalf("%d records, want 6 (three pairs, two sides)", len(f.Records))
	}
	probed := 0
	for _, r := range f.Records {
		if r.Value <= 0 {
			t.Errorf("record %+v has no value", r)
		}
		// Unpinned on two CPUs or more, each side probes the line between
		// the first two; a probe gives up only when a CPU stays busy.
		if r.LineRTTNS < 0 || r.LineRTTNS >= int64(time.Second) {
			t.Errorf("record %+v: line round trip %d ns", r, r.LineRTTNS)
		}
		if r.LineRTTNS > 0 {
			probed++
			if r.LineRTTBeforeNS <= 0 || r.LineRTTAfterNS <= 0 || r.LineRTTNS != (r.LineRTTBeforeNS+r.LineRTTAfterNS)/2 {
				t.Errorf("record %+v: line round trip %d ns is not the mean of %d and %d", r, r.LineRTTNS, r.LineRTTBeforeNS, r.LineRTTAfterNS)
			}
		}
	}
	if allowed, err := sysinfo.Affinity(os.Getpid()); err == nil && len(allowed) >= 2 && probed == 0 {
		t.Errorf("no record carries a line round trip")
	}
	for _, want := range []string{"| pingpong | 64B | 1 | pipe | unpinned | pipe |", "| stream | 64KiB | 1 | unix | unpinned | unix -v |", "| fanin | 1KiB | 4 | unix | unpinned | unix |"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	code, again, stderr := runCLI(t, "", "floor", "-report", raw)
	if code != exitOK || again != out {
		t.Errorf("floor -report: exit %d (%s); the table differs from the run's:\n%s\n---\n%s", code, stderr, again, out)
	}
	code, fromStdin, _ := runCLI(t, string(mustRead(t, raw)), "floor", "-report", "-")
	if code != exitOK || fromStdin != out {
		t.Errorf("floor -report - : exit %d, table differs", code)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKilledByInterrupt: a child that SIGINT or SIGTERM ended is floor's
// interrupt (exit 130) even before this process's own signal arrives; a
// child that failed otherwise is not.
func TestKilledByInterrupt(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   bool
	}{
		{"kill -INT $$", true},
		{"kill -TERM $$", true},
		{"kill -KILL $$", false},
		{"exit 1", false},
	} {
		err := exec.Command("sh", "-c", tc.script).Run()
		if got := killedByInterrupt(fmt.Errorf("floor: compiling x.c: %w", err)); got != tc.want {
			t.Errorf("%q (%v): killedByInterrupt = %v, want %v", tc.script, err, got, tc.want)
		}
	}
}
