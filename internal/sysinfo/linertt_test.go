package sysinfo

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// twoCPUs returns two CPUs this process may run on, or skips the test.
func twoCPUs(t *testing.T) (int, int) {
	t.Helper()
	cpus, err := Affinity(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) < 2 {
		t.Skipf("this process may run on CPUs %v only", cpus)
	}
	return cpus[0], cpus[1]
}

func TestLineRoundTrip(t *testing.T) {
	a, b := twoCPUs(t)
	before := threadMasks(t)
	for i, pair := range [][2]int{{a, b}, {b, a}, {a, b}, {b, a}, {a, b}, {b, a}} {
		d, err := LineRoundTrip(pair[0], pair[1], 2000, 10*time.Second)
		if err != nil {
			t.Fatalf("CPUs %d and %d: %v", pair[0], pair[1], err)
		}
		// A round trip is two transfers of a cache line; it cannot be
		// free, and it cannot take the whole limit.
		if d <= 0 || d >= 10*time.Second {
			t.Errorf("CPUs %d and %d: %v per round trip", pair[0], pair[1], d)
		}
		if i < 2 {
			t.Logf("CPUs %d and %d: %v per round trip", pair[0], pair[1], d)
		}
		// Every thread of the process has the mask it had: a probe
		// thread got its own back (the main thread, which Go never ends,
		// kept one CPU before).
		for tid, mask := range threadMasks(t) {
			if want, ok := before[tid]; ok && mask != want {
				t.Fatalf("after probe %d: thread %d may run on CPUs %s, had %s", i, tid, mask, want)
			} else if !ok && mask != before[os.Getpid()] {
				t.Fatalf("after probe %d: new thread %d may run on CPUs %s, the process on %s", i, tid, mask, before[os.Getpid()])
			}
		}
	}
}

// threadMasks returns the CPU list each thread of this process may run
// on, by thread ID, from /proc/self/task/*/status.
func threadMasks(t *testing.T) map[int]string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("listing threads: %v", err)
	}
	out := map[int]string{}
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended meanwhile
		}
		tid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				out[tid] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// TestLineRoundTripOneP: with one P, the two spinning goroutines could only
// take turns; the probe says so at once instead of timing out.
func TestLineRoundTripOneP(t *testing.T) {
	a, b := twoCPUs(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	_, err := LineRoundTrip(a, b, 100, time.Minute)
	if err == nil || errors.Is(err, ErrProbeTimeout) || !strings.Contains(err.Error(), "GOMAXPROCS") {
		t.Errorf("got %v, want the GOMAXPROCS error", err)
	}
}

func TestLineRoundTripBadCPUs(t *testing.T) {
	a, _ := twoCPUs(t)
	for _, tc := range []struct {
		name string
		a, b int
	}{
		{"same CPU", a, a},
		{"negative", -1, a},
		{"above MaxCPU", a, MaxCPU + 1},
	} {
		if _, err := LineRoundTrip(tc.a, tc.b, 100, time.Second); !errors.Is(err, ErrBadCPUList) {
			t.Errorf("%s: got %v, want ErrBadCPUList", tc.name, err)
		}
	}
	// A CPU the process may not use (the highest possible one, on a
	// machine that has fewer): the kernel refuses the pin, and the probe
	// says so at once. Its limit is an hour: a probe that waited it out
	// instead would outlast the test binary's timeout and fail it.
	_, err := LineRoundTrip(a, MaxCPU, 100, time.Hour)
	if err == nil || errors.Is(err, ErrProbeTimeout) || errors.Is(err, ErrBadCPUList) {
		t.Errorf("CPU %d: got %v, want the kernel's refusal to pin", MaxCPU, err)
	}
}

func TestLineRoundTripTimeout(t *testing.T) {
	a, b := twoCPUs(t)
	// A limit no exchange of a million round trips can meet.
	_, err := LineRoundTrip(a, b, 1_000_000, time.Microsecond)
	if !errors.Is(err, ErrProbeTimeout) {
		t.Errorf("got %v, want ErrProbeTimeout", err)
	}
}
