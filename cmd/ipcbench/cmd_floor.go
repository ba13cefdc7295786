package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/floor"
	"github.com/ipcbench/ipcbench/internal/progress"
	"github.com/ipcbench/ipcbench/internal/units"
)

const floorSynopsis = `[flags]
       ipcbench floor -report FILE [-out FILE [-force]]

Measures what Go and ipcbench cost on this machine: it builds small C
programs that do the bare minimum for each mechanism between two processes
(the floor), and runs them and the matching ipcbench cases interleaved, in
one run, on the same placements. Every measurement goes to -raw as JSON
Lines: a header like every raw file of 'ipcbench run' (machine, kernel, CPU,
Go version, options, tool version), then one record per measurement. It
prints, and writes to -out, a Markdown table of the medians and the ratio
ipcbench/C for each pair, with the target each ratio is held to. Needs a C
compiler (cc, gcc or clang); without one it says so and exits 0. Runs on the
host's own loopback (no private namespace: every pair is local).

-report FILE measures nothing: it renders the table from a raw file that
'ipcbench floor -raw' wrote ('make results' makes results/floor.md so);
the flags that shape a measurement (-n, -repeats, -stream-bytes, -fanin-n,
-only, -q, -raw) are refused with it.

Pairs: pingpong 64 B over pipe, unix and tcp-localhost, each through Go's
netpoller and with io=raw (same-core, cross-core, unpinned), against C
round trips over blocking descriptors (one write and one read per hop);
shm-ring's wait strategies against C spin, spin-then-futex and futex round
trips; shm-lock against a process-shared mutex and condition variable;
stream 64 KiB against C sending the same length-prefixed frames with writev,
and shm-ring (also zerocopy=off) against a C shared-memory ring; stream
1 MiB for shm-ring and unix; fanin of 1 KiB at 1, 4, 16 and 64 connections
for pipe, unix, tcp-localhost and shm-ring against a C one-process epoll
echo server. Like ipcbench, the C programs check every byte they move; the
C stream reads up to 256 KiB at a time, starts its clock after 100 ms of
warm-up, and its ring holds 1 MiB as shm-ring's does.`

const floorExamples = `  ipcbench floor                                     # about 5 minutes; the table on stdout
  ipcbench floor -force -out results/floor.md -raw results/floor.jsonl   # what 'make floor' runs
  ipcbench floor -report results/floor.jsonl         # the table again, from the raw records
  ipcbench floor -repeats 9 -n 50000                 # steadier medians
  ipcbench floor -only '^fanin/' -raw fanin.jsonl    # only the fanin pairs
`

// maxStreamBytes is the most bytes of floor's -stream-bytes.
const maxStreamBytes int64 = 1 << 40

func cmdFloor(ctx context.Context, e *env, args []string) (err error) {
	defer func() {
		// An interrupt ends floor with exit 130 whatever it interrupted
		// (a compiler, a C program, an ipcbench case).
		// The terminal's SIGINT reaches the compiler or C program in the
		// same process group at once, and its failure can be seen before
		// this process's own signal has cancelled ctx: a child killed by
		// SIGINT or SIGTERM counts as the interrupt too.
		if err != nil && (ctx.Err() != nil || killedByInterrupt(err)) {
			err = &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: %w", err)}
		}
	}()
	fs := newFlagSet(e, "floor", floorSynopsis, floorExamples)
	cfg := floor.Config{}
	fs.IntVar(&cfg.Repeats, "repeats", floor.DefaultRepeats, fmt.Sprintf("runs of each pair per side, interleaved (the table shows medians); at most %d", bench.MaxRepeats))
	fs.IntVar(&cfg.PingPongN, "n", floor.DefaultPingPongN, fmt.Sprintf("round trips per pingpong run, at least %d and at most %d", floor.MinPingPongN, bench.MaxCount))
	streamBytes := fs.String("stream-bytes", bench.FormatSize(floor.DefaultStreamBytes), fmt.Sprintf("bytes per stream run, at least %s and at most %s", bench.FormatSize(floor.MinStreamBytes), units.FormatBytes(maxStreamBytes)))
	fs.Int64Var(&cfg.FaninN, "fanin-n", floor.DefaultFaninN, fmt.Sprintf("round trips per fanin run, over all its connections; at least %d (one per connection of the largest pair) and at most %d", floor.MinFaninN(), bench.MaxCount))
	out := fs.String("out", "", "also write the Markdown table to this new file (see -force); missing directories are created")
	raw := fs.String("raw", "", "write the raw records (header, then every measurement) as JSON Lines to this new file (see -force); missing directories are created")
	force := fs.Bool("force", false, "replace existing -out and -raw files, each once the new one is complete (never through a symbolic link)")
	report := fs.String("report", "", "measure nothing: render the table from this raw file (- for stdin)")
	only := fs.String("only", "", "measure only the pairs whose name (workload/variant/size/conns/placement, as in fanin/unix/1KiB/16/unpinned) this regular expression matches")
	quiet := fs.Bool("q", false, "no progress display")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *report != "" {
		// What shapes or shows a measurement would promise, with -report,
		// what does not happen: refused, like choose -from's.
		var measuring []string
		fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "repeats", "n", "stream-bytes", "fanin-n", "raw", "only", "q":
				measuring = append(measuring, "-"+fl.Name)
			}
		})
		if len(measuring) > 0 {
			return usagef("%s: only a measuring floor uses it; -report renders the table from the file's records", strings.Join(measuring, ", "))
		}
		return floorReport(ctx, e, *report, *out, *force)
	}
	if cfg.StreamBytes, err = bench.ParseSize64(*streamBytes, maxStreamBytes); err != nil {
		return usagef("-stream-bytes: %v", err)
	}
	if err := cfg.Check(); err != nil {
		return floorConfigError(err)
	}
	if *out != "" && *raw != "" && sameFile(*out, *raw) {
		return usagef("-out and -raw both name %s: the table would take the records' place", *raw)
	}
	pairs := floor.Pairs(floor.TwoCPUs())
	if *only != "" {
		if pairs, err = floor.Select(pairs, *only); err != nil {
			return usagef("-only: %s", withoutSentinels(err, floor.ErrBadConfig))
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable to start peers: %w", err)
	}
	cfg.PeerPath, cfg.PeerArgs = exe, []string{"peer"}
	if _, err := floor.Compiler(); err != nil {
		fmt.Fprintf(e.stderr, "ipcbench floor: skipped: %v\n", err)
		return nil
	}

	// The outputs are created before any work, so that a name that cannot
	// be written is a usage error at once. They take their names only
	// when complete: the table never if the run does not finish, the raw
	// records measured so far if their name was free (like run's), and an
	// existing file -force would replace stays as it was.
	var tableFile, rawFile *bench.Output
	if *out != "" {
		if tableFile, err = createOutput("-out", *out, *force); err != nil {
			return err
		}
		defer tableFile.Abort()
	}
	rawOut := io.Discard
	if *raw != "" {
		if rawFile, err = createOutput("-raw", *raw, *force); err != nil {
			return err
		}
		defer rawFile.Abort() // after the Keep below, or Commit: nothing (for a panic)
		defer func() {
			if err != nil {
				keepRecords(e, "floor", rawFile) // nothing after Commit
			}
		}()
		rawOut = rawFile
	}
	dir, err := os.MkdirTemp("", "ipcbench-floor-")
	if err != nil {
		return fmt.Errorf("a directory to build the C programs in: %w", err)
	}
	defer os.RemoveAll(dir)
	progs, err := floor.Build(ctx, dir)
	if err != nil {
		return err
	}
	exp, err := floor.New(cfg, progs, pairs)
	if err != nil {
		return err
	}
	hdr := newHeader("floor", args)
	hdr.Network = "host"
	hdr.NetworkNote = "the floor runs on the host's loopback: every pair is local to the machine"
	hdr.Options = cfg.Describe()
	hdr.Options["c_compiler"] = progs.CompilerVersion
	w, err := floor.NewWriter(rawOut, hdr)
	if err != nil {
		return err
	}
	var disp *progress.Display
	if !*quiet {
		disp = progress.Start(e.stderr, true, progress.DefaultInterval, func() progress.Snapshot {
			d, t, l := exp.Progress()
			return progress.Snapshot{Done: d, Total: t, Label: l}
		})
	}
	runErr := exp.Run(ctx, w.Write)
	if disp != nil {
		disp.Stop()
	}
	if rawFile != nil && runErr == nil {
		runErr = rawFile.Commit()
	}
	switch {
	case runErr != nil && errors.Is(runErr, bench.ErrPeerStart):
		return &exitError{code: exitPeerStart, err: runErr}
	case runErr != nil:
		return runErr
	}
	return writeFloorTable(e, &w.File, tableFile)
}

// floorReport renders the table of the raw file at path ("-": stdin),
// and writes it to out too when that is set.
// floorFlags are the flags of floor that set the fields of floor.Config
// a *floor.ConfigError names.
var floorFlags = map[string]string{
	"Repeats":     "-repeats",
	"PingPongN":   "-n",
	"StreamBytes": "-stream-bytes",
	"FaninN":      "-fanin-n",
}

// floorConfigError is the usage error for err, floor.Config.Check's,
// naming the flag of the field at fault once, without ErrBadConfig's
// text: "-n: 5 round trips per pingpong: ...", and "-repeats 0: ..."
// where the text starts with the flag's name ("repeats 0: ...").
func floorConfigError(err error) error {
	msg := withoutSentinels(err, floor.ErrBadConfig)
	var ce *floor.ConfigError
	if errors.As(err, &ce) {
		if fl, ok := floorFlags[ce.Field]; ok {
			return usagef("%s", flagLed(fl, msg))
		}
	}
	return usagef("%s", msg)
}

func floorReport(ctx context.Context, e *env, path, out string, force bool) error {
	var o *bench.Output
	if out != "" {
		var err error
		if o, err = createOutput("-out", out, force); err != nil {
			return err
		}
		defer o.Abort()
	}
	f, err := readInput(ctx, e, path, withRecords(floor.Read, func(f *floor.File) int { return len(f.Records) }))
	var ue *usageError
	if errors.As(err, &ue) {
		return usagef("-report: %s", ue.msg)
	}
	if err != nil {
		return err
	}
	return writeFloorTable(e, f, o)
}

// writeFloorTable writes the table to o, when o is not nil, and commits
// o, then prints it: the file first, so that a standard output whose
// reader is gone (SIGPIPE ends the process) cannot leave it half made.
func writeFloorTable(e *env, f *floor.File, o *bench.Output) error {
	var b strings.Builder
	if err := floor.Table(&b, f); err != nil {
		return err
	}
	if o != nil {
		if _, err := io.WriteString(o, b.String()); err != nil {
			return fmt.Errorf("writing the table to %s: %w", o.Name(), err)
		}
		if err := o.Commit(); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(e.stdout, b.String()); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

// killedByInterrupt reports whether err comes from a child process that
// SIGINT or SIGTERM ended.
func killedByInterrupt(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && (ws.Signal() == syscall.SIGINT || ws.Signal() == syscall.SIGTERM)
}
