package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/internal/testpeer"
	"github.com/ipcbench/ipcbench/transports/all"
)

// envAsCLI makes the test binary behave as the ipcbench command (see
// TestMain), so tests can run the real CLI as a separate process tree.
const envAsCLI = "IPCBENCH_TEST_AS_CLI"

// startCLI starts the test binary as `ipcbench args...` with its own
// temporary directory and outside this test's network namespace marker,
// so a run re-executes itself into a namespace of its own exactly as it
// does on a user's machine: the tree is outer → inner → peer.
func startCLI(t *testing.T, tmp string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd, stderr := newCLI(t, tmp, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stderr
}

// newCLI prepares what startCLI starts, for a caller that sets more (its
// standard input) before calling Start; the process is killed and reaped
// at the end of the test if it is still running.
func newCLI(t *testing.T, tmp string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	env := []string{envAsCLI + "=1", "TMPDIR=" + tmp}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != netns.EnvMarker && k != "TMPDIR" && k != envAsCLI {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stderr
}

// gone reports whether pid has exited (a zombie has exited: only its
// exit status waits to be collected by whoever inherited it).
func gone(pid int) bool {
	s, _ := testpeer.State(pid)
	return s == 0 || s == 'Z'
}

// listDir returns the names in dir (nil when it does not exist).
func listDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestFaultBenchKilled kills `ipcbench run` with SIGKILL in the middle of
// a case over each transport: its namespace child and the peer must exit
// (the promise is 2 s; the time is logged), and nothing may be left:
//   - the peer and the namespace child are started with Pdeathsig=SIGKILL,
//     so the kernel ends them when their parent dies;
//   - shm-lock maps a memfd (no name anywhere), and its mapping=file
//     variant unlinks the file as soon as it is open;
//   - tcp and pipe leave nothing on a filesystem;
//   - a unix socket directory does outlive the killed run: the next run's
//     Listen removes the directories of dead processes, which the test
//     checks by running one.
func TestFaultBenchKilled(t *testing.T) {
	trials := 1
	if os.Getenv("IPCBENCH_STRESS") != "" {
		trials = 10
	}
	shmBefore := listDir(t, "/dev/shm")
	var worst time.Duration
	for _, tr := range all.List() {
		variants := []string{tr.Name()}
		if tr.Name() == "shm-lock" {
			variants = append(variants, "shm-lock[mapping=file]")
		}
		for _, v := range variants {
			t.Run(v, func(t *testing.T) {
				for trial := range trials {
					took := killBenchOnce(t, v, trial)
					worst = max(worst, took)
				}
			})
		}
	}
	// A name that lasts: another test binary's shm-lock[mapping=file]
	// may have one there for a moment (it unlinks it once open).
	gained := func() []string {
		var g []string
		for _, n := range listDir(t, "/dev/shm") {
			if !slices.Contains(shmBefore, n) {
				g = append(g, n)
			}
		}
		return g
	}
	if g := gained(); len(g) > 0 {
		time.Sleep(time.Second)
		if g := gained(); len(g) > 0 {
			t.Errorf("/dev/shm gained files: %v", g)
		}
	}
	t.Logf("slowest exit of the peer after the bench process was killed: %v", worst)
}

func killBenchOnce(t *testing.T, variant string, trial int) time.Duration {
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	cmd, stderr := startCLI(t, tmp, "run", "-t", variant, "-w", "stream,pingpong", "-s", "64k", "-d", "30s", "-warmup", "0", "-repeats", "1", "-q", "-out", out)
	outer := cmd.Process.Pid

	// Wait for the tree outer → inner → peer, then let the case run.
	var inner, peer int
	deadline := time.Now().Add(30 * time.Second)
	for peer == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no peer process after 30 s; stderr: %s", stderr)
		}
		if cmd.ProcessState != nil || gone(outer) {
			t.Fatalf("ipcbench exited early; stderr: %s", stderr)
		}
		for _, c := range testpeer.Children(outer) {
			inner = c
			if ps := testpeer.Children(c); len(ps) > 0 {
				peer = ps[0]
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Duration(100+50*trial) * time.Millisecond)
	// On a loaded machine a child seen in the scan can be gone by now (a
	// process that lived for microseconds, with no command line left to
	// read): take the inner process's child as it is now.
	if ps := testpeer.Children(inner); len(ps) != 1 || ps[0] != peer {
		t.Logf("trial %d: the inner process's children changed from [%d] to %v", trial, peer, ps)
		if len(ps) != 1 {
			raw, _ := os.ReadFile(out)
			t.Fatalf("no single peer to kill (children %v); stderr: %s; raw records so far:\n%s", ps, stderr, raw)
		}
		peer = ps[0]
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	cmd.Wait()
	for !gone(inner) || !gone(peer) {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("10 s after SIGKILL of ipcbench %d: namespace child %d gone=%v, peer %d gone=%v", outer, inner, gone(inner), peer, gone(peer))
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("trial %d: inner %d and peer %d gone %v after the kill", trial, inner, peer, took)
	left := listDir(t, tmp)
	if len(left) == 0 {
		return took
	}
	// Only a unix socket directory may outlive a killed run (a path on a
	// filesystem has no owner the kernel could clean up after); the next
	// run's Listen must remove it.
	slices.Sort(left)
	for _, name := range left {
		if !strings.HasPrefix(name, "ipcbench-unix-") {
			t.Fatalf("left in TMPDIR after the kill: %v", left)
		}
	}
	next, nextErr := startCLI(t, tmp, "run", "-t", "unix", "-w", "pingpong", "-s", "64", "-n", "20", "-warmup", "0", "-repeats", "1", "-q", "-out", out+".next")
	if err := next.Wait(); err != nil {
		t.Fatalf("the next run: %v; stderr: %s", err, nextErr)
	}
	if still := listDir(t, tmp); len(still) > 0 {
		t.Fatalf("left in TMPDIR after the kill %v, and still there after the next run: %v", left, still)
	}
	t.Logf("trial %d: the killed run left %v; the next run removed it", trial, left)
	return took
}

// TestInterruptDuringPeerStart interrupts `ipcbench run` (its context,
// as SIGINT does) while a peer hangs before its handshake: the run must
// exit 130, whatever the start's error says (in a run whose only case was
// starting, no peer ever started), with the summary of what it recorded
// and the raw records in place.
func TestInterruptDuringPeerStart(t *testing.T) {
	for _, tt := range []struct {
		name   string
		sizes  string // one case per size
		starts int    // peers that start normally before one hangs
		force  bool   // -out names an existing file, replaced with -force
	}{
		{"the only case", "64", 0, false},
		{"second case", "64,1k", 1, false},
		{"second case, -force over a file", "64,1k", 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			script := make([]testpeer.Action, tt.starts, tt.starts+1)
			for i := range script {
				script[i] = testpeer.Start
			}
			dir := t.TempDir()
			if err := testpeer.Script(dir, append(script, testpeer.Hang)...); err != nil {
				t.Fatal(err)
			}
			t.Setenv(testpeer.Env, dir)
			out := filepath.Join(t.TempDir(), "run.jsonl")
			args := []string{"run", "-network", "host", "-t", "unix", "-w", "pingpong", "-s", tt.sizes,
				"-n", "20", "-warmup", "0", "-repeats", "1", "-out", out}
			if tt.force {
				if err := os.WriteFile(out, []byte("precious"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-force")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr bytes.Buffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, args, strings.NewReader(""), &stdout, &stderr)
			}()
			// Wait for the hanging peer: a child of this process once the
			// cases before it have recorded their results.
			deadline := time.Now().Add(30 * time.Second)
			for {
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("no hanging peer after 30 s; stderr: %s", stderr.String())
				}
				// The records are written beside -out until the run ends.
				if b, _ := os.ReadFile(onlyPartial(t, out)); bytes.Count(b, []byte("\n")) == 1+tt.starts && len(testpeer.Children(os.Getpid())) > 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			cancel()
			var code int
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("run did not return within 30 s of the interrupt")
			}
			if code != exitInterrupted {
				t.Errorf("exit code %d, want %d; stderr: %s", code, exitInterrupted, stderr.String())
			}
			// A new name gets the records so far; a file -force would
			// have replaced stays whole, and they stay beside it.
			recsPath := out
			if tt.force {
				if b, err := os.ReadFile(out); err != nil || string(b) != "precious" {
					t.Errorf("the interrupted run with -force changed %s: %q, %v", out, b, err)
				}
				recsPath = onlyPartial(t, out)
			} else if left := partials(t, out); len(left) > 0 {
				t.Errorf("left beside the records: %v", left)
			}
			if !strings.Contains(stderr.String(), "raw records: "+recsPath) {
				t.Errorf("stderr does not name the raw records %s: %s", recsPath, stderr.String())
			}
			if !strings.Contains(stdout.String(), "raw records: "+recsPath) {
				t.Errorf("no summary on stdout:\n%s", stdout.String())
			}
			if tt.starts > 0 && !strings.Contains(stdout.String(), "pingpong 64B") {
				t.Errorf("the summary lacks the case measured before the interrupt:\n%s", stdout.String())
			}
			recs, err := bench.ReadRecordsFile(recsPath)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs.Results) < tt.starts || tt.starts > 0 && recs.Results[0].Status != bench.StatusOK {
				t.Errorf("records %+v, want the %d case(s) before the interrupt OK", recs.Results, tt.starts)
			}
			if n := len(recs.Results); n > tt.starts {
				if last := recs.Results[n-1]; last.Status != bench.StatusFailed || !strings.HasPrefix(last.Reason, bench.InterruptedReason) {
					t.Errorf("the case the interrupt stopped: status %s, reason %q; want failed and %q first", last.Status, last.Reason, bench.InterruptedReason)
				}
			}
		})
	}
}

// TestInterruptWhileReachingServer: an interrupt while run -connect waits
// for the server's answer (a listener that takes the connect and never
// answers) exits 130, as an interrupt at any other moment does, not 2.
func TestInterruptWhileReachingServer(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", addr) // never accepted from
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "-t", "unix", "-connect", addr, "-w", "pingpong", "-q", "-out", "-"}, strings.NewReader(""), &stdout, &stderr)
	}()
	// The probe's connect is queued at once; the interrupt comes while it
	// waits for the hello's answer (HelloTimeout, 5 s, is far off), or, on
	// a slow machine, before it connects: either is "reaching the server".
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != exitInterrupted || !strings.Contains(stderr.String(), "interrupted while reaching the server at "+addr) {
			t.Errorf("exit %d, stderr %q; want %d, saying it was interrupted while reaching the server", code, stderr.String(), exitInterrupted)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not end after its context was cancelled")
	}
}

// TestFaultInnerKilled kills (SIGKILL, as the kernel's out-of-memory
// killer would) the process that measures inside the private network
// namespace, mid-case: the outer `ipcbench run`, which the kill left
// alive, exits 128+9 saying what happened and where the records written
// until then are, which the killed process could not say itself.
func TestFaultInnerKilled(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	cmd, stderr := startCLI(t, tmp, "run", "-t", "unix", "-w", "pingpong", "-s", "64", "-d", "30s", "-warmup", "0", "-repeats", "1", "-q", "-out", out)
	outer := cmd.Process.Pid
	var inner int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no peer process after 30 s; stderr: %s", stderr)
		}
		if gone(outer) {
			t.Fatalf("ipcbench exited early; stderr: %s", stderr)
		}
		if cs := testpeer.Children(outer); len(cs) == 1 && len(testpeer.Children(cs[0])) > 0 {
			inner = cs[0] // measuring: its peer is up
			break
		}
	}
	if err := syscall.Kill(inner, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+9 {
		t.Fatalf("run: %v, want exit %d; stderr: %s", err, 128+9, stderr)
	}
	partials, _ := filepath.Glob(out + bench.PartialSuffix + "*")
	if len(partials) != 1 {
		t.Fatalf("partial records %v, want one; stderr: %s", partials, stderr)
	}
	t.Logf("stderr: %s", stderr)
	for _, want := range []string{"killed by signal 9", partials[0]} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
}

// TestRunStdoutGone: a run whose standard output is a pipe nobody reads
// any more exits 141, as any filter killed by SIGPIPE does, saying
// nothing of a killed process (the one inside the network namespace was
// killed by that SIGPIPE, which is no news to its user), and having named
// its raw file on stderr.
func TestRunStdoutGone(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	cmd, stderr := newCLI(t, tmp, "run", "-t", "unix", "-w", "pingpong", "-s", "64", "-n", "20", "-warmup", "0", "-repeats", "1", "-out", out)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before the first write
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 141 {
		t.Fatalf("run: %v, want exit 141; stderr: %s", err, stderr)
	}
	if strings.Contains(stderr.String(), "killed by signal") {
		t.Errorf("stderr reports a killed process for a closed pipe:\n%s", stderr)
	}
	// The file's name is said before the summary's write meets the pipe.
	if !strings.Contains(stderr.String(), "raw records: "+out) {
		t.Errorf("stderr does not name the raw file:\n%s", stderr)
	}
}
