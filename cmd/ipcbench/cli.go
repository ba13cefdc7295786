package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Exit codes. They are part of the CLI's contract and documented in
// `ipcbench help`.
const (
	exitOK          = 0   // everything ran and every case passed
	exitFailure     = 1   // the run failed, some cases failed, or every case was skipped
	exitUsage       = 2   // bad command line or bad input file
	exitPeerStart   = 3   // no peer process could be started (each case was tried twice)
	exitLimits      = 4   // the address-space limit (ulimit -v) is below 4 GiB (limits.go)
	exitInterrupted = 130 // interrupted by SIGINT/SIGTERM
	exitOutputGone  = 141 // serve stopped because its stdout or stderr went away (128+SIGPIPE, as a shell reports a process SIGPIPE killed, as every other command is then)
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

Exit codes: 0 success; 1 run failed, some cases failed, or every case was
skipped (compare: no case with OK repeats in both runs); 2 usage error or bad input (a raw file with no
records, empty or a header alone, included); 3 no peer process could be
started; 4 the address-space limit (ulimit -v) is below 4 GiB, too small for
the Go runtime; 130 interrupted; 141 a write to stdout or stderr found it
gone (a pipe whose reader closed it before the last write:
'ipcbench report -format json big.jsonl | head -1'): like any
Unix filter, the command is killed by SIGPIPE (128+13), except serve, which
first stops as on SIGTERM, then exits 141 itself.
`

// printTopUsage writes the top-level help to w, returning the write's
// error.
func printTopUsage(w io.Writer) error {
	var b strings.Builder
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(&b, "  %-11s %s\n", c.name, c.summary)
		}
	}
	_, err := fmt.Fprintf(w, topUsage, b.String())
	return err
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
	switch {
	case helpWords[name]:
		if len(args) > 2 {
			fmt.Fprintf(stderr, "ipcbench help: unexpected argument %q (help takes one command name)\n", args[2])
			return exitUsage
		}
		if len(args) > 1 && !helpWords[args[1]] {
			// "help help", "-h -help": help's help is this text.
			return commandHelp(ctx, e, args[1])
		}
		if err := printTopUsage(stdout); err != nil {
			// As a command's failed write of its output: one line, exit 1.
			fmt.Fprintf(stderr, "ipcbench help: %v\n", err)
			return exitFailure
		}
		return exitOK
	case name == "-version" || name == "--version":
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

// helpWords are the spellings of help, as a command or its argument.
var helpWords = map[string]bool{"help": true, "-h": true, "-help": true, "--help": true}

// commandHelp is "ipcbench help NAME": NAME's -help, or for a hidden
// command, which has no help text, what it is.
func commandHelp(ctx context.Context, e *env, name string) int {
	for _, c := range commands() {
		if c.name == name && c.hidden {
			fmt.Fprintf(e.stderr, "ipcbench help: %s is %s; it has no help\n", name, c.summary)
			return exitUsage
		}
	}
	return run(ctx, []string{name, "-help"}, e.stdin, e.stdout, e.stderr)
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

// message returns err's text without leading "name: " and "report: ",
// which exitCode prints itself or which only name a package: errors of
// package report start with "report: " (and those of report.Compare with
// "report: compare: "), and `ipcbench compare` must not say "compare:
// report: compare:".
func message(name string, err error) string {
	msg := err.Error()
	for {
		trimmed := strings.TrimPrefix(strings.TrimPrefix(msg, "report: "), name+": ")
		if trimmed == msg {
			return msg
		}
		msg = trimmed
	}
}

// flagLed returns msg, an error about the value of flag fl ("-n"), with
// the flag named once: a msg that begins with the flag's own name or with
// one of the words its value goes by in a library's error (what: "count"
// for -n) followed by a space has them replaced by fl ("count 10 is too
// few" is "-n 10 is too few"); any other is put after "fl: ".
func flagLed(fl, msg string, what ...string) string {
	for _, w := range append(what, strings.TrimLeft(fl, "-")) { // "buffer size" before "buffer"
		if rest, ok := strings.CutPrefix(msg, w+" "); ok {
			return fl + " " + rest
		}
	}
	return fl + ": " + msg
}

// withoutSentinels returns err's text without the leading texts of
// sentinels, in any order: "bad question: bad options: transport unix
// given twice" is "transport unix given twice". The sentinels classify an
// error for programs (errors.Is), and say nothing to a user that the exit
// code does not.
func withoutSentinels(err error, sentinels ...error) string {
	msg := err.Error()
	for again := true; again; {
		again = false
		for _, s := range sentinels {
			if t := strings.TrimPrefix(msg, s.Error()+": "); t != msg {
				msg, again = t, true
			}
		}
	}
	return msg
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
	usage func() error // prints the usage text, returning the first failed write's error
}

// errWriter is a writer that remembers the first error of w's writes, for
// text written by code that drops them (flag.PrintDefaults).
type errWriter struct {
	w   io.Writer
	err error
}

// Write writes p to w, or fails at once after a write to w failed.
func (ew *errWriter) Write(p []byte) (int, error) {
	if ew.err != nil {
		return 0, ew.err
	}
	n, err := ew.w.Write(p)
	if err != nil {
		ew.err = err
	}
	return n, err
}

// newFlagSet returns a flagSet that reports errors instead of exiting, with
// a usage text of the command's synopsis, its flags and examples.
func newFlagSet(e *env, name, synopsis, examples string) *flagSet {
	fs := flag.NewFlagSet("ipcbench "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package calls it on every error
	return &flagSet{FlagSet: fs, usage: func() error {
		w := &errWriter{w: e.stdout}
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
		return w.err
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
// problem; -help prints the usage to stdout and returns flag.ErrHelp, or
// the write's error when stdout cannot take it (exit 1). A
// flag given twice, in one spelling or two (-d and -duration), is a usage
// error naming both as typed: the flag package would keep the last.
func parseFlags(fs *flagSet, args []string) error {
	once := giveOnce(fs.FlagSet)
	err := fs.Parse(args)
	once.restore()
	if once.twice != nil {
		return usagef("%s and %s: the same flag given twice; give it once (see '%s -help')", once.twice[0], once.twice[1], fs.Name())
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if werr := fs.usage(); werr != nil {
				return werr
			}
			return err
		}
		return usagef("%v%s (see '%s -help')", err, durationHint(fs, err), fs.Name())
	}
	return checkEmptyFlags(fs)
}

// onceFlags watches the flags of a FlagSet while it parses, for a flag
// given twice: every flag's Value is wrapped by a onceValue, and the
// spellings of one flag (-t and -transports, bound to one variable) share
// what was given first.
type onceFlags struct {
	fs    *flag.FlagSet
	saved map[string]flag.Value // each flag's own Value, for restore
	// twice holds the two spellings, with their values, of the first flag
	// given twice: "-d 100ms" and "-duration 200ms".
	twice []string
}

// onceValue is a flag's Value while the FlagSet parses: its first Set
// records the spelling, the second fails and records both.
type onceValue struct {
	flag.Value
	name  string
	first *string // the spelling given first of this flag or an alias; "" before
	o     *onceFlags
}

var errGivenTwice = errors.New("given twice")

// Set records the flag as given, or fails when it (or an alias) already was.
func (v *onceValue) Set(s string) error {
	typed := "-" + v.name
	switch {
	case v.IsBoolFlag() && s == "true":
	case v.IsBoolFlag():
		typed += "=" + s
	case s == "" || strings.ContainsAny(s, " \t\n\"'"):
		typed += " " + strconv.Quote(s)
	default:
		typed += " " + s
	}
	if *v.first != "" {
		if v.o.twice == nil {
			v.o.twice = []string{*v.first, typed}
		}
		return errGivenTwice
	}
	*v.first = typed
	return v.Value.Set(s)
}

// IsBoolFlag tells the flag package, as the wrapped Value would, that the
// flag takes no argument.
func (v *onceValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// giveOnce wraps every flag of fs until restore. Flags whose Values are one
// pointer (the flag package's StringVar, DurationVar, ... to one
// variable) are one flag in two spellings.
func giveOnce(fs *flag.FlagSet) *onceFlags {
	o := &onceFlags{fs: fs, saved: map[string]flag.Value{}}
	type key struct {
		t reflect.Type
		p uintptr
	}
	firsts := map[key]*string{}
	fs.VisitAll(func(fl *flag.Flag) {
		o.saved[fl.Name] = fl.Value
		first := new(string)
		if rv := reflect.ValueOf(fl.Value); rv.Kind() == reflect.Pointer {
			k := key{rv.Type(), rv.Pointer()}
			if f, ok := firsts[k]; ok {
				first = f
			} else {
				firsts[k] = first
			}
		}
		fl.Value = &onceValue{Value: fl.Value, name: fl.Name, first: first, o: o}
	})
	return o
}

// restore gives every flag its own Value again, for -help's defaults and
// the commands' Visit and Lookup.
func (o *onceFlags) restore() {
	o.fs.VisitAll(func(fl *flag.Flag) { fl.Value = o.saved[fl.Name] })
}

// badValue matches the flag package's error for a value a flag cannot
// parse, capturing the flag's name.
var badValue = regexp.MustCompile(`^invalid value ".*" for flag -([^:]+): `)

// durationHint returns a hint for err, a flag error, when it is about a
// duration flag's value: the flag package says only "parse error" for
// "-d 5", whose unit is missing.
func durationHint(fs *flagSet, err error) string {
	m := badValue.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	if fl := fs.Lookup(m[1]); fl != nil {
		if g, ok := fl.Value.(flag.Getter); ok {
			if _, ok := g.Get().(time.Duration); ok {
				return "; a duration needs a unit, like 5s, 500ms or 1m"
			}
		}
	}
	return ""
}

// pathFlags are the flags that name a file or directory, for the wording of
// checkEmptyFlags's error.
var pathFlags = map[string]bool{"from": true, "report": true, "out": true, "raw": true, "summary": true}

// listFlags are the flags whose value is a comma-separated list: one of
// commas alone ("-placement ,") is as empty as "".
var listFlags = map[string]bool{
	"t": true, "transports": true, "w": true, "workloads": true, "s": true, "sizes": true,
	"conns": true, "placement": true, "peer-model": true, "peer-source": true,
}

// checkEmptyFlags returns a usage error for a string flag given an empty
// value (or, for a list, commas alone). Such a value is most often an
// unset shell variable, and read as "not given" it would mean the
// default: choose -from or floor -report would then measure for minutes
// instead of reading a file, and run -placement "$P" the whole suite.
// Leaving the flag out is how to ask for its default.
func checkEmptyFlags(fs *flagSet) error {
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if err != nil {
			return
		}
		g, ok := fl.Value.(flag.Getter)
		if !ok {
			return
		}
		v, ok := g.Get().(string)
		if !ok {
			return
		}
		switch {
		case strings.TrimSpace(v) == "" && pathFlags[fl.Name]:
			err = usagef("-%s: empty path (see '%s -help')", fl.Name, fs.Name())
		case strings.TrimSpace(v) == "":
			err = usagef("-%s: empty value; give one, or leave the flag out for its default (see '%s -help')", fl.Name, fs.Name())
		case listFlags[fl.Name] && strings.TrimFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) == "":
			err = usagef("-%s %q: no value in the list; give one, or leave the flag out for its default (see '%s -help')", fl.Name, v, fs.Name())
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
	_, err := fmt.Fprintf(e.stdout, "ipcbench %s\n", version())
	return err
}
