// Package sysinfo reads facts about the machine and measures processes, on
// Linux: the environment a result must be recorded with (docs/methodology.md
// §10), the CPU time of both ends of a measurement (§7), where each end ran
// and CPU pinning (§13).
//
// Process figures come from /proc/<pid>/stat, whose CPU times are in clock
// ticks of USER_HZ, which Linux fixes at 100 per second (the value
// sysconf(_SC_CLK_TCK) returns) on every architecture; they are therefore
// 10 ms grained. SelfCPUTime uses getrusage and is finer.
package sysinfo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/montanaflynn/stats"
	"golang.org/x/sys/unix"
)

// ClockTicksPerSecond is USER_HZ, the unit of the CPU times in
// /proc/<pid>/stat (sysconf(_SC_CLK_TCK)); Linux fixes it at 100.
const ClockTicksPerSecond = 100

// MaxCPU is the largest CPU number ParseCPUList and SetAffinity accept
// (the capacity of a unix.CPUSet minus one).
const MaxCPU = 1023

// Unknown is the value Collect gives a fact it cannot read.
const Unknown = "unknown"

// Sentinel errors, tested with errors.Is.
var (
	// ErrBadCPUList means a CPU list is not of the form "0", "0,2", "0-3"
	// or a comma-separated mix, or names a CPU above MaxCPU.
	ErrBadCPUList = errors.New("sysinfo: bad CPU list")
	// ErrProcStat means /proc/<pid>/stat could not be parsed.
	ErrProcStat = errors.New("sysinfo: malformed /proc stat")
)

// procRoot is where the proc file system is mounted.
const procRoot = "/proc"

// Collect returns facts about this machine and process for a result's
// header. Keys: kernel (uname release and version), cpu_model
// (/proc/cpuinfo), cores (runtime.NumCPU), cpus_online
// (/sys/devices/system/cpu/online), cpus_allowed (this process's
// affinity), gomaxprocs, go_version, goos, goarch, hostname, clock_source
// (the kernel's current clocksource), pipe_max_size
// (/proc/sys/fs/pipe-max-size) and clock_read_ns (ClockReadCost in ns).
// Every key is always present; a fact that cannot be read is Unknown.
// It takes a few milliseconds (ClockReadCost).
func Collect() map[string]string {
	m := map[string]string{
		"kernel":        kernel(),
		"cpu_model":     cpuModel(),
		"cores":         strconv.Itoa(runtime.NumCPU()),
		"cpus_online":   readTrimmed("/sys/devices/system/cpu/online"),
		"cpus_allowed":  allowedCPUs(),
		"gomaxprocs":    strconv.Itoa(runtime.GOMAXPROCS(0)),
		"go_version":    runtime.Version(),
		"goos":          runtime.GOOS,
		"goarch":        runtime.GOARCH,
		"hostname":      Unknown,
		"clock_source":  readTrimmed("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
		"pipe_max_size": readTrimmed("/proc/sys/fs/pipe-max-size"),
		"clock_read_ns": strconv.FormatInt(int64(ClockReadCost()), 10),
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		m["hostname"] = h
	}
	return m
}

// readTrimmed returns the trimmed content of a small file, or Unknown.
func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return Unknown
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return Unknown
	}
	return s
}

// kernel returns uname's release and version.
func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Unknown
	}
	return unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
}

// cpuModel returns the processor's name from /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open(procRoot + "/cpuinfo")
	if err != nil {
		return Unknown
	}
	defer f.Close()
	return parseCPUModel(f)
}

// parseCPUModel finds the processor's name in cpuinfo text: "model name"
// (x86, and arm64 on recent kernels), else "Hardware", "cpu model" or
// "Processor" / "cpu" (other architectures).
func parseCPUModel(r io.Reader) string {
	keys := []string{"model name", "Hardware", "cpu model", "Processor", "cpu"}
	found := make(map[string]string)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if _, dup := found[k]; !dup {
			found[k] = v
		}
	}
	for _, k := range keys {
		if v, ok := found[k]; ok {
			return v
		}
	}
	return Unknown
}

// allowedCPUs returns this process's CPU affinity as a CPU list.
func allowedCPUs() string {
	cpus, err := Affinity(0)
	if err != nil || len(cpus) == 0 {
		return Unknown
	}
	return FormatCPUList(cpus)
}

// ClockReadCost measures the cost of one read of the clock as ipcbench
// reads it (time.Now, which reads the wall and monotonic clocks): the
// median over batches of consecutive reads, so that scheduling noise in
// one batch does not move it. It takes about a millisecond.
func ClockReadCost() time.Duration {
	const (
		batches  = 31
		perBatch = 1000
	)
	costs := make([]float64, batches) // ns per read
	var t time.Time
	for b := range costs {
		start := time.Now()
		for range perBatch {
			t = time.Now()
		}
		costs[b] = float64(t.Sub(start)) / perBatch
	}
	m, err := stats.Median(costs)
	if err != nil {
		return 0 // unreachable: costs is not empty
	}
	return time.Duration(m)
}

// CPUTime is CPU time consumed, in user and in system (kernel) mode.
type CPUTime struct {
	User, System time.Duration
}

// Total returns User + System.
func (c CPUTime) Total() time.Duration { return c.User + c.System }

// Sub returns c - o, field by field: the CPU time spent between two
// readings o (earlier) and c.
func (c CPUTime) Sub(o CPUTime) CPUTime {
	return CPUTime{User: c.User - o.User, System: c.System - o.System}
}

// procStat holds the fields of /proc/<pid>/stat that this package uses.
type procStat struct {
	utime, stime uint64 // fields 14 and 15, clock ticks
	processor    int    // field 39
}

// readStat reads and parses /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	path := fmt.Sprintf("%s/%d/stat", procRoot, pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, fmt.Errorf("sysinfo: read stat of pid %d: %w", pid, err)
	}
	st, err := parseStat(b)
	if err != nil {
		return procStat{}, fmt.Errorf("sysinfo: %s: %w", path, err)
	}
	return st, nil
}

// Stopped reports whether process pid is stopped now (state T, by SIGSTOP
// or a terminal's Ctrl-Z, or t, by a tracer); false when it cannot be
// read.
func Stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procRoot, pid))
	if err != nil {
		return false
	}
	return stoppedState(b)
}

// stoppedState reports whether b, the content of /proc/<pid>/stat, has
// state T or t (field 3, after the command name in parentheses).
func stoppedState(b []byte) bool {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 || end+2 >= len(b) {
		return false
	}
	return b[end+2] == 'T' || b[end+2] == 't'
}

// parseStat parses the content of /proc/<pid>/stat (proc(5)). The command
// name, field 2, is in parentheses and may itself contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("%w: no command name", ErrProcStat)
	}
	// fields[0] is field 3 (state).
	fields := strings.Fields(string(b[end+1:]))
	const first = 3
	field := func(n int) (string, error) {
		if n-first >= len(fields) {
			return "", fmt.Errorf("%w: %d fields, want at least %d", ErrProcStat, len(fields)+first-1, n)
		}
		return fields[n-first], nil
	}
	var st procStat
	for _, f := range []struct {
		n   int
		dst *uint64
	}{{14, &st.utime}, {15, &st.stime}} {
		s, err := field(f.n)
		if err != nil {
			return procStat{}, err
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("%w: field %d: %w", ErrProcStat, f.n, err)
		}
		*f.dst = v
	}
	s, err := field(39)
	if err != nil {
		return procStat{}, err
	}
	cpu, err := strconv.Atoi(s)
	if err != nil || cpu < 0 {
		return procStat{}, fmt.Errorf("%w: field 39 (processor) is %q", ErrProcStat, s)
	}
	st.processor = cpu
	return st, nil
}

// ticks converts clock ticks to a duration.
func ticks(n uint64) time.Duration {
	return time.Duration(n) * (time.Second / ClockTicksPerSecond)
}

// ProcessCPUTime returns the CPU time used so far by all threads of process
// pid (which may be os.Getpid()), from /proc/<pid>/stat: 10 ms grained
// (see the package doc). For this process, SelfCPUTime is finer. A process
// that does not exist gives an error wrapping os.ErrNotExist.
func ProcessCPUTime(pid int) (CPUTime, error) {
	st, err := readStat(pid)
	if err != nil {
		return CPUTime{}, err
	}
	return CPUTime{User: ticks(st.utime), System: ticks(st.stime)}, nil
}

// SelfCPUTime returns the CPU time used so far by all threads of this
// process, from getrusage(RUSAGE_SELF), with microsecond resolution.
func SelfCPUTime() (CPUTime, error) { return rusageCPUTime(unix.RUSAGE_SELF, "getrusage") }

// ChildrenCPUTime returns the CPU time of this process's children that
// have ended and been waited for, and of their waited-for descendants
// (getrusage RUSAGE_CHILDREN).
func ChildrenCPUTime() (CPUTime, error) {
	return rusageCPUTime(unix.RUSAGE_CHILDREN, "getrusage children")
}

// rusageCPUTime returns the CPU time getrusage reports for who; op names
// the call in the error.
func rusageCPUTime(who int, op string) (CPUTime, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return CPUTime{}, fmt.Errorf("sysinfo: %s: %w", op, err)
	}
	return CPUTime{
		User:   time.Duration(ru.Utime.Nano()),
		System: time.Duration(ru.Stime.Nano()),
	}, nil
}

// LastCPU returns the CPU that process pid (its main thread) last ran on,
// field 39 of /proc/<pid>/stat. A process that does not exist gives an
// error wrapping os.ErrNotExist.
func LastCPU(pid int) (int, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return st.processor, nil
}

// SetAffinity restricts every thread of process pid (which may be this
// process) to the given CPUs with sched_setaffinity. Threads the process
// creates afterwards inherit the mask from their creator. It fails when
// cpus is empty or names a CPU above MaxCPU (ErrBadCPUList), when the
// process does not exist (os.ErrNotExist), or when the kernel refuses the
// mask (for example none of the CPUs is online or allowed to the caller).
func SetAffinity(pid int, cpus []int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("sysinfo: set affinity of pid %d: %w: no CPUs given", pid, ErrBadCPUList)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c > MaxCPU {
			return fmt.Errorf("sysinfo: set affinity of pid %d: %w: CPU %d outside 0..%d", pid, ErrBadCPUList, c, MaxCPU)
		}
		set.Set(c)
	}
	taskDir := fmt.Sprintf("%s/%d/task", procRoot, pid)
	done := make(map[int]bool)
	// Threads may start while we iterate: repeat until a pass finds no
	// thread that has not been set.
	for pass := 0; pass < 10; pass++ {
		ents, err := os.ReadDir(taskDir)
		if err != nil {
			return fmt.Errorf("sysinfo: set affinity of pid %d: %w", pid, err)
		}
		fresh := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh++
			if err := unix.SchedSetaffinity(tid, &set); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue // the thread exited meanwhile
				}
				return fmt.Errorf("sysinfo: set affinity of pid %d thread %d to CPUs %s: %w", pid, tid, FormatCPUList(cpus), err)
			}
			done[tid] = true
		}
		if fresh == 0 {
			break
		}
	}
	if len(done) == 0 {
		return fmt.Errorf("sysinfo: set affinity of pid %d: no threads left: %w", pid, os.ErrNotExist)
	}
	return nil
}

// ParseCPUList parses a Linux CPU list such as "0", "0,1", "0-3" or
// "0-1,4": comma-separated CPU numbers and inclusive ranges, spaces around
// items allowed. It returns the CPUs sorted, without duplicates. Empty
// input, malformed items, reversed ranges and CPUs above MaxCPU give an
// error wrapping ErrBadCPUList.
func ParseCPUList(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadCPUList)
	}
	seen := make(map[int]bool)
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadCPUList, item, err)
		}
		b := a
		if isRange {
			if b, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("%w: %q: %w", ErrBadCPUList, item, err)
			}
			if b < a {
				return nil, fmt.Errorf("%w: %q: range ends before it starts", ErrBadCPUList, item)
			}
		}
		for c := a; c <= b; c++ {
			seen[c] = true
		}
	}
	cpus := make([]int, 0, len(seen))
	for c := range seen {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	return cpus, nil
}

// parseCPU parses one CPU number in 0..MaxCPU.
func parseCPU(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("bad CPU number %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("bad CPU number %q", s)
	}
	if n > MaxCPU {
		return 0, fmt.Errorf("CPU %d above %d", n, MaxCPU)
	}
	return n, nil
}

// FormatCPUList returns cpus sorted, without duplicates, joined by commas
// ("0,1"), a form ParseCPUList reads back. An empty list gives "".
func FormatCPUList(cpus []int) string {
	s := slices.Clone(cpus)
	slices.Sort(s)
	s = slices.Compact(s)
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

// SetGOMAXPROCS sets this process's GOMAXPROCS to n (at least 1) at once
// and returns a function that puts back what was in force before: the value
// the GOMAXPROCS environment variable fixed, or else the runtime's own
// default, which follows the affinity mask and CPU limit again.
//
// A process that narrows its own affinity mask would otherwise keep the
// GOMAXPROCS of its start (all CPUs) until the runtime notices the change,
// which it checks once a second: a stop-the-world that resizes the
// scheduler in the middle of whatever runs then, and Ps without a CPU in
// the meantime. A process started inside the mask (a pinned peer) gets the
// right value from its first instruction and needs no call.
func SetGOMAXPROCS(n int) (restore func()) {
	prev := runtime.GOMAXPROCS(max(n, 1))
	if os.Getenv("GOMAXPROCS") != "" {
		return func() { runtime.GOMAXPROCS(prev) }
	}
	return runtime.SetDefaultGOMAXPROCS
}
