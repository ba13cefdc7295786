package sysinfo

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// noSuchPID is above the largest pid Linux can assign (2^22).
const noSuchPID = 1<<22 + 1

func TestCollect(t *testing.T) {
	m := Collect()
	keys := []string{"kernel", "cpu_model", "cores", "cpus_online", "cpus_allowed", "gomaxprocs", "go_version", "goos", "goarch", "hostname", "clock_source", "pipe_max_size", "clock_read_ns"}
	for _, k := range keys {
		if m[k] == "" {
			t.Errorf("Collect()[%q] is empty", k)
		}
	}
	if len(m) != len(keys) {
		t.Errorf("Collect() has %d keys, want %d: %v", len(m), len(keys), m)
	}
	if m["cores"] != strconv.Itoa(runtime.NumCPU()) || m["go_version"] != runtime.Version() || m["goos"] != runtime.GOOS {
		t.Errorf("Collect() = %v", m)
	}
	if n, err := strconv.ParseInt(m["clock_read_ns"], 10, 64); err != nil || n < 0 {
		t.Errorf("clock_read_ns = %q", m["clock_read_ns"])
	}
	if _, err := ParseCPUList(m["cpus_allowed"]); err != nil {
		t.Errorf("cpus_allowed = %q: %v", m["cpus_allowed"], err)
	}
	for _, k := range []string{"kernel", "cpu_model", "cpus_online", "clock_source", "pipe_max_size"} {
		t.Logf("%s = %s", k, m[k])
	}
}

func TestClockReadCost(t *testing.T) {
	if c := ClockReadCost(); c <= 0 {
		t.Errorf("ClockReadCost() = %v, want > 0", c)
	}
}

func TestParseCPUModel(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"x86", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nmodel name\t: other\n", "Intel(R) Xeon(R) CPU @ 2.20GHz"},
		{"arm", "processor\t: 0\nBogoMIPS\t: 48.00\n\nHardware\t: BCM2835\n", "BCM2835"},
		{"empty value skipped", "model name\t:\nHardware\t: X\n", "X"},
		{"nothing", "processor\t: 0\n", Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseCPUModel(strings.NewReader(tt.in)); got != tt.want {
				t.Errorf("parseCPUModel = %q, want %q", got, tt.want)
			}
		})
	}
}

// statLine builds a /proc/<pid>/stat line with the given command name,
// utime, stime and processor.
func statLine(comm string, utime, stime, cpu string) string {
	f := make([]string, 52) // fields 1..52
	for i := range f {
		f[i] = "0"
	}
	f[0] = "1234"
	f[1] = "(" + comm + ")"
	f[2] = "S"
	f[13], f[14], f[38] = utime, stime, cpu
	return strings.Join(f, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{"plain", statLine("sleep", "150", "30", "1"), procStat{150, 30, 1}, false},
		{"spaces and parens in name", statLine("a b) (c d)", "7", "8", "3"), procStat{7, 8, 3}, false},
		{"no name", "1234 S 1 2 3", procStat{}, true},
		{"too short", "1234 (x) S 1 2 3 4 5 6 7 8 9 10 11 12", procStat{}, true},
		{"bad utime", statLine("x", "abc", "1", "0"), procStat{}, true},
		{"negative cpu", statLine("x", "1", "1", "-1"), procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrProcStat) {
					t.Fatalf("parseStat error = %v, want ErrProcStat", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseStat = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// burn spins until this process has used at least d more CPU time, or
// gives up after a generous wall-clock bound.
func burn(tb testing.TB, d time.Duration) {
	tb.Helper()
	start, err := SelfCPUTime()
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 1
	for time.Now().Before(deadline) {
		for i := range 100000 {
			x = x*31 + i
		}
		now, err := SelfCPUTime()
		if err != nil {
			tb.Fatal(err)
		}
		if now.Sub(start).Total() >= d {
			return
		}
	}
	tb.Fatalf("could not burn %v of CPU (%d)", d, x)
}

func TestCPUTimeAdvances(t *testing.T) {
	pid := os.Getpid()
	before, err := ProcessCPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	selfBefore, err := SelfCPUTime()
	if err != nil {
		t.Fatal(err)
	}
	burn(t, 100*time.Millisecond)
	after, err := ProcessCPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	selfAfter, err := SelfCPUTime()
	if err != nil {
		t.Fatal(err)
	}
	// /proc is 10 ms grained and sampled differently from getrusage, so
	// only ask that it saw a good part of the CPU time burnt.
	if d := after.Sub(before).Total(); d < 50*time.Millisecond {
		t.Errorf("ProcessCPUTime advanced %v after burning 100ms of CPU", d)
	}
	if d := selfAfter.Sub(selfBefore).Total(); d < 100*time.Millisecond {
		t.Errorf("SelfCPUTime advanced %v, want at least 100ms", d)
	}
	if after.User < 0 || after.System < 0 || after.Total() != after.User+after.System {
		t.Errorf("ProcessCPUTime = %+v", after)
	}
}

func TestNoSuchProcess(t *testing.T) {
	if _, err := ProcessCPUTime(noSuchPID); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ProcessCPUTime: %v, want os.ErrNotExist", err)
	}
	if _, err := LastCPU(noSuchPID); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LastCPU: %v, want os.ErrNotExist", err)
	}
	if err := SetAffinity(noSuchPID, []int{0}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SetAffinity: %v, want os.ErrNotExist", err)
	}
}

// allowed returns the CPUs process (or thread) pid may run on.
func allowed(tb testing.TB, pid int) []int {
	tb.Helper()
	cpus, err := Affinity(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return cpus
}

func TestLastCPU(t *testing.T) {
	cpu, err := LastCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	online, err := ParseCPUList(Collect()["cpus_online"])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(online, cpu) {
		t.Errorf("LastCPU = %d, not an online CPU %v", cpu, online)
	}
}

// startSleeper starts a child process that waits, and kills it at cleanup.
func startSleeper(tb testing.TB) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		tb.Skipf("cannot start a child process: %v", err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestSetAffinityChild(t *testing.T) {
	cpus := allowed(t, 0)
	child := startSleeper(t)
	pid := child.Process.Pid
	for _, c := range []int{cpus[0], cpus[len(cpus)-1]} {
		if err := SetAffinity(pid, []int{c}); err != nil {
			t.Fatal(err)
		}
		if got := allowed(t, pid); !slices.Equal(got, []int{c}) {
			t.Fatalf("child affinity = %v after SetAffinity(%d)", got, c)
		}
	}
	if err := SetAffinity(pid, cpus); err != nil {
		t.Fatal(err)
	}
	if got := allowed(t, pid); !slices.Equal(got, cpus) {
		t.Fatalf("child affinity = %v, want %v", got, cpus)
	}
}

// TestSetAffinityAllThreads pins this (multi-threaded) test process and
// checks every thread, then restores the original mask.
func TestSetAffinityAllThreads(t *testing.T) {
	pid := os.Getpid()
	orig := allowed(t, pid)
	t.Cleanup(func() {
		if err := SetAffinity(pid, orig); err != nil {
			t.Errorf("restoring affinity: %v", err)
		}
	})
	target := []int{orig[len(orig)-1]}
	if err := SetAffinity(pid, target); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) < 2 {
		t.Logf("only %d thread(s)", len(ents))
	}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		if got := allowed(t, tid); !slices.Equal(got, target) {
			t.Errorf("thread %d affinity = %v, want %v", tid, got, target)
		}
	}
}

func TestSetAffinityBadCPUs(t *testing.T) {
	for _, cpus := range [][]int{nil, {}, {-1}, {MaxCPU + 1}, {0, 5000}} {
		if err := SetAffinity(os.Getpid(), cpus); !errors.Is(err, ErrBadCPUList) {
			t.Errorf("SetAffinity(%v) = %v, want ErrBadCPUList", cpus, err)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"0", []int{0}, false},
		{"0,1", []int{0, 1}, false},
		{"0-3", []int{0, 1, 2, 3}, false},
		{"0-1,4", []int{0, 1, 4}, false},
		{" 3 , 1-2 ,1", []int{1, 2, 3}, false},
		{"2-2", []int{2}, false},
		{"1023", []int{1023}, false},
		{"", nil, true},
		{"  ", nil, true},
		{"a", nil, true},
		{"1,", nil, true},
		{",1", nil, true},
		{"-1", nil, true},
		{"+1", nil, true},
		{"3-1", nil, true},
		{"1-", nil, true},
		{"1-2-3", nil, true},
		{"1024", nil, true},
		{"0-99999999999", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCPUList(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadCPUList) {
					t.Fatalf("ParseCPUList(%q) = %v, %v; want ErrBadCPUList", tt.in, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseCPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatCPUList(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{1}, "1"},
		{[]int{1, 0, 1}, "0,1"},
		{[]int{7, 3, 5}, "3,5,7"},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := FormatCPUList(tt.in); got != tt.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("FormatCPUList modified its argument")
		}
		if tt.want != "" {
			if back, err := ParseCPUList(tt.want); err != nil || FormatCPUList(back) != tt.want {
				t.Errorf("round trip of %q: %v, %v", tt.want, back, err)
			}
		}
	}
}

func TestSetGOMAXPROCSFixedByEnv(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Setenv("GOMAXPROCS", strconv.Itoa(prev))
	restore := SetGOMAXPROCS(prev + 1)
	if got := runtime.GOMAXPROCS(0); got != prev+1 {
		t.Errorf("GOMAXPROCS after SetGOMAXPROCS(%d) = %d", prev+1, got)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != prev {
		t.Errorf("GOMAXPROCS after restore = %d, want the value the environment fixed, %d", got, prev)
	}
}

func TestSetGOMAXPROCSDefault(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	// A value other than the default before the call: restore must go
	// back to the default, not to this.
	runtime.GOMAXPROCS(def + 1)
	restore := SetGOMAXPROCS(0)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS after SetGOMAXPROCS(0) = %d, want 1", got)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Errorf("GOMAXPROCS after restore = %d, want the runtime default %d", got, def)
	}
}

func TestChildrenCPUTime(t *testing.T) {
	before, err := ChildrenCPUTime()
	if err != nil {
		t.Fatal(err)
	}
	// A child that burns some CPU and is waited for.
	if err := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done").Run(); err != nil {
		t.Skipf("no shell to run: %v", err)
	}
	after, err := ChildrenCPUTime()
	if err != nil {
		t.Fatal(err)
	}
	if after.User+after.System <= before.User+before.System {
		t.Fatalf("children's CPU time did not grow: %v then %v", before, after)
	}
}

// TestStoppedState: a stat line's state T or t is a stopped process, any
// other is not, whatever the command name holds.
func TestStoppedState(t *testing.T) {
	for _, c := range []struct {
		stat string
		want bool
	}{
		{"42 (ipcbench) T 1 42 42 0", true},
		{"42 (ipcbench) t 1 42 42 0", true},
		{"42 (ipcbench) S 1 42 42 0", false},
		{"42 (a) T (b) R 1 42", false},
		{"42 (x) T", true},
		{"42 (x)", false},
		{"garbage", false},
	} {
		if got := stoppedState([]byte(c.stat)); got != c.want {
			t.Errorf("stoppedState(%q) = %v, want %v", c.stat, got, c.want)
		}
	}
	if Stopped(os.Getpid()) {
		t.Error("this process reads as stopped")
	}
}
