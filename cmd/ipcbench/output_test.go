package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/bench"
)

// floorRaw is a raw file of floor's, committed.
const floorRaw = "../../results/floor.jsonl"

// tinyRun is the smallest run that writes raw records.
var tinyRun = []string{"run", "-q", "-t", "pipe", "-w", "pingpong", "-s", "64", "-n", "20", "-warmup", "1ms", "-repeats", "1"}

// withArgs returns a copy of a with more appended.
func withArgs(a []string, more ...string) []string {
	return append(append([]string(nil), a...), more...)
}

// plantVictim makes a file that must survive every test below, and a
// symbolic link to it at link.
func plantVictim(t *testing.T, link string) (victim string) {
	t.Helper()
	victim = filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	return victim
}

func checkVictim(t *testing.T, victim string) {
	t.Helper()
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Errorf("the link's target was written: %.40q %v", b, err)
	}
}

// wantRefused checks a refused output: exit 2, one line naming the flag.
func wantRefused(t *testing.T, code int, stderr, flag string) {
	t.Helper()
	if code != exitUsage {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, flag) {
		t.Errorf("want one line naming %s, got:\n%s", flag, stderr)
	}
}

// TestOutputNeverFollowsPlantedNames: every output the tool creates (run
// -out, floor -out and -raw, plot's charts) refuses a symbolic link or an
// existing file planted at its name, with exit 2 and one line, before any
// work; -force replaces a regular file only. Run's default name, made up,
// passes over them to the next free name instead.
func TestOutputNeverFollowsPlantedNames(t *testing.T) {
	dir := t.TempDir()
	t.Run("run -out symlink", func(t *testing.T) {
		link := filepath.Join(dir, "run.jsonl")
		victim := plantVictim(t, link)
		code, _, stderr := runCLI(t, "", withArgs(tinyRun, "-out", link)...)
		wantRefused(t, code, stderr, "-out")
		code, _, stderr = runCLI(t, "", withArgs(tinyRun, "-force", "-out", link)...)
		wantRefused(t, code, stderr, "-out")
		checkVictim(t, victim)
	})
	t.Run("run -out existing file", func(t *testing.T) {
		p := filepath.Join(dir, "old.jsonl")
		if err := os.WriteFile(p, []byte("old records\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runCLI(t, "", withArgs(tinyRun, "-out", p)...)
		wantRefused(t, code, stderr, "-force")
		if code, _, stderr := runCLI(t, "", withArgs(tinyRun, "-force", "-out", p)...); code != exitOK {
			t.Fatalf("-force: exit %d: %s", code, stderr)
		}
		if b, _ := os.ReadFile(p); !strings.HasPrefix(string(b), `{"type":"header"`) {
			t.Errorf("-force did not replace the file: %.40q", b)
		}
	})
	t.Run("run default name", func(t *testing.T) {
		// The default name is ipcbench-<time>.jsonl in the working
		// directory: plant a link at every name of the next minute, and
		// the records of another run of that second at its -2 name. The
		// run follows neither, replaces neither, and is not refused: it
		// takes the -3 name, and says so.
		cwd := t.TempDir()
		victim := filepath.Join(t.TempDir(), "victim")
		if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for s := range 60 {
			name := "ipcbench-" + now.Add(time.Duration(s)*time.Second).Format("20060102-150405")
			if err := os.Symlink(victim, filepath.Join(cwd, name+".jsonl")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cwd, name+"-2.jsonl"), []byte("another run's records\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		code, stderr := runChild(t, cwd, tinyRun...)
		if code != exitOK {
			t.Fatalf("exit %d, want 0 (a made-up name is never refused); stderr:\n%s", code, stderr)
		}
		got, _ := filepath.Glob(filepath.Join(cwd, "ipcbench-*-3.jsonl"))
		if len(got) != 1 || !strings.Contains(stderr, "raw records: "+filepath.Base(got[0])+"\n") {
			t.Fatalf("records under %v; stderr:\n%s\nwant one ipcbench-<time>-3.jsonl, named on stderr", got, stderr)
		}
		if st, err := os.Lstat(got[0]); err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: %v, %v; want a regular file", got[0], st, err)
		}
		if b, _ := os.ReadFile(got[0]); !strings.HasPrefix(string(b), `{"type":"header"`) {
			t.Errorf("%s holds %.40q, not the records", got[0], b)
		}
		others, _ := filepath.Glob(filepath.Join(cwd, "ipcbench-*-2.jsonl"))
		for _, o := range others {
			if b, err := os.ReadFile(o); err != nil || string(b) != "another run's records\n" {
				t.Errorf("%s: %.40q, %v: another run's records were replaced", o, b, err)
			}
		}
		checkVictim(t, victim)
	})
	t.Run("floor outputs", func(t *testing.T) {
		for _, flag := range []string{"-out", "-raw"} {
			link := filepath.Join(dir, "floor"+flag)
			victim := plantVictim(t, link)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var out, errb strings.Builder
			code := run(ctx, []string{"floor", "-q", flag, link}, strings.NewReader(""), &out, &errb)
			cancel()
			if !strings.Contains(errb.String(), "skipped") { // no C compiler: nothing is created
				wantRefused(t, code, errb.String(), flag)
			}
			checkVictim(t, victim)
		}
	})
	t.Run("plot charts", func(t *testing.T) {
		raw := filepath.Join(dir, "for-plot.jsonl")
		if code, _, stderr := runCLI(t, "", withArgs(tinyRun, "-out", raw)...); code != exitOK {
			t.Fatalf("run: exit %d: %s", code, stderr)
		}
		plots := filepath.Join(dir, "plots")
		if err := os.Mkdir(plots, 0o700); err != nil {
			t.Fatal(err)
		}
		victim := plantVictim(t, filepath.Join(plots, "pingpong-p50-vs-size-unpinned.svg"))
		code, _, stderr := runCLI(t, "", "plot", "-out", plots, raw)
		wantRefused(t, code, stderr, "-force")
		code, _, stderr = runCLI(t, "", "plot", "-force", "-out", plots, raw)
		wantRefused(t, code, stderr, "-out")
		if strings.Contains(stderr, "-force replaces") {
			t.Errorf("with -force given, the refusal of a symlink still points at -force: %s", stderr)
		}
		checkVictim(t, victim)
		if ents, _ := os.ReadDir(plots); len(ents) != 1 {
			t.Errorf("plot wrote charts beside the refused name: %v", ents)
		}
	})
}

// TestOutputModes checks the mode of every file and directory the
// commands create for their outputs (the README's rule: bench.OutputFileMode
// and bench.OutputDirMode, exactly under an umask of 0): run -out and the
// directories made for it, plot's directories and charts, floor's -out and
// -raw and their directory (looked at while floor runs, then interrupted).
// The transports' own files (a unix socket and its directory, a
// shared-memory mapping) are checked by the conformance suite's
// private-endpoint test.
func TestOutputModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	check := func(p string, want fs.FileMode) {
		t.Helper()
		st, err := os.Lstat(p)
		if err != nil {
			t.Error(err)
			return
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	raw := filepath.Join(dir, "new", "sub", "run.jsonl")
	if code, _, stderr := runCLI(t, "", withArgs(tinyRun, "-out", raw)...); code != exitOK {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	check(filepath.Join(dir, "new"), bench.OutputDirMode)
	check(filepath.Join(dir, "new", "sub"), bench.OutputDirMode)
	check(raw, bench.OutputFileMode)

	plots := filepath.Join(dir, "plots", "svg")
	code, out, stderr := runCLI(t, "", "plot", "-out", plots, raw)
	if code != exitOK {
		t.Fatalf("plot: exit %d: %s", code, stderr)
	}
	check(filepath.Join(dir, "plots"), bench.OutputDirMode)
	check(plots, bench.OutputDirMode)
	for _, p := range strings.Fields(out) {
		check(p, bench.OutputFileMode)
	}

	if _, err := exec.LookPath("cc"); err != nil {
		t.Logf("floor not checked: no C compiler")
		return
	}
	table, meas := filepath.Join(dir, "floor", "t.md"), filepath.Join(dir, "floor", "r.jsonl")
	errb := interruptFloor(t, func(p string) { check(p, bench.OutputFileMode) }, "-out", table, "-raw", meas)
	check(filepath.Join(dir, "floor"), bench.OutputDirMode)
	check(meas, bench.OutputFileMode)
	if exists(table) {
		t.Errorf("an interrupted floor left its empty table %s", table)
	}
	if left := append(partials(t, table), partials(t, meas)...); len(left) > 0 {
		t.Errorf("an interrupted floor left %v; stderr:\n%s", left, errb)
	}
}

// TestForceKeepsTheOldFile: -force replaces an existing output only with a
// complete new one. A command that fails (floor -report of a garbage file)
// or is interrupted (floor's -out and -raw while it measures) leaves the
// file as it was and nothing beside it but the raw records measured so
// far, which it names; a command that succeeds replaces it. run -out is
// checked by TestInterruptDuringPeerStart, serve -summary by
// TestServeSummaryFile.
func TestForceKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	plant := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	intact := func(p string) {
		t.Helper()
		if b, err := os.ReadFile(p); err != nil || string(b) != "precious" {
			t.Errorf("%s holds %.40q (%v), want it as it was", p, b, err)
		}
	}
	keep := filepath.Join(dir, "keep.md")
	plant(keep)
	garbage := filepath.Join(dir, "garbage.jsonl")
	if err := os.WriteFile(garbage, []byte("this is not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "", "floor", "-report", garbage, "-out", keep, "-force")
	if code != exitUsage {
		t.Errorf("floor -report of garbage: exit %d: %s", code, stderr)
	}
	intact(keep)
	if left := partials(t, keep); len(left) > 0 {
		t.Errorf("a failed floor -report left %v", left)
	}
	code, table, stderr := runCLI(t, "", "floor", "-report", floorRaw, "-out", keep, "-force")
	if b, _ := os.ReadFile(keep); code != exitOK || string(b) != table || table == "" {
		t.Errorf("floor -report -force: exit %d (%s); %s holds %.40q, want the table printed", code, stderr, keep, b)
	}

	if _, err := exec.LookPath("cc"); err != nil {
		t.Logf("floor's measuring not checked: no C compiler")
		return
	}
	tbl, raw := filepath.Join(dir, "floor.md"), filepath.Join(dir, "floor.jsonl")
	plant(tbl)
	plant(raw)
	errb := interruptFloor(t, nil, "-force", "-out", tbl, "-raw", raw)
	intact(tbl)
	intact(raw)
	if left := partials(t, tbl); len(left) > 0 {
		t.Errorf("an interrupted floor left its table's %v", left)
	}
	if kept := onlyPartial(t, raw); kept == "" || !strings.Contains(errb, "records so far are in "+kept) {
		t.Errorf("the records measured so far: %q, not named on stderr:\n%s", kept, errb)
	}
}

// TestOutputLongName: an output named as long as the file system allows
// (255 bytes on Linux) is written and takes its name (floor -report's
// -out; run's check of -out lets it through to the network's), though
// its partial name could not hold all of it; one byte more is refused
// with exit 2 and one line naming the flag, by run before anything starts
// and by floor, and nothing is left in the directory.
func TestOutputLongName(t *testing.T) {
	dir := t.TempDir()
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, strings.Repeat("t", int(sfs.Namelen)))
	code, _, stderr := runCLI(t, "", "run", "-network", "bogus", "-out", p)
	wantRefused(t, code, stderr, "-network")
	code, table, stderr := runCLI(t, "", "floor", "-report", floorRaw, "-out", p)
	if b, _ := os.ReadFile(p); code != exitOK || string(b) != table || table == "" {
		t.Errorf("floor -report -out of a %d-byte name: exit %d (%s); it holds %.40q, want the table printed", len(filepath.Base(p)), code, stderr, b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%s holds %v, want only the table", dir, ents)
	}
	os.Remove(p)

	long := p + "t"
	for _, args := range [][]string{
		{"run", "-network", "bogus", "-out", long},
		{"floor", "-report", floorRaw, "-out", long},
	} {
		code, _, stderr := runCLI(t, "", args...)
		wantRefused(t, code, stderr, "-out")
		if !strings.Contains(stderr, syscall.ENAMETOOLONG.Error()) {
			t.Errorf("%s -out of a %d-byte name: %s, want it called too long", args[0], len(filepath.Base(long)), stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("refused names left %v", ents)
	}
}

// interruptFloor starts floor with args (outputs among them), waits until
// it writes its -out and -raw files, and its raw header (the C programs
// are built), calls whileRunning (when not nil) with the name each is
// written to, interrupts it with SIGINT, checks that it exits 130, and
// returns its stderr.
func interruptFloor(t *testing.T, whileRunning func(partial string), args ...string) string {
	t.Helper()
	var outs []string
	raw := ""
	for i, a := range args {
		switch a {
		case "-raw":
			raw = args[i+1]
			fallthrough
		case "-out":
			outs = append(outs, args[i+1])
		}
	}
	cmd, errb := startCLI(t, t.TempDir(), append([]string{"floor", "-q"}, args...)...)
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range outs {
		for {
			if part := onlyPartial(t, p); part != "" {
				if st, err := os.Stat(part); p != raw || err == nil && st.Size() > 0 {
					break
				}
			}
			if time.Now().After(deadline) {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				cmd.Wait()
				t.Fatalf("floor did not start its outputs within 60s; stderr:\n%s", errb)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if whileRunning != nil {
			whileRunning(onlyPartial(t, p))
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Errorf("interrupted floor: %v, want exit %d; stderr:\n%s", err, exitInterrupted, errb)
	}
	return errb.String()
}

// partials returns the files an output to p is written to before it
// takes its name (bench.PartialSuffix).
func partials(t *testing.T, p string) []string {
	t.Helper()
	m, err := filepath.Glob(p + bench.PartialSuffix + "*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// onlyPartial returns the one file the output to p is written to, or ""
// while there is none; more than one fails the test.
func onlyPartial(t *testing.T, p string) string {
	t.Helper()
	switch m := partials(t, p); len(m) {
	case 0:
		return ""
	case 1:
		return m[0]
	default:
		t.Fatalf("more than one output being written to %s: %v", p, m)
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// runChild runs the test binary as `ipcbench args...` in directory dir
// and returns its exit code and stderr.
func runChild(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), envAsCLI+"=1")
	var errb strings.Builder
	cmd.Stderr = &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), errb.String()
}

// TestRunOutStdoutSummaryNamesIt: with -out - the summary, on stderr,
// says the raw records went to standard output, not to a file named -.
func TestRunOutStdoutSummaryNamesIt(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "run", "-network", "host", "-t", "unix", "-w", "pingpong", "-s", "64", "-n", "20", "-warmup", "0", "-repeats", "1", "-out", "-")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "{") {
		t.Errorf("stdout does not start with the raw records: %.200q", stdout)
	}
	if !strings.Contains(stderr, "raw records: standard output\n") || strings.Contains(stderr, "raw records: -") {
		t.Errorf("the summary on stderr does not name standard output:\n%s", stderr)
	}
}
