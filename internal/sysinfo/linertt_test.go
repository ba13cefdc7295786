package sysinfo

import (
	"errors"
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
	before, err := Affinity(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]int{{a, b}, {b, a}} {
		d, err := LineRoundTrip(pair[0], pair[1], 2000, 10*time.Second)
		if err != nil {
			t.Fatalf("CPUs %d and %d: %v", pair[0], pair[1], err)
		}
		// A round trip is two transfers of a cache line; it cannot be
		// free, and it cannot take the whole limit.
		if d <= 0 || d >= 10*time.Second {
			t.Errorf("CPUs %d and %d: %v per round trip", pair[0], pair[1], d)
		}
		t.Logf("CPUs %d and %d: %v per round trip", pair[0], pair[1], d)
	}
	// The pinned threads ended with the probe: the caller's thread, and
	// the process's, kept their mask.
	after, err := Affinity(0)
	if err != nil {
		t.Fatal(err)
	}
	if FormatCPUList(after) != FormatCPUList(before) {
		t.Errorf("the process's CPUs changed from %v to %v", before, after)
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
	// says so rather than waiting out its limit.
	start := time.Now()
	_, err := LineRoundTrip(a, MaxCPU, 100, 30*time.Second)
	if err == nil || errors.Is(err, ErrProbeTimeout) || errors.Is(err, ErrBadCPUList) {
		t.Errorf("CPU %d: got %v, want the kernel's refusal to pin", MaxCPU, err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("the refused pin took %v: it waited for its limit", time.Since(start))
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
