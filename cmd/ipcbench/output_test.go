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

	"github.com/ipcbench/ipcbench/bench"
)

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
// -out, its default name, floor -out and -raw, plot's charts) refuses a
// symbolic link or an existing file planted at its name, with exit 2 and
// one line, before any work; -force replaces a regular file only.
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
		// directory: plant a link at every name of the next minute.
		cwd := t.TempDir()
		victim := filepath.Join(t.TempDir(), "victim")
		if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for s := range 60 {
			name := "ipcbench-" + now.Add(time.Duration(s)*time.Second).Format("20060102-150405") + ".jsonl"
			if err := os.Symlink(victim, filepath.Join(cwd, name)); err != nil {
				t.Fatal(err)
			}
		}
		code, stderr := runChild(t, cwd, tinyRun...)
		wantRefused(t, code, stderr, "-out")
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
	cmd, errb := startCLI(t, t.TempDir(), "floor", "-q", "-out", table, "-raw", meas)
	deadline := time.Now().Add(30 * time.Second)
	for !exists(table) || !exists(meas) {
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			t.Fatalf("floor did not create its outputs within 30s; stderr:\n%s", errb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	check(filepath.Join(dir, "floor"), bench.OutputDirMode)
	check(table, bench.OutputFileMode)
	check(meas, bench.OutputFileMode)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Errorf("interrupted floor: %v, want exit %d; stderr:\n%s", err, exitInterrupted, errb)
	}
	if exists(table) {
		t.Errorf("an interrupted floor left its empty table %s", table)
	}
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
