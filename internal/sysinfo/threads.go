package sysinfo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Affinity returns the CPUs the main thread of process pid may run on
// (sched_getaffinity), sorted.
func Affinity(pid int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &set); err != nil {
		return nil, fmt.Errorf("sysinfo: get affinity of pid %d: %w", pid, err)
	}
	var cpus []int
	for c := 0; c <= MaxCPU; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// ErrNoSchedstat means the kernel provides no per-thread
// /proc/<pid>/task/<tid>/schedstat (it was built without CONFIG_SCHED_INFO),
// so run time cannot be attributed to CPUs (see ThreadSampler.RunTime).
var ErrNoSchedstat = errors.New("sysinfo: no per-thread schedstat")

// HasSchedstat reports whether this kernel provides per-thread schedstat
// files, which ThreadSampler.RunTime needs.
func HasSchedstat() bool {
	_, err := os.Stat(fmt.Sprintf("%s/%d/task/%d/schedstat", procRoot, os.Getpid(), os.Getpid()))
	return err == nil
}

// ThreadSampler finds out where a process actually runs. A Go process runs
// its goroutines on several OS threads, so the "processor" of its main
// thread alone says little; the sampler looks at every thread. RunTime
// weighs each CPU by how long the threads ran there; Sample, the cruder
// form for kernels without schedstat, lists the CPUs of the threads that
// were running at the sample or used CPU time since the previous sample.
// A ThreadSampler is not safe for concurrent use.
type ThreadSampler struct {
	pid     int
	prev    map[int]uint64 // Sample: tid -> utime+stime ticks at the previous call
	prevRun map[int]uint64 // RunTime: tid -> ns on CPU at the previous call
	primed  bool           // RunTime has been called before
	read    func() ([]threadState, error)
}

// threadState is one thread as read from /proc at a sample.
type threadState struct {
	tid   int
	state string // field 3 of stat: "R" running, "S" sleeping, ...
	cpu   int    // field 39 of stat: the CPU it last ran on
	ticks uint64 // utime+stime in clock ticks
	runNS uint64 // schedstat's first field: ns on CPU; valid if hasRun
	// hasRun says runNS was read (schedstat exists and was readable).
	hasRun bool
}

// NewThreadSampler returns a sampler for process pid.
func NewThreadSampler(pid int) *ThreadSampler {
	s := &ThreadSampler{pid: pid, prev: map[int]uint64{}, prevRun: map[int]uint64{}}
	s.read = s.readThreads
	return s
}

// Sample returns the CPUs (with repeats, one per busy thread) on which the
// process's busy threads last ran. The first call reports only threads in
// the running state.
func (s *ThreadSampler) Sample() ([]int, error) {
	threads, err := s.read()
	if err != nil {
		return nil, err
	}
	var cpus []int
	seenNow := make(map[int]uint64, len(threads))
	for _, t := range threads {
		prev, seen := s.prev[t.tid]
		seenNow[t.tid] = t.ticks
		if t.state == "R" || (seen && t.ticks > prev) {
			cpus = append(cpus, t.cpu)
		}
	}
	s.prev = seenNow
	return cpus, nil
}

// RunTime returns how long the process's threads ran on each CPU since the
// previous call. Only threads that ran count, each by its run time, so an
// idle thread, which keeps reporting the CPU it last ran on, adds nothing.
// The first call only notes where each thread stands and returns an empty
// map; a thread that appears later counts all its run time.
//
// It is an approximation: the kernel says how long a thread ran
// (schedstat) and on which CPU it last ran (stat field 39), not where it
// ran in between, so all of a thread's run time since the previous call is
// attributed to the CPU it was last on. Called often enough (every few tens
// of milliseconds), a thread that migrates misplaces at most one interval's
// run time. It fails with ErrNoSchedstat when no thread's schedstat can be
// read (a kernel without it; see HasSchedstat).
func (s *ThreadSampler) RunTime() (map[int]time.Duration, error) {
	threads, err := s.read()
	if err != nil {
		return nil, err
	}
	out := map[int]time.Duration{}
	now := make(map[int]uint64, len(threads))
	var withRun int
	for _, t := range threads {
		if !t.hasRun {
			continue // exited between reading stat and schedstat
		}
		withRun++
		now[t.tid] = t.runNS
		prev := s.prevRun[t.tid] // 0 for a thread new since the previous call
		if s.primed && t.runNS > prev {
			out[t.cpu] += time.Duration(t.runNS - prev)
		}
	}
	if withRun == 0 && len(threads) > 0 {
		return nil, fmt.Errorf("%w: threads of pid %d", ErrNoSchedstat, s.pid)
	}
	s.prevRun, s.primed = now, true
	return out, nil
}

// readThreads reads the state, CPU and CPU time of every thread of the
// process from /proc. Threads that exit while it reads are left out, or
// have no run time.
func (s *ThreadSampler) readThreads() ([]threadState, error) {
	dir := fmt.Sprintf("%s/%d/task", procRoot, s.pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("sysinfo: threads of pid %d: %w", s.pid, err)
	}
	threads := make([]threadState, 0, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(dir + "/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread exited meanwhile
		}
		state, st, err := parseThreadStat(b)
		if err != nil {
			continue
		}
		t := threadState{tid: tid, state: state, cpu: st.processor, ticks: st.utime + st.stime}
		if b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat"); err == nil {
			t.runNS, t.hasRun = parseSchedstat(b)
		}
		threads = append(threads, t)
	}
	return threads, nil
}

// parseSchedstat returns the first field of a schedstat file, the time in
// ns the thread has spent on a CPU.
func parseSchedstat(b []byte) (uint64, bool) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[0], 10, 64)
	return v, err == nil
}

// parseThreadStat returns the state field (3) and the fields parseStat
// reads.
func parseThreadStat(b []byte) (string, procStat, error) {
	st, err := parseStat(b)
	if err != nil {
		return "", st, err
	}
	end := bytes.LastIndexByte(b, ')')
	fields := strings.Fields(string(b[end+1:]))
	if len(fields) == 0 {
		return "", st, fmt.Errorf("%w: no state field", ErrProcStat)
	}
	return fields[0], st, nil
}
