package sysinfo

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

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

// ThreadSampler finds out where a process actually runs. A Go process runs
// its goroutines on several OS threads, so the "processor" of its main
// thread alone says little; the sampler looks at every thread and reports
// the CPUs of the threads that were running at the sample or used CPU time
// since the previous sample.
type ThreadSampler struct {
	pid  int
	prev map[int]uint64 // tid -> utime+stime ticks at the previous sample
}

// NewThreadSampler returns a sampler for process pid.
func NewThreadSampler(pid int) *ThreadSampler {
	return &ThreadSampler{pid: pid, prev: map[int]uint64{}}
}

// Sample returns the CPUs (with repeats, one per busy thread) on which the
// process's busy threads last ran. The first call reports only threads in
// the running state.
func (s *ThreadSampler) Sample() ([]int, error) {
	dir := fmt.Sprintf("%s/%d/task", procRoot, s.pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("sysinfo: threads of pid %d: %w", s.pid, err)
	}
	var cpus []int
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
		used := st.utime + st.stime
		prev, seen := s.prev[tid]
		s.prev[tid] = used
		if state == "R" || (seen && used > prev) {
			cpus = append(cpus, st.processor)
		}
	}
	return cpus, nil
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
