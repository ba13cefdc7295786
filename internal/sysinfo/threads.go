package sysinfo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
//
// It samples from inside a measurement, so it keeps its cost down: it
// holds the process's task directory and each thread's stat and schedstat
// files open between calls, and a call re-reads them from the start
// (lseek and getdents64 for the directory, one pread(2) per file) instead
// of opening, reading and closing each file anew, which took about five
// times as many system calls. Close releases the descriptors. A
// ThreadSampler is not safe for concurrent use.
type ThreadSampler struct {
	pid     int
	prev    map[int]uint64 // Sample: tid -> utime+stime ticks at the previous call
	prevRun map[int]uint64 // RunTime: tid -> ns on CPU at the previous call
	primed  bool           // RunTime has been called before
	read    func() ([]threadState, error)

	// The open files of readThreads: the task directory (-1 until the
	// first call, and after Close), and each thread's files by tid.
	dir     int
	files   map[int]threadFiles
	closed  bool
	buf     []byte   // file contents and directory entries
	names   []string // directory entries, reused
	threads []threadState
}

// threadFiles are the open stat and schedstat files of one thread
// (schedstat -1 where the kernel has none), and whether the thread was
// seen in the last listing of the task directory.
type threadFiles struct {
	stat, schedstat int
	seen            bool
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

// NewThreadSampler returns a sampler for process pid. It opens nothing
// until its first call; Close releases what the calls opened.
func NewThreadSampler(pid int) *ThreadSampler {
	s := &ThreadSampler{pid: pid, prev: map[int]uint64{}, prevRun: map[int]uint64{}, dir: -1, files: map[int]threadFiles{}}
	s.read = s.readThreads
	return s
}

// ErrSamplerClosed is returned by the calls of a ThreadSampler after
// Close.
var ErrSamplerClosed = errors.New("sysinfo: thread sampler closed")

// Close closes the files the sampler holds open; later calls return
// ErrSamplerClosed. It may be called more than once.
func (s *ThreadSampler) Close() error {
	s.closed = true
	for tid, f := range s.files {
		f.close()
		delete(s.files, tid)
	}
	if s.dir >= 0 {
		unix.Close(s.dir)
		s.dir = -1
	}
	return nil
}

func (f threadFiles) close() {
	unix.Close(f.stat)
	if f.schedstat >= 0 {
		unix.Close(f.schedstat)
	}
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
// process from /proc, through the files it keeps open (see ThreadSampler).
// Threads that exit while it reads are left out, or have no run time. The
// result is valid until the next call.
func (s *ThreadSampler) readThreads() ([]threadState, error) {
	if s.closed {
		return nil, ErrSamplerClosed
	}
	dir := fmt.Sprintf("%s/%d/task", procRoot, s.pid)
	if err := s.listThreads(dir); err != nil {
		return nil, fmt.Errorf("sysinfo: threads of pid %d: %w", s.pid, err)
	}
	if s.buf == nil {
		s.buf = make([]byte, 4096)
	}
	s.threads = s.threads[:0]
	for _, name := range s.names {
		tid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		f, ok := s.files[tid]
		isNew := !ok
		if isNew {
			if f, ok = openThread(dir + "/" + name); !ok {
				continue // the thread exited meanwhile
			}
		}
		b, ok := pread(f.stat, s.buf)
		if !ok && !isNew {
			// The files are of a thread that has exited; the one listed
			// now is another with its id, or none.
			f.close()
			delete(s.files, tid)
			if f, ok = openThread(dir + "/" + name); ok {
				b, ok = pread(f.stat, s.buf)
			}
		}
		if f.stat >= 0 {
			f.seen = true
			s.files[tid] = f
		}
		if !ok {
			continue // the thread exited meanwhile (its files, if still held, go at the next listing)
		}
		state, st, err := parseThreadStat(b)
		if err != nil {
			continue
		}
		t := threadState{tid: tid, state: state, cpu: st.processor, ticks: st.utime + st.stime}
		if f.schedstat >= 0 {
			if b, ok := pread(f.schedstat, s.buf); ok {
				t.runNS, t.hasRun = parseSchedstat(b)
			}
		}
		s.threads = append(s.threads, t)
	}
	// Threads gone from the listing: their files go.
	for tid, f := range s.files {
		if !f.seen {
			f.close()
			delete(s.files, tid)
			continue
		}
		f.seen = false
		s.files[tid] = f
	}
	return s.threads, nil
}

// listThreads reads the names in the task directory dir into s.names,
// opening the directory at the first call and reading it again from its
// start at the later ones.
func (s *ThreadSampler) listThreads(dir string) error {
	if s.dir < 0 {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: dir, Err: err}
		}
		s.dir = fd
	} else if _, err := unix.Seek(s.dir, 0, io.SeekStart); err != nil {
		return &os.PathError{Op: "seek", Path: dir, Err: err}
	}
	if len(s.buf) < 8192 {
		s.buf = make([]byte, 8192)
	}
	s.names = s.names[:0]
	for {
		n, err := unix.ReadDirent(s.dir, s.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return nil
		}
		_, _, s.names = unix.ParseDirent(s.buf[:n], -1, s.names)
	}
}

// openThread opens the stat and schedstat files of the thread whose
// directory is tdir; false (and descriptors of -1) when the thread is gone
// or its files cannot be opened. A kernel without schedstat leaves that
// descriptor -1.
func openThread(tdir string) (threadFiles, bool) {
	stat, err := unix.Open(tdir+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return threadFiles{stat: -1, schedstat: -1}, false
	}
	sched, err := unix.Open(tdir+"/schedstat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		sched = -1
	}
	return threadFiles{stat: stat, schedstat: sched}, true
}

// pread reads the whole of a small /proc file from its start into buf
// with one pread(2) (with more only when buf fills); false when it cannot
// be read (its thread has exited: ESRCH), or is empty.
func pread(fd int, buf []byte) ([]byte, bool) {
	n := 0
	for n < len(buf) {
		k, err := unix.Pread(fd, buf[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, false
		}
		n += k
		if k < len(buf)-(n-k) {
			break // a /proc file gives all it has to one read that can hold it
		}
	}
	return buf[:n], n > 0
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
