package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEndlessInput: `ipcbench report /dev/zero` (no newline, ever) fails
// with exit 2 and one line naming the line limit, instead of reading until
// memory runs out.
func TestEndlessInput(t *testing.T) {
	for _, args := range [][]string{{"report", "/dev/zero"}, {"compare", "/dev/zero", "/dev/zero"}, {"plot", "-out", t.TempDir(), "/dev/zero"}} {
		code, _, stderr := runCLI(t, "", args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, stderr)
		}
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, "at most 4 MiB") {
			t.Errorf("%v: want one line naming the limit, got:\n%s", args, stderr)
		}
	}
}

// TestSignalWhileReadingStdin starts report, plot, compare and floor
// -report as real processes reading standard input from a pipe that stays
// open and silent (`sleep 30 | ipcbench report -`), signals them, and
// wants exit 130 at once, not when the input closes.
func TestSignalWhileReadingStdin(t *testing.T) {
	other := filepath.Join(t.TempDir(), "other.jsonl")
	for _, c := range []struct {
		sig  syscall.Signal
		args []string
	}{
		{syscall.SIGINT, []string{"report", "-"}},
		{syscall.SIGTERM, []string{"report", "-format", "csv", "-"}},
		{syscall.SIGINT, []string{"plot", "-out", t.TempDir(), "-"}},
		{syscall.SIGTERM, []string{"compare", "-", other}},
		{syscall.SIGINT, []string{"floor", "-report", "-"}},
	} {
		t.Run(c.sig.String()+" "+c.args[0], func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			cmd, errb := newCLI(t, t.TempDir(), c.args...)
			cmd.Stdin = r
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r.Close()
			for deadline := time.Now().Add(time.Minute); !readingStdin(cmd.Process.Pid); {
				if time.Now().After(deadline) {
					t.Fatalf("the process never blocked reading its standard input")
				}
				time.Sleep(time.Millisecond)
			}
			cmd.Process.Signal(c.sig)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var err2 error
			select {
			case err2 = <-exited:
			case <-time.After(10 * time.Second):
				w.Close() // end the input: the process can end now
				err2 = <-exited
				t.Errorf("still running 10s after %v (ended only when its input closed)", c.sig)
			}
			var ee *exec.ExitError
			if !errors.As(err2, &ee) || ee.ExitCode() != exitInterrupted {
				t.Errorf("exit %v, want %d; stderr:\n%s", err2, exitInterrupted, errb)
			}
			if lines := strings.Split(strings.TrimSpace(errb.String()), "\n"); len(lines) != 1 || !strings.Contains(errb.String(), "interrupted") {
				t.Errorf("want one line saying it was interrupted, got:\n%s", errb)
			}
		})
	}
}

// readingStdin reports whether a thread of process pid is blocked in
// read(2) of descriptor 0 (/proc/PID/task/TID/syscall: the call's number,
// then its arguments).
func readingStdin(pid int) bool {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/syscall")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		if fs := strings.Fields(string(b)); len(fs) > 1 && fs[0] == strconv.Itoa(unix.SYS_READ) && fs[1] == "0x0" {
			return true
		}
	}
	return false
}
