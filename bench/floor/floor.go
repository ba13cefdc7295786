// Package floor is the C floor experiment: it builds C programs that do
// the least each IPC mechanism needs between two processes, runs them
// interleaved with the matching ipcbench cases on the same placements, and
// renders the ratios ipcbench/C as a table. The numbers are the floor Go
// and the toolkit are held against, measured in one run on one machine
// (`ipcbench floor`, `make floor`).
//
// The C sources (csrc/, embedded in the binary) are the project's own:
//
//   - pingpong times round trips of one message: over blocking
//     descriptors (pipe, unix, tcp; one write and one read per hop) and
//     over shared memory waiting by busy-wait (spin), sleep (futex),
//     busy-wait then sleep (spinfutex) or a process-shared mutex and
//     condition variable (pshared);
//   - stream times one-way throughput over blocking descriptors, with
//     -v as length-prefixed frames gathered by writev, and through a
//     shared-memory ring (ring-spin, ring-futex), after a warm-up as long
//     as ipcbench's; its consumer reads as much at a time as ipcbench's
//     sink;
//   - fanin drives many connections, each a closed request/echo loop,
//     against a one-process epoll echo server (pipe, unix, tcp).
//
// Each program prints one line "RESULT mode key=value ..." and checks what
// it moved as ipcbench's Go side does: every message carries the stamp
// (connection and sequence number) and pattern of internal/frame's
// payloads, the receiver checks every byte of it, and streams end with the
// consumer's count of bytes and messages.
//
// A floor run's raw records are a JSON Lines file like every raw file of
// ipcbench: a bench.Header, then one Record per measurement (see Writer and
// Read); Table renders the Markdown table from such a file alone.
package floor

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipcbench/ipcbench/bench"
)

//go:embed csrc/*.c csrc/*.h
var sources embed.FS

// programNames are the C programs Build compiles, one per csrc/NAME.c.
var programNames = []string{"pingpong", "stream", "fanin"}

// ErrNoCompiler means no C compiler (cc, gcc or clang) is on PATH: the
// floor cannot be built here.
var ErrNoCompiler = errors.New("no C compiler (cc, gcc or clang) on PATH")

// ErrBadOutput is wrapped when a program's output has no well-formed
// RESULT line.
var ErrBadOutput = errors.New("floor program printed no well-formed RESULT line")

// ErrUnknownMode is wrapped when a mode is not one the program has.
var ErrUnknownMode = errors.New("unknown floor mode")

// RunTimeout bounds one run of a C program of the default work
// (DefaultPingPongN or DefaultFaninN round trips, DefaultStreamBytes): a
// program that hangs (a lost wake-up, a peer that died) fails its pair
// instead of stopping the floor. A run asked for k times that work gets k
// times as long, at most bench.MaxCaseTimeout.
const RunTimeout = 2 * time.Minute

// runTimeout is RunTimeout for work where the default is dflt.
func runTimeout(work, dflt int64) time.Duration {
	k := max(1, (work+dflt-1)/dflt)
	if k >= int64(bench.MaxCaseTimeout/RunTimeout) {
		return bench.MaxCaseTimeout
	}
	return time.Duration(k) * RunTimeout
}

// Programs are built floor executables.
type Programs struct {
	Dir      string // where the executables are
	Compiler string // the compiler that built them (a path)
	// CompilerVersion is the first line of `Compiler --version`.
	CompilerVersion string
}

// Compiler returns the path of the first C compiler found on PATH, or an
// error wrapping ErrNoCompiler.
func Compiler() (string, error) {
	for _, name := range []string{"cc", "gcc", "clang"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoCompiler
}

// Build writes the embedded sources into dir and compiles pingpong, stream
// and fanin there with -O2. It returns an error wrapping ErrNoCompiler when
// there is no compiler.
func Build(ctx context.Context, dir string) (Programs, error) {
	cc, err := Compiler()
	if err != nil {
		return Programs{}, err
	}
	ents, err := sources.ReadDir("csrc")
	if err != nil {
		return Programs{}, fmt.Errorf("floor: reading embedded sources: %w", err)
	}
	for _, e := range ents {
		b, err := sources.ReadFile("csrc/" + e.Name())
		if err != nil {
			return Programs{}, fmt.Errorf("floor: reading embedded %s: %w", e.Name(), err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			return Programs{}, fmt.Errorf("floor: writing sources: %w", err)
		}
	}
	for _, p := range programNames {
		cmd := exec.CommandContext(ctx, cc, "-O2", "-std=gnu11", "-pthread", "-o", filepath.Join(dir, p), filepath.Join(dir, p+".c"))
		if out, err := cmd.CombinedOutput(); err != nil {
			return Programs{}, fmt.Errorf("floor: compiling %s.c with %s: %w\n%s", p, cc, err, out)
		}
	}
	version := filepath.Base(cc)
	if out, err := exec.CommandContext(ctx, cc, "--version").Output(); err == nil {
		if l := firstLine(out); l != "" {
			version = l
		}
	}
	return Programs{Dir: dir, Compiler: cc, CompilerVersion: version}, nil
}

// Result is one RESULT line: the mode and its key=value fields.
type Result struct {
	Mode   string
	Fields map[string]string
	Line   string // the line as printed
}

// Float returns field key as a number; the error wraps ErrBadOutput when
// the field is missing or not a finite number (NaN and infinities are not
// results).
func (r Result) Float(key string) (float64, error) {
	v, ok := r.Fields[key]
	if !ok {
		return 0, fmt.Errorf("%w: %q has no %s", ErrBadOutput, r.Line, key)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w: %q: %s=%q is not a finite number", ErrBadOutput, r.Line, key, v)
	}
	return f, nil
}

// Positive returns field key as Float does, and an error wrapping
// ErrBadOutput when it is not above zero: a measured time, rate or
// throughput is.
func (r Result) Positive(key string) (float64, error) {
	f, err := r.Float(key)
	if err == nil && !(f > 0) {
		err = fmt.Errorf("%w: %q: %s=%s is not above zero", ErrBadOutput, r.Line, key, r.Fields[key])
	}
	return f, err
}

// ParseResult finds the RESULT line in a program's output and parses it;
// the error wraps ErrBadOutput when there is none or it is malformed (a
// field without "=", a key given twice).
func ParseResult(out []byte) (Result, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "RESULT" {
			continue
		}
		r := Result{Mode: f[1], Fields: map[string]string{}, Line: sc.Text()}
		for _, kv := range f[2:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return Result{}, fmt.Errorf("%w: field %q in %q", ErrBadOutput, kv, sc.Text())
			}
			if _, dup := r.Fields[k]; dup {
				return Result{}, fmt.Errorf("%w: field %s twice in %q", ErrBadOutput, k, sc.Text())
			}
			r.Fields[k] = v
		}
		return r, nil
	}
	return Result{}, fmt.Errorf("%w: %q", ErrBadOutput, firstLine(out))
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// Pin places the two processes of a floor program: CPU numbers for the
// parent (A, the side that drives and times) and the child (B), or -1 to
// leave one to the scheduler.
type Pin struct{ A, B int }

// Unpinned leaves both processes to the scheduler.
var Unpinned = Pin{-1, -1}

func (p Pin) args() []string {
	if p.A < 0 || p.B < 0 {
		return nil
	}
	return []string{"-a", strconv.Itoa(p.A), "-b", strconv.Itoa(p.B)}
}

// The modes of each program.
var (
	PingPongModes = []string{"pipe", "unix", "tcp", "spin", "futex", "spinfutex", "pshared"}
	StreamModes   = []string{"pipe", "unix", "tcp", "ring-spin", "ring-futex"}
	FaninModes    = []string{"pipe", "unix", "tcp"}
)

func checkMode(prog, mode string, modes []string) error {
	if !slices.Contains(modes, mode) {
		return fmt.Errorf("floor: %s: %w %q (want one of %s)", prog, ErrUnknownMode, mode, strings.Join(modes, ", "))
	}
	return nil
}

// PingPong runs `pingpong mode -s size -n iters` with pin and extra
// arguments; the result holds p50_ns, mean_ns, other percentiles and
// checked (round trips whose echo was verified).
func (p Programs) PingPong(ctx context.Context, mode string, size, iters int, pin Pin, extra ...string) (Result, error) {
	if err := checkMode("pingpong", mode, PingPongModes); err != nil {
		return Result{}, err
	}
	args := append([]string{mode, "-s", strconv.Itoa(size), "-n", strconv.Itoa(iters)}, pin.args()...)
	return p.run(ctx, runTimeout(int64(iters), DefaultPingPongN), "pingpong", mode, append(args, extra...))
}

// Stream runs `stream mode -m msg -t total -w ms` with pin and extra
// arguments (-v: length-prefixed frames sent with writev), the clock
// starting after a warm-up as long as the one before every ipcbench case
// (-w); the result holds MBps (10^6 bytes/s), bytes and msgs (what the
// consumer counted after the warm-up).
func (p Programs) Stream(ctx context.Context, mode string, msg, total int64, pin Pin, extra ...string) (Result, error) {
	if err := checkMode("stream", mode, StreamModes); err != nil {
		return Result{}, err
	}
	args := append([]string{mode, "-m", strconv.FormatInt(msg, 10), "-t", strconv.FormatInt(total, 10),
		"-w", strconv.FormatInt(warmup.Milliseconds(), 10)}, pin.args()...)
	return p.run(ctx, runTimeout(total, DefaultStreamBytes), "stream", mode, append(args, extra...))
}

// Fanin runs `fanin mode -c conns -s size -n n` with pin: n round trips
// over conns connections against a one-process echo server; the result
// holds msgs_per_s, p50_ns and checked.
func (p Programs) Fanin(ctx context.Context, mode string, conns, size int, n int64, pin Pin, extra ...string) (Result, error) {
	if err := checkMode("fanin", mode, FaninModes); err != nil {
		return Result{}, err
	}
	args := append([]string{mode, "-c", strconv.Itoa(conns), "-s", strconv.Itoa(size), "-n", strconv.FormatInt(n, 10)}, pin.args()...)
	return p.run(ctx, runTimeout(n, DefaultFaninN), "fanin", mode, append(args, extra...))
}

// waitDelay is how long run waits, after the program was killed (its
// context ended), for its output pipes to close: a process the program
// forked may still hold them. Such a process dies with its parent
// (PR_SET_PDEATHSIG), so this only bounds the wait.
const waitDelay = 5 * time.Second

// run runs prog with args for at most timeout; its RESULT line must be of
// mode (an error wrapping ErrBadOutput otherwise). The program dies with this
// process (Pdeathsig, from a goroutine locked to its thread, since the
// signal follows the thread that forked), and its own child dies with it.
func (p Programs) run(parent context.Context, timeout time.Duration, prog, mode string, args []string) (Result, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(p.Dir, prog), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = waitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan error, 1)
	go func() {
		// Locked until the program has been reaped: the thread that
		// forked it cannot exit while it runs (its exit would fire
		// Pdeathsig).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		done <- cmd.Run()
	}()
	if err := <-done; err != nil {
		msg := firstLine(stderr.Bytes())
		switch {
		case parent.Err() != nil:
			err = fmt.Errorf("%w (%w)", err, parent.Err())
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (no result within %v: %w)", err, timeout, ctx.Err())
		}
		if msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return Result{}, fmt.Errorf("floor: %s %s: %w", prog, strings.Join(args, " "), err)
	}
	r, err := ParseResult(stdout.Bytes())
	if err == nil && r.Mode != mode {
		err = fmt.Errorf("%w: %q is a result of mode %s, want %s", ErrBadOutput, r.Line, r.Mode, mode)
	}
	if err != nil {
		return Result{}, fmt.Errorf("floor: %s %s: %w", prog, strings.Join(args, " "), err)
	}
	return r, nil
}
