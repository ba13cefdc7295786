// Package floor builds and runs the C floor programs: the bare minimum
// each IPC mechanism needs between two processes (fork), written in C,
// timed with the TSC. They set the bar ipcbench's Go transports are
// compared against, as ratios measured in the same run on the same
// machine (see `ipcbench floor` and `make floor`).
//
// The sources (csrc/, embedded in the binary) started from the team's
// shared floor programs: pingpong.c times round trips (modes pipe, unix,
// tcp, futex, spinfutex, spin, pshared, ...), stream.c times one-way
// throughput (pipe, unix, tcp, shmring, shmringf), memcpy_bw.c measures
// copy bandwidth. Each prints one "RESULT mode key=value ..." line.
package floor

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

//go:embed csrc/*.c csrc/*.h
var sources embed.FS

// ErrNoCompiler means no C compiler (cc, gcc or clang) is on PATH: the
// floor cannot be built here.
var ErrNoCompiler = errors.New("no C compiler (cc, gcc or clang) on PATH")

// ErrBadOutput is wrapped when a program's output has no well-formed
// RESULT line.
var ErrBadOutput = errors.New("floor program printed no well-formed RESULT line")

// Programs are built floor executables.
type Programs struct {
	Dir      string // where the executables are
	Compiler string // the compiler that built them
}

// Compiler returns the path of the first C compiler found on PATH.
func Compiler() (string, error) {
	for _, name := range []string{"cc", "gcc", "clang"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoCompiler
}

// Build writes the embedded sources into dir and compiles pingpong, stream
// and memcpy_bw there with -O2. It returns an error wrapping ErrNoCompiler
// when there is no compiler.
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
			return Programs{}, fmt.Errorf("floor: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			return Programs{}, fmt.Errorf("floor: writing sources: %w", err)
		}
	}
	for _, p := range []string{"pingpong", "stream", "memcpy_bw"} {
		cmd := exec.CommandContext(ctx, cc, "-O2", "-pthread", "-o", filepath.Join(dir, p), filepath.Join(dir, p+".c"))
		if out, err := cmd.CombinedOutput(); err != nil {
			return Programs{}, fmt.Errorf("floor: compiling %s.c with %s: %w\n%s", p, cc, err, out)
		}
	}
	return Programs{Dir: dir, Compiler: cc}, nil
}

// Result is one RESULT line: the mode and its key=value fields.
type Result struct {
	Mode   string
	Fields map[string]string
	Line   string // the line as printed
}

// Float returns field key as a number.
func (r Result) Float(key string) (float64, error) {
	v, ok := r.Fields[key]
	if !ok {
		return 0, fmt.Errorf("%w: %q has no %s", ErrBadOutput, r.Line, key)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %s=%q is not a number", ErrBadOutput, r.Line, key, v)
	}
	return f, nil
}

// ParseResult finds the RESULT line in a program's output and parses it.
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
// parent (A) and the child (B), or -1 to leave one to the scheduler.
type Pin struct{ A, B int }

// Unpinned leaves both processes to the scheduler.
var Unpinned = Pin{-1, -1}

func (p Pin) args() []string {
	if p.A < 0 || p.B < 0 {
		return nil
	}
	return []string{"-a", strconv.Itoa(p.A), "-b", strconv.Itoa(p.B)}
}

// Modes the programs understand (the C programs do not reject others).
var (
	PingPongModes = []string{"spin1", "spin", "futex", "spinfutex", "pshared", "eventfd", "pipe", "unix", "tcp"}
	StreamModes   = []string{"pipe", "unix", "tcp", "shmring", "shmringf"}
)

// ErrUnknownMode is wrapped when a mode is not one the program has.
var ErrUnknownMode = errors.New("unknown floor mode")

func checkMode(prog, mode string, modes []string) error {
	if !slices.Contains(modes, mode) {
		return fmt.Errorf("floor: %s: %w %q (want one of %s)", prog, ErrUnknownMode, mode, strings.Join(modes, ", "))
	}
	return nil
}

// PingPong runs `pingpong mode -s size -n iters` with pin and extra
// arguments; the result holds p50_ns, mean_rtt_ns and other percentiles.
func (p Programs) PingPong(ctx context.Context, mode string, size, iters int, pin Pin, extra ...string) (Result, error) {
	if err := checkMode("pingpong", mode, PingPongModes); err != nil {
		return Result{}, err
	}
	args := append([]string{mode, "-s", strconv.Itoa(size), "-n", strconv.Itoa(iters)}, pin.args()...)
	return p.run(ctx, "pingpong", append(args, extra...))
}

// Stream runs `stream mode -m msg -t total` with pin; the result holds
// GBps (10^9 bytes/s).
func (p Programs) Stream(ctx context.Context, mode string, msg, total int64, pin Pin) (Result, error) {
	if err := checkMode("stream", mode, StreamModes); err != nil {
		return Result{}, err
	}
	args := append([]string{mode, "-m", strconv.FormatInt(msg, 10), "-t", strconv.FormatInt(total, 10)}, pin.args()...)
	return p.run(ctx, "stream", args)
}

func (p Programs) run(ctx context.Context, prog string, args []string) (Result, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(p.Dir, prog), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("floor: %s %s: %w: %s", prog, strings.Join(args, " "), err, firstLine(out))
	}
	r, err := ParseResult(out)
	if err != nil {
		return Result{}, fmt.Errorf("floor: %s %s: %w", prog, strings.Join(args, " "), err)
	}
	return r, nil
}
