package floor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopBound is how long a floor run may take to return once stopped: far
// more than it needs, only to tell a return from a hang.
const stopBound = 20 * time.Second

// proc is a running process of a test's floor programs.
type proc struct{ pid, ppid int }

// procsIn lists the live processes whose executable is in dir (a zombie
// has none and is not listed: it runs no more).
func procsIn(t *testing.T, dir string) []proc {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var ps []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || filepath.Dir(exe) != dir {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ps = append(ps, proc{pid, ppid})
	}
	return ps
}

// runningPair waits until a program of dir runs with its forked child and
// returns both pids.
func runningPair(t *testing.T, dir string) (parent, child int) {
	t.Helper()
	for deadline := time.Now().Add(stopBound); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ps := procsIn(t, dir)
		for _, c := range ps {
			for _, p := range ps {
				if c.ppid == p.pid {
					return p.pid, c.pid
				}
			}
		}
	}
	t.Fatalf("no floor program with its child started within %v", stopBound)
	return 0, 0
}

// killLeftovers kills, by pid, what is left of a test's programs.
func killLeftovers(t *testing.T, dir string) {
	for _, p := range procsIn(t, dir) {
		t.Errorf("process %d (parent %d) of %s is still running; killing it", p.pid, p.ppid, dir)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// TestStopLeavesNoProcess stops shared-memory runs that would go on for a
// long time, by cancelling the context and by killing the C parent: the
// run must return (with an error) instead of waiting on pipes the forked
// child holds, and the child must not live on, spinning, as an orphan.
func TestStopLeavesNoProcess(t *testing.T) {
	p := build(t)
	for _, c := range []struct {
		name string
		run  func(ctx context.Context) (Result, error)
	}{
		{"pingpong spin", func(ctx context.Context) (Result, error) {
			return p.PingPong(ctx, "spin", 64, 1_000_000_000, Unpinned)
		}},
		{"pingpong futex", func(ctx context.Context) (Result, error) {
			return p.PingPong(ctx, "futex", 64, 1_000_000_000, Unpinned)
		}},
		{"stream ring-spin", func(ctx context.Context) (Result, error) {
			return p.Stream(ctx, "ring-spin", 64<<10, 1<<40, Unpinned) // 2^24 messages
		}},
	} {
		for _, how := range []string{"cancel", "kill parent"} {
			t.Run(c.name+" "+how, func(t *testing.T) {
				t.Cleanup(func() { killLeftovers(t, p.Dir) })
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() {
					_, err := c.run(ctx)
					done <- err
				}()
				parent, child := runningPair(t, p.Dir)
				if how == "cancel" {
					cancel()
				} else if err := syscall.Kill(parent, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-done:
					if err == nil {
						t.Fatal("the stopped run reported no error")
					}
					if how == "cancel" && !errors.Is(err, context.Canceled) {
						t.Errorf("cancelled run: %v; want context.Canceled", err)
					}
				case <-time.After(stopBound):
					t.Fatalf("the run did not return within %v of being stopped", stopBound)
				}
				for deadline := time.Now().Add(stopBound); ; time.Sleep(10 * time.Millisecond) {
					if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(child), "exe")); err != nil {
						break // gone, or a zombie
					}
					if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(child), "exe")); err != nil || filepath.Dir(exe) != p.Dir {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the C child %d still runs %v after its parent %d was stopped", child, stopBound, parent)
					}
				}
			})
		}
	}
}

// TestDeadConsumerIsAnError kills the consumer of a stream: the producer's
// next write fails, and the program must say so on one line naming the
// call and exit 1, not die silently of SIGPIPE.
func TestDeadConsumerIsAnError(t *testing.T) {
	p := build(t)
	for _, c := range []struct {
		args []string
		call string
	}{
		{[]string{"pipe"}, "floor: write: "},
		{[]string{"unix", "-v"}, "floor: writev: "},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Cleanup(func() { killLeftovers(t, p.Dir) })
			ctx, cancel := context.WithTimeout(context.Background(), stopBound)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(p.Dir, "stream"), append(c.args, "-m", "65536", "-t", "1000000000000")...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			_, child := runningPair(t, p.Dir)
			if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("stream %v with its consumer killed: %v; want exit status 1", c.args, err)
			}
			if !strings.HasPrefix(stderr.String(), c.call) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr %q; want one line starting %q", stderr.String(), c.call)
			}
		})
	}
}

// TestChildFailsEarly: a child that fails before it answers (here it
// cannot be pinned to a CPU that is not there) must fail the run at once,
// not leave the parent waiting in shared memory until the run's timeout.
func TestChildFailsEarly(t *testing.T) {
	p := build(t)
	const noCPU = "1000"
	for _, c := range []struct {
		name string
		run  func(ctx context.Context) (Result, error)
	}{
		{"pingpong spin", func(ctx context.Context) (Result, error) {
			return p.PingPong(ctx, "spin", 64, 100, Unpinned, "-b", noCPU)
		}},
		{"pingpong futex", func(ctx context.Context) (Result, error) {
			return p.PingPong(ctx, "futex", 64, 100, Unpinned, "-b", noCPU)
		}},
		{"pingpong spinfutex", func(ctx context.Context) (Result, error) {
			return p.PingPong(ctx, "spinfutex", 64, 100, Unpinned, "-b", noCPU)
		}},
		{"pingpong pshared", func(ctx context.Context) (Result, error) {
			return p.PingPong(ctx, "pshared", 64, 100, Unpinned, "-b", noCPU)
		}},
		{"stream ring-spin", func(ctx context.Context) (Result, error) {
			return p.Stream(ctx, "ring-spin", 64, 1<<20, Unpinned, "-b", noCPU)
		}},
		{"stream ring-futex", func(ctx context.Context) (Result, error) {
			return p.Stream(ctx, "ring-futex", 64, 1<<20, Unpinned, "-b", noCPU)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Cleanup(func() { killLeftovers(t, p.Dir) })
			ctx, cancel := context.WithTimeout(context.Background(), stopBound)
			defer cancel()
			_, err := c.run(ctx)
			if ctx.Err() != nil {
				t.Fatalf("no answer within %v of a child that failed at once: %v", stopBound, err)
			}
			if err == nil || !strings.Contains(err.Error(), "pinning to CPU "+noCPU) {
				t.Errorf("%v; want the child's error (pinning to CPU %s)", err, noCPU)
			}
		})
	}
}
