package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/plot"
	"github.com/ipcbench/ipcbench/bench/report"
)

// errNoRecords is wrapped by the error for a raw file that holds a header
// and no record after it (a run stopped before its first case ended): like
// an empty file, it gives a command nothing to read, and is bad input.
var errNoRecords = errors.New("no records")

// withRecords returns read, refusing with an error wrapping errNoRecords
// the input in which count finds no record after the header.
func withRecords[T any](read func(io.Reader, string) (T, error), count func(T) int) func(io.Reader, string) (T, error) {
	return func(r io.Reader, source string) (T, error) {
		v, err := read(r, source)
		if err == nil && count(v) == 0 {
			var zero T
			return zero, fmt.Errorf("%s: %w, only a header (was its run stopped before its first record?)", source, errNoRecords)
		}
		return v, err
	}
}

// readResults is bench.ReadRecords refusing raw records without a result.
var readResults = withRecords(bench.ReadRecords, func(r *bench.Records) int { return len(r.Results) })

// readRuns reads raw-record files ("-" is standard input) with readInput
// and readResults.
func readRuns(ctx context.Context, e *env, paths []string) ([]*bench.Records, error) {
	if len(paths) == 0 {
		return nil, usagef("no raw-record files given")
	}
	if err := checkPaths(paths); err != nil {
		return nil, err
	}
	var runs []*bench.Records
	for _, p := range paths {
		rn, err := readInput(ctx, e, p, readResults)
		if err != nil {
			return nil, err
		}
		runs = append(runs, rn)
	}
	return runs, nil
}

// checkPaths returns a usage error for raw-record file names that cannot
// be what was meant: standard input ("-") twice, which can be read only
// once; an empty name; and a flag after the first file name, which the
// flag package takes for a file ("report run.jsonl -format csv") when no
// file of that name exists.
func checkPaths(paths []string) error {
	stdin := 0
	for _, p := range paths {
		switch {
		case p == "-":
			if stdin++; stdin == 2 {
				return usagef("- (standard input) given twice: it can be read only once")
			}
		case p == "":
			return usagef("empty file name")
		case strings.HasPrefix(p, "-"):
			if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
				return usagef("%s after a file name is taken for a file; flags go before file names", p)
			}
		}
	}
	return nil
}

// readInput parses the file at path ("-": standard input) with read; a
// file that cannot be opened or parsed is a usage error naming it.
// Cancelling ctx (SIGINT, SIGTERM) ends it at once, even while a read
// blocks (standard input from a pipe that says nothing): a read cannot be
// interrupted in the kernel, so the reading goroutine is left to end with
// its read, and readInput returns an error wrapping context.Canceled (exit
// 130).
func readInput[T any](ctx context.Context, e *env, path string, read func(io.Reader, string) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		if path == "-" {
			r.v, r.err = read(e.stdin, "stdin")
		} else {
			var f *os.File
			if f, r.err = os.Open(path); r.err == nil {
				if st, err := f.Stat(); err == nil && st.IsDir() {
					r.err = fmt.Errorf("%s is a directory, not a file of raw records", path)
				} else {
					r.v, r.err = read(f, path)
				}
				f.Close()
			}
		}
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return r.v, usagef("%v", r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("interrupted while reading %s: %w", path, ctx.Err())
	}
}

func cmdReport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "report", `[-format F] FILE...

Renders raw records (the JSON Lines that 'ipcbench run' writes; - reads
standard input) as a ranking per workload and size: medians of the repeats
with 95% confidence intervals, round-trip latency percentiles, throughput,
CPU per message, and the localhost-shortcut comparison.`,
		`  ipcbench report run.jsonl
  ipcbench report -format markdown run.jsonl > RESULTS.md
  ipcbench report -format benchfmt run.jsonl > run.bench && benchstat -col /transport run.bench
`)
	format := fs.String("format", "table", "output format: "+strings.Join(report.Formats(), ", "))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !contains(report.Formats(), *format) {
		return usagef("-format %q: unknown format (known: %s)", *format, strings.Join(report.Formats(), ", "))
	}
	runs, err := readRuns(ctx, e, fs.Args())
	if err != nil {
		return err
	}
	return report.Render(e.stdout, *format, runs...)
}

func cmdPlot(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "plot", `[-out DIR] FILE...

Draws SVG charts from raw records of the pingpong, stream and fanin
workloads (connect, rate and http are in the report only), for each
placement, one file each:
  pingpong-p50-vs-size-PLACEMENT.svg   round trip vs message size per transport (log axes)
  pingpong-cdf-SIZE-PLACEMENT.svg      round-trip latency CDF per transport at one size
  stream-mbps-vs-size-PLACEMENT.svg    stream throughput vs message size
  fanin-rate-vs-conns-PLACEMENT.svg    fanin message rate vs connection count
                                       (-SIZE-PLACEMENT, one per size, when the
                                       records hold fanin at several sizes)
Failed and skipped cases are not drawn (the report lists them). With more
than one FILE, each name starts with runN-SOURCE-. Prints the paths of the
files it wrote; with nothing to draw (no OK case of those workloads) it
writes nothing and exits 1.`,
		`  ipcbench plot run.jsonl                 # SVGs in ./plots
  ipcbench plot -out docs/img run.jsonl
`)
	out := fs.String("out", "plots", "directory to write the SVG files into; missing directories are created; a chart that exists already is an error without -force")
	force := fs.Bool("force", false, "replace existing chart files of the same names, each by a complete new one (never through a symbolic link)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Refused before the records are read: a file there is most likely
	// one of the records, given to -out by mistake.
	if fi, err := os.Stat(*out); err == nil && !fi.IsDir() {
		return usagef("-out %s: exists and is not a directory (plot writes one file per chart into a directory)", *out)
	}
	runs, err := readRuns(ctx, e, fs.Args())
	if err != nil {
		return err
	}
	paths, err := plot.Write(*out, *force, runs...)
	if errors.Is(err, os.ErrExist) {
		// Without package plot's "plot: ", which the command's name says.
		if *force { // what is there is not a regular file: -force does not replace it
			return usagef("-out: %s", message("plot", err))
		}
		return usagef("-out: %s (-force replaces existing charts)", message("plot", err))
	}
	var pe *os.PathError
	if errors.As(err, &pe) && len(paths) == 0 {
		return usagef("-out: cannot write the charts: %v", pe) // like run's unwritable -out
	}
	if err != nil {
		return err
	}
	for _, p := range paths {
		if _, err := fmt.Fprintln(e.stdout, p); err != nil {
			return err // the charts are written; their list is not
		}
	}
	return nil
}

func cmdCompare(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "compare", `OLD NEW

Compares two runs case by case: the median of each case's repeats in OLD and
NEW, the change, and a Mann-Whitney U test like benchstat's; "~" marks a
difference inside the noise. Compare runs from one machine and one sitting:
numbers from shared machines drift between sittings. Cases in one run only,
or with no OK repeat on one side, are listed; when that is every case, it
says so and exits 1.`,
		`  ipcbench compare before.jsonl after.jsonl
`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// A flag after the files is said to be one first, as report and plot
	// say it, not counted as a third file.
	if err := checkPaths(fs.Args()); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("takes exactly two raw-record files, OLD and NEW (got %d)", fs.NArg())
	}
	runs, err := readRuns(ctx, e, fs.Args())
	if err != nil {
		return err
	}
	return report.Compare(e.stdout, runs[0], runs[1])
}
