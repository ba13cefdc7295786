package floor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/bench"
)

func TestParseResult(t *testing.T) {
	out := []byte("noise\nRESULT pipe size=64 n=1000 mean_ns=5012.3 p50_ns=4900\n")
	r, err := ParseResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != "pipe" || r.Fields["size"] != "64" {
		t.Fatalf("parsed %+v", r)
	}
	if v, err := r.Float("p50_ns"); err != nil || v != 4900 {
		t.Fatalf("p50_ns = %v, %v", v, err)
	}
	if _, err := r.Float("p99_ns"); !errors.Is(err, ErrBadOutput) {
		t.Fatalf("missing field: %v", err)
	}
	for _, bad := range []string{"", "no result here\n", "RESULT\n", "RESULT pipe size\n", "RESULT pipe =3\n"} {
		if _, err := ParseResult([]byte(bad)); !errors.Is(err, ErrBadOutput) {
			t.Errorf("ParseResult(%q): %v, want ErrBadOutput", bad, err)
		}
	}
	r, _ = ParseResult([]byte("RESULT unix p50_ns=abc\n"))
	if _, err := r.Float("p50_ns"); !errors.Is(err, ErrBadOutput) {
		t.Errorf("non-numeric field: %v", err)
	}
	if _, err := ParseResult([]byte("RESULT pipe p50_ns=5 p50_ns=6\n")); !errors.Is(err, ErrBadOutput) {
		t.Errorf("a key given twice: %v, want ErrBadOutput", err)
	}
	for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "1e999"} {
		r, err := ParseResult([]byte("RESULT pipe MBps=" + v + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if f, err := r.Float("MBps"); !errors.Is(err, ErrBadOutput) {
			t.Errorf("MBps=%s: %v, %v; want ErrBadOutput", v, f, err)
		}
	}
	for _, v := range []string{"0", "-0", "-5", "0.0"} {
		r, _ := ParseResult([]byte("RESULT pipe MBps=" + v + " cpu=-1\n"))
		if f, err := r.Positive("MBps"); !errors.Is(err, ErrBadOutput) {
			t.Errorf("Positive of MBps=%s: %v, %v; want ErrBadOutput", v, f, err)
		}
		if f, err := r.Float("cpu"); err != nil || f != -1 {
			t.Errorf("Float of cpu=-1: %v, %v", f, err)
		}
	}
}

// TestRunCChecksResult gives the floor fake C programs (shell scripts)
// whose RESULT lines are well formed but wrong: a value that is not above
// zero or not finite, a key twice, another mode. Each must fail the C
// side with ErrBadOutput.
func TestRunCChecksResult(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("skipped: no sh for the fake programs")
	}
	pair := Pair{Workload: "pingpong", Variant: "pipe", Size: 64, Conns: 1, Placement: "unpinned",
		C: CProgram{Program: "pingpong", Mode: "pipe"}}
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{"RESULT pipe p50_ns=4900", true},
		{"RESULT pipe p50_ns=0", false},
		{"RESULT pipe p50_ns=-4900", false},
		{"RESULT pipe p50_ns=NaN", false},
		{"RESULT pipe p50_ns=Inf", false},
		{"RESULT pipe p50_ns=4900 p50_ns=1", false},
		{"RESULT unix p50_ns=4900", false},
	} {
		dir := t.TempDir()
		script := "#!/bin/sh\necho '" + c.line + "'\n"
		if err := os.WriteFile(filepath.Join(dir, "pingpong"), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		e := &Experiment{cfg: Config{PingPongN: MinPingPongN}, progs: Programs{Dir: dir}}
		v, _, err := e.runC(context.Background(), pair, bench.Placement{})
		switch {
		case c.ok && (err != nil || v != 4900):
			t.Errorf("%q: %v, %v; want 4900", c.line, v, err)
		case !c.ok && !errors.Is(err, ErrBadOutput):
			t.Errorf("%q: %v, %v; want ErrBadOutput", c.line, v, err)
		}
	}
}

// build compiles the C programs once per test, or skips the test, saying
// why, where there is no C compiler.
func build(t *testing.T) Programs {
	t.Helper()
	if _, err := Compiler(); err != nil {
		t.Skipf("skipped: the C floor programs need a C compiler: %v", err)
	}
	p, err := Build(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// field returns a RESULT field as a whole number.
func field(t *testing.T, r Result, key string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(r.Fields[key], 10, 64)
	if err != nil {
		t.Fatalf("%s: %s is not a whole number: %v", r.Line, key, err)
	}
	return v
}

// positive checks that a RESULT field is a number above zero.
func positive(t *testing.T, r Result, key string) {
	t.Helper()
	if v, err := r.Float(key); err != nil || !(v > 0) {
		t.Errorf("%s: %s = %v, %v; want a positive number", r.Line, key, v, err)
	}
}

// TestPingPongEchoes runs every pingpong mode briefly: each must report
// that every round trip (warm-up included) came back with the sequence
// number it was sent with, and a latency distribution.
func TestPingPongEchoes(t *testing.T) {
	p := build(t)
	ctx := context.Background()
	for _, mode := range PingPongModes {
		pin := Unpinned
		if mode == "spin" {
			if !TwoCPUs() {
				continue // two busy-waiting processes on one CPU take turns by time slice
			}
			pin = Pin{0, 1}
		}
		r, err := p.PingPong(ctx, mode, 100, 300, pin, "-w", "50")
		if err != nil {
			t.Errorf("%s: %v", mode, err)
			continue
		}
		if r.Mode != mode || field(t, r, "size") != 100 || field(t, r, "n") != 300 || field(t, r, "checked") != 350 {
			t.Errorf("%s: %s: want size=100 n=300 checked=350", mode, r.Line)
		}
		for _, k := range []string{"p50_ns", "p99_ns", "mean_ns", "min_ns", "max_ns"} {
			positive(t, r, k)
		}
	}
}

// TestStreamCounts streams through every mode, with and without writev
// frames: the consumer must count every byte and every message.
func TestStreamCounts(t *testing.T) {
	p := build(t)
	ctx := context.Background()
	const msg, total = 64 << 10, 8<<20 + 100 // total is cut to whole messages
	for _, c := range []struct {
		mode  string
		extra []string
	}{
		{"pipe", nil}, {"pipe", []string{"-v"}}, {"unix", nil}, {"unix", []string{"-v"}},
		{"tcp", nil}, {"tcp", []string{"-v"}}, {"ring-futex", nil}, {"ring-futex", []string{"-r", "1"}}, {"ring-spin", nil},
	} {
		r, err := p.Stream(ctx, c.mode, msg, total, Unpinned, c.extra...)
		name := strings.Join(append([]string{c.mode}, c.extra...), " ")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		const want = 8 << 20
		if field(t, r, "bytes") != want || field(t, r, "total") != want || field(t, r, "msgs") != want/msg {
			t.Errorf("%s: %s: want bytes=total=%d msgs=%d", name, r.Line, want, want/msg)
		}
		framed := int64(0)
		if len(c.extra) > 0 && c.extra[0] == "-v" {
			framed = 1
		}
		if field(t, r, "writev") != framed {
			t.Errorf("%s: %s: want writev=%d", name, r.Line, framed)
		}
		// The clock starts after a warm-up, whose messages are not
		// counted in bytes and msgs.
		if field(t, r, "warmup_msgs") < 1 {
			t.Errorf("%s: %s: want a warm-up", name, r.Line)
		}
		// The consumer reads as much at a time as ipcbench's sink.
		if wantBuf := map[bool]int64{true: 0, false: 256 << 10}[strings.HasPrefix(c.mode, "ring-")]; field(t, r, "readbuf") != wantBuf {
			t.Errorf("%s: %s: want readbuf=%d", name, r.Line, wantBuf)
		}
		positive(t, r, "MBps")
	}
	// A 1 MiB message is larger than a pipe's or a socket's buffer: the
	// frames arrive in pieces.
	r, err := p.Stream(ctx, "unix", 1<<20, 8<<20, Unpinned, "-v")
	if err != nil {
		t.Fatal(err)
	}
	if field(t, r, "bytes") != 8<<20 || field(t, r, "msgs") != 8 {
		t.Errorf("1 MiB frames: %s", r.Line)
	}
}

// TestFaninEchoes drives 1, 4 and 64 connections through the C echo
// server for every mode: every round trip must come back checked.
func TestFaninEchoes(t *testing.T) {
	p := build(t)
	ctx := context.Background()
	for _, mode := range FaninModes {
		for _, conns := range []int{1, 4, 64} {
			r, err := p.Fanin(ctx, mode, conns, 1024, 640, Unpinned, "-w", "64")
			if err != nil {
				t.Errorf("%s %d: %v", mode, conns, err)
				continue
			}
			if field(t, r, "conns") != int64(conns) || field(t, r, "n") != 640 || field(t, r, "checked") < 640+64 {
				t.Errorf("%s %d: %s: want conns=%d n=640 checked>=704", mode, conns, r.Line, conns)
			}
			positive(t, r, "msgs_per_s")
			positive(t, r, "p50_ns")
		}
	}
}

// TestProgramsRefuseBadArguments: a mistake on the command line is exit
// status 2 with a usage line, before anything runs; the Go side refuses
// unknown modes itself.
func TestProgramsRefuseBadArguments(t *testing.T) {
	p := build(t)
	for _, args := range [][]string{
		{"pingpong"}, {"pingpong", "carrier-pigeon"}, {"pingpong", "pipe", "-s", "4"}, {"pingpong", "pipe", "-n", "x"},
		{"stream", "ring-spin", "-v"}, {"stream", "pipe", "-m", "1024", "-t", "10"}, {"stream", "pipe", "extra"},
		{"fanin", "shm"}, {"fanin", "unix", "-c", "0"},
		// Counts whose sums or roundings would overflow, or that would
		// wrap the 32-bit sequence word (and never end).
		{"pingpong", "spin", "-n", "9223372036854775807"}, {"pingpong", "futex", "-n", "4294967294", "-w", "1"},
		{"pingpong", "futex", "-n", "1", "-w", "9223372036854775807"},
		{"fanin", "pipe", "-n", "9223372036854775807"}, {"fanin", "pipe", "-w", "9223372036854775807"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), stopBound)
		out, err := exec.CommandContext(ctx, filepath.Join(p.Dir, args[0]), args[1:]...).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage:") {
			t.Errorf("%v: %v, output %q; want exit status 2 and a usage line", args, err, out)
		}
	}
	ctx := context.Background()
	if _, err := p.PingPong(ctx, "carrier-pigeon", 64, 10, Unpinned); !errors.Is(err, ErrUnknownMode) {
		t.Errorf("pingpong: %v", err)
	}
	if _, err := p.Stream(ctx, "shmring", 64, 1024, Unpinned); !errors.Is(err, ErrUnknownMode) {
		t.Errorf("stream: %v", err)
	}
	if _, err := p.Fanin(ctx, "shm-ring", 4, 64, 100, Unpinned); !errors.Is(err, ErrUnknownMode) {
		t.Errorf("fanin: %v", err)
	}
}

// TestRunTimeoutScales: a C program's run gets RunTimeout for the default
// work or less, k times as long for k times the work (rounded up), and
// never more than bench.MaxCaseTimeout.
func TestRunTimeoutScales(t *testing.T) {
	for _, c := range []struct {
		work, dflt int64
		want       time.Duration
	}{
		{100, DefaultPingPongN, RunTimeout},
		{DefaultPingPongN, DefaultPingPongN, RunTimeout},
		{DefaultPingPongN + 1, DefaultPingPongN, 2 * RunTimeout},
		{10 * DefaultFaninN, DefaultFaninN, 10 * RunTimeout},
		{1024 * DefaultStreamBytes, DefaultStreamBytes, 1024 * RunTimeout},
		{bench.MaxCount, DefaultPingPongN, bench.MaxCaseTimeout},
	} {
		if got := runTimeout(c.work, c.dflt); got != c.want {
			t.Errorf("runTimeout(%d, %d) = %v, want %v", c.work, c.dflt, got, c.want)
		}
	}
}

// TestFaninLargeMessages: messages larger than a pipe's or a socket's
// buffer over two connections. A side that blocked writing one connection
// while the other side blocked echoing the other would never finish.
func TestFaninLargeMessages(t *testing.T) {
	p := build(t)
	for _, mode := range FaninModes {
		for _, size := range []int{128 << 10, 1 << 20} {
			ctx, cancel := context.WithTimeout(context.Background(), stopBound)
			r, err := p.Fanin(ctx, mode, 2, size, 8, Unpinned, "-w", "2")
			cancel()
			if err != nil {
				t.Errorf("%s, 2 connections, %d-byte messages: %v", mode, size, err)
				continue
			}
			if field(t, r, "checked") != 10 {
				t.Errorf("%s %d: %s: want checked=10", mode, size, r.Line)
			}
		}
	}
}
