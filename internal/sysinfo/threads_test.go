package sysinfo

import (
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestAffinity(t *testing.T) {
	cpus, err := Affinity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) == 0 || len(cpus) > runtime.NumCPU() {
		t.Fatalf("Affinity = %v with %d CPUs", cpus, runtime.NumCPU())
	}
	if _, err := Affinity(-5); err == nil {
		t.Error("Affinity(-5): no error")
	}
}

func TestThreadSamplerSeesABusyThread(t *testing.T) {
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { // burn CPU so some thread is busy
		defer close(done)
		x := 0
		for !stop.Load() {
			x++
		}
		_ = x
	}()
	defer func() { stop.Store(true); <-done }()
	s := NewThreadSampler(os.Getpid())
	var seen int
	for i := 0; i < 20 && seen == 0; i++ {
		cpus, err := s.Sample()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cpus {
			if c < 0 || c >= runtime.NumCPU() {
				t.Fatalf("CPU %d out of range", c)
			}
		}
		seen = len(cpus)
		time.Sleep(30 * time.Millisecond)
	}
	if seen == 0 {
		t.Fatal("no busy thread seen while one spins")
	}
	if _, err := NewThreadSampler(1 << 30).Sample(); err == nil {
		t.Error("sampling a missing process: no error")
	}
}
