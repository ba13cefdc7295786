package sysinfo

import (
	"errors"
	"maps"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// spin burns CPU on a goroutine, so that some thread of this process is
// busy, until the returned function is called.
func spin() (stop func()) {
	var quit atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		x := 0
		for !quit.Load() {
			x++
		}
		_ = x
	}()
	return func() { quit.Store(true); <-done }
}

func TestThreadSamplerSeesABusyThread(t *testing.T) {
	defer spin()()
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

// fakeThreads returns a reader that hands out the given samples, one per
// call.
func fakeThreads(samples ...[]threadState) func() ([]threadState, error) {
	return func() ([]threadState, error) {
		s := samples[0]
		samples = samples[1:]
		return s, nil
	}
}

// TestRunTimeAttribution checks that run time since the previous call goes
// to the CPU each thread was last on, that an idle thread (no new run time,
// even though it still reports a CPU and a large total) adds nothing, and
// that a thread new since the previous call counts all its run time.
func TestRunTimeAttribution(t *testing.T) {
	s := NewThreadSampler(1)
	s.read = fakeThreads(
		[]threadState{
			{tid: 1, cpu: 0, runNS: 5e9, hasRun: true},   // busy
			{tid: 2, cpu: 1, runNS: 7e9, hasRun: true},   // idle: parked on CPU 1
			{tid: 3, cpu: 0, runNS: 100e6, hasRun: true}, // runs a little, migrates
		},
		[]threadState{
			{tid: 1, cpu: 0, runNS: 5e9 + 40e6, hasRun: true},
			{tid: 2, cpu: 1, runNS: 7e9, hasRun: true, state: "S"},
			{tid: 3, cpu: 1, runNS: 100e6 + 2e6, hasRun: true},
			{tid: 4, cpu: 0, runNS: 3e6, hasRun: true}, // new thread
			{tid: 5, cpu: 1}, // exited before its schedstat was read
		},
		[]threadState{
			{tid: 1, cpu: 0, runNS: 5e9 + 50e6, hasRun: true},
			{tid: 2, cpu: 1, runNS: 7e9, hasRun: true},
		},
	)
	want := []map[int]time.Duration{
		{}, // the first call only notes where each thread stands
		{0: 43 * time.Millisecond, 1: 2 * time.Millisecond},
		{0: 10 * time.Millisecond},
	}
	for i, w := range want {
		got, err := s.RunTime()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !maps.Equal(got, w) {
			t.Errorf("call %d: RunTime = %v, want %v", i, got, w)
		}
	}
}

// TestRunTimeWithoutSchedstat checks the error when no thread's schedstat
// can be read.
func TestRunTimeWithoutSchedstat(t *testing.T) {
	s := NewThreadSampler(1)
	s.read = fakeThreads([]threadState{{tid: 1, cpu: 0, ticks: 3}})
	_, err := s.RunTime()
	if !errors.Is(err, ErrNoSchedstat) {
		t.Fatalf("RunTime = %v, want ErrNoSchedstat", err)
	}
	if want := "sysinfo: no per-thread schedstat: threads of pid 1"; err.Error() != want {
		t.Errorf("RunTime's error %q, want %q (the package's prefix first, as its other errors)", err, want)
	}
}

// TestRunTimeSeesABusyThread reads this process: a spinning goroutine's
// run time shows up, on CPUs this process may use.
func TestRunTimeSeesABusyThread(t *testing.T) {
	if !HasSchedstat() {
		t.Skip("this kernel has no per-thread schedstat")
	}
	defer spin()()
	s := NewThreadSampler(os.Getpid())
	if _, err := s.RunTime(); err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for i := 0; i < 20 && total == 0; i++ {
		time.Sleep(30 * time.Millisecond)
		got, err := s.RunTime()
		if err != nil {
			t.Fatal(err)
		}
		for c, d := range got {
			if c < 0 || c >= runtime.NumCPU() {
				t.Fatalf("CPU %d out of range", c)
			}
			total += d
		}
	}
	if total == 0 {
		t.Fatal("no run time seen while a goroutine spins")
	}
}

func TestParseSchedstat(t *testing.T) {
	if v, ok := parseSchedstat([]byte("29966448 18693769 86\n")); !ok || v != 29966448 {
		t.Errorf("parseSchedstat = %d, %v", v, ok)
	}
	for _, bad := range []string{"", "x 1 2", "-5 1 2"} {
		if _, ok := parseSchedstat([]byte(bad)); ok {
			t.Errorf("parseSchedstat(%q): ok", bad)
		}
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestThreadSamplerKeepsFilesOpen checks the descriptors a ThreadSampler
// holds: a thread's files are opened once and re-read by later calls; the
// files of a thread that exited are closed at the next call; Close closes
// the rest, and calls after it fail with ErrSamplerClosed.
func TestThreadSamplerKeepsFilesOpen(t *testing.T) {
	before := openFDs(t)
	s := NewThreadSampler(os.Getpid())
	if _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	main, ok := s.files[os.Getpid()]
	if !ok || s.dir < 0 {
		t.Fatalf("after a call: main thread's files %+v (%v), directory %d: want them open", main, ok, s.dir)
	}
	if _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	if again := s.files[os.Getpid()]; again.stat != main.stat || again.schedstat != main.schedstat {
		t.Fatalf("the main thread's files were opened again: %+v, then %+v", main, again)
	}

	// A thread that has exited is no longer listed: its files are closed
	// at the next call. (Stand-ins: descriptors of /dev/null under a thread
	// id no process has.)
	var fake threadFiles
	for _, fd := range []*int{&fake.stat, &fake.schedstat} {
		var err error
		if *fd, err = unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			t.Fatal(err)
		}
	}
	const gone = 1 << 30
	s.files[gone] = fake
	if _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.files[gone]; ok {
		t.Fatal("the files of a thread no longer listed are still held")
	}
	for _, fd := range []int{fake.stat, fake.schedstat} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("descriptor %d of a thread no longer listed: F_GETFD = %v, want EBADF (closed)", fd, err)
		}
	}

	// Files that can no longer be read under a listed thread's id (that
	// thread exited and the id went to a new one): replaced by the new
	// thread's. (Stand-in: /dev/null opened write-only.)
	stale, err := unix.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.files[os.Getpid()].close()
	s.files[os.Getpid()] = threadFiles{stat: stale, schedstat: -1}
	threads, err := s.read()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, th := range threads {
		found = found || th.tid == os.Getpid()
	}
	if !found {
		t.Fatal("the main thread, behind unreadable files, was not sampled")
	}
	if _, ok := pread(s.files[os.Getpid()].stat, make([]byte, 4096)); !ok {
		t.Fatal("the main thread's unreadable files were not replaced")
	}

	s.Close()
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before the sampler, %d after Close", before, after)
	}
	if _, err := s.RunTime(); !errors.Is(err, ErrSamplerClosed) {
		t.Errorf("RunTime after Close = %v, want ErrSamplerClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
