package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes. They are part of the CLI's contract and documented in
// `ipcbench help`.
const (
	exitOK          = 0   // everything ran and every case passed
	exitFailure     = 1   // the run failed, or some cases failed
	exitUsage       = 2   // bad command line or bad input file
	exitPeerStart   = 3   // no peer process could be started (each case was tried twice)
	exitLimits      = 4   // the address-space limit (ulimit -v) is below 4 GiB (limits.go)
	exitInterrupted = 130 // interrupted by SIGINT/SIGTERM
)

// signalContext returns a context cancelled by SIGINT or SIGTERM.
func signalContext() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return ctx
}

// env is the process state a command sees. Everything is injected so the
// CLI is testable in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// usageError is a command-line mistake: it is printed as one line and exits
// with exitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

type command struct {
	name    string
	summary string
	hidden  bool
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{name: "run", summary: "run benchmark workloads over transports and print the ranking", run: cmdRun},
		{name: "serve", summary: "run the peer as a stand-alone server for 'run -connect' and echo clients", run: cmdServe},
		{name: "report", summary: "render raw records as a table, Markdown, CSV, JSON or Go benchmark format", run: cmdReport},
		{name: "plot", summary: "draw SVG charts from raw records", run: cmdPlot},
		{name: "choose", summary: "which transport is fastest here for a workload and message size: a short calibration, or from raw records", run: cmdChoose},
		{name: "compare", summary: "compare two runs case by case, with a significance test", run: cmdCompare},
		{name: "floor", summary: "compare ipcbench with C programs doing the bare minimum per mechanism (needs a C compiler)", run: cmdFloor},
		{name: "transports", summary: "list the transports and whether each can run here", run: cmdTransports},
		{name: "version", summary: "print the version", run: cmdVersion},
		{name: "peer", summary: "internal: the peer process (started by ipcbench itself)", hidden: true, run: cmdPeer},
	}
}

const topUsage = `ipcbench measures and ranks local inter-process communication.

Usage:
  ipcbench <command> [flags] [args]

Commands:
%s
Examples:
  ipcbench run                                   # the default suite; ranking on stdout
  ipcbench run -t unix,pipe -w pingpong -s 64,1k # a few cases
  ipcbench report -format markdown out/run.jsonl # a report for docs
  ipcbench compare old.jsonl new.jsonl           # what changed, and whether it is noise
  ipcbench choose -w pingpong -s 4k              # which transport for 4 KiB request/response here?

Run 'ipcbench <command> -help' for a command's flags and examples.

Exit codes: 0 success; 1 run failed or some cases failed; 2 usage error or bad
input (a raw file with no records, empty or a header alone, included); 3 no
peer process could be started; 4 the address-space limit (ulimit -v) is below
4 GiB, too small for the Go runtime; 130 interrupted.
`

func printTopUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(&b, "  %-11s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, topUsage, b.String())
}

// run is the whole CLI: it parses args, runs one command and returns the
// process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printTopUsage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 2 {
			fmt.Fprintf(stderr, "ipcbench help: unexpected argument %q (help takes one command name)\n", args[2])
			return exitUsage
		}
		if len(args) > 1 {
			return run(ctx, []string{args[1], "-help"}, stdin, stdout, stderr)
		}
		printTopUsage(stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, e, args[1:])
			return exitCode(e, name, err)
		}
	}
	fmt.Fprintf(stderr, "ipcbench: unknown command %q (run 'ipcbench help' for the list)\n", name)
	return exitUsage
}

// exitCode prints err (one line, prefixed by the command) and maps it to an
// exit code.
func exitCode(e *env, name string, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(e.stderr, "ipcbench %s: %s\n", name, message(name, ee.err))
		}
		return ee.code
	}
	fmt.Fprintf(e.stderr, "ipcbench %s: %s\n", name, message(name, err))
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailure
}

// message returns err's text without a leading "name: ", which exitCode
// prints itself: errors of package report start with "report: ", and
// `ipcbench report` must not say "report: report:".
func message(name string, err error) string {
	return strings.TrimPrefix(err.Error(), name+": ")
}

// exitError carries an explicit exit code (and an optional message).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// flagSet is a FlagSet whose usage text is printed only for -help: a flag
// error is one line on stderr, never the whole usage.
type flagSet struct {
	*flag.FlagSet
	usage func()
}

// newFlagSet returns a flagSet that reports errors instead of exiting, with
// a usage text of the command's synopsis, its flags and examples.
func newFlagSet(e *env, name, synopsis, examples string) *flagSet {
	fs := flag.NewFlagSet("ipcbench "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package calls it on every error
	return &flagSet{FlagSet: fs, usage: func() {
		w := e.stdout
		sep := " "
		if synopsis == "" || synopsis[0] == '\n' {
			sep = "" // no arguments: nothing after the name
		}
		fmt.Fprintf(w, "Usage: ipcbench %s%s%s\n", name, sep, synopsis)
		if hasFlags(fs) { // a command without flags has no Flags section
			fmt.Fprintln(w, "\nFlags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
		if examples != "" {
			fmt.Fprintf(w, "\nExamples:\n%s", examples)
		}
	}}
}

// hasFlags reports whether fs defines any flag.
func hasFlags(fs *flag.FlagSet) bool {
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	return has
}

// parseFlagsOnly is parseFlags for a command that takes no arguments but
// its flags: an argument left over is a usage error naming it.
func parseFlagsOnly(fs *flagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return nil
	case hasFlags(fs.FlagSet):
		return usagef("unexpected argument %q (flags only; see '%s -help')", fs.Arg(0), fs.Name())
	}
	return usagef("unexpected argument %q (%s takes none)", fs.Arg(0), fs.Name())
}

// parseFlags parses args and turns flag errors into usage errors naming the
// problem; -help prints the usage to stdout and returns flag.ErrHelp.
func parseFlags(fs *flagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.usage()
			return err
		}
		return usagef("%v (see '%s -help')", err, fs.Name())
	}
	return checkPathFlags(fs)
}

// pathFlags are the flags that name a file or directory. Given as an empty
// string (an unset shell variable, say), such a flag would read as not
// given at all, and choose -from or floor -report would then measure for
// minutes instead of reading a file, so an empty one is a usage error.
var pathFlags = map[string]bool{"from": true, "report": true, "out": true, "raw": true}

// checkPathFlags returns a usage error for a path flag set to "".
func checkPathFlags(fs *flagSet) error {
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if err == nil && pathFlags[fl.Name] && fl.Value.String() == "" {
			err = usagef("-%s: empty path (see '%s -help')", fl.Name, fs.Name())
		}
	})
	return err
}

func cmdVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "version", `

Prints this binary's version: the commit it was built from (a release's
module version before it; "-dirty" after it when the Go toolchain recorded
uncommitted changes), or "unknown". Raw-record headers record the same
after "ipcbench ".`, "")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ipcbench %s\n", version())
	return nil
}
