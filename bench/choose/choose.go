// Package choose answers the question the transports library exists for:
// which transport should a program use, on this machine, for its messages?
//
// A Question names the traffic (round trip or one-way stream, or HTTP
// requests), the message size and optionally where the two processes run
// and how many connections share the server. New plans a short
// calibration run with the real runner (package bench): two real
// processes, every transport that can run here, six interleaved repeats,
// within a time budget (DefaultBudget). Run measures and ranks with the
// ranking of package bench/report, so the winner, the transports tied
// with it (~) and their intervals are the ones `ipcbench run` would
// report. FromRun answers from raw records measured earlier instead.
//
// The answer's Winner is a transport spec to paste into all.Listen and
// all.Dial (or `ipcbench run -t`). A variant that a transport marks as
// measurement-only (transports.MeasurementOnly, such as shm-ring's
// zerocopy=off) is never recommended.
//
// # The peer process in a program that imports this package
//
// A calibration runs a peer process. By default it is this program's own
// executable, started again without arguments; such a program must call
//
//	peer.RunIfPeer(all.Lookup)
//
// first in its main (package transports/peer): in the re-executed copy it
// serves as the peer and exits, in the original it returns at once. The
// program needs no ipcbench binary. Options.Peer names another executable
// instead (the ipcbench CLI sets its own path and the argument "peer").
//
// A program that forgets it runs its normal main in the copy, whose own
// calibration fails at once with peer.ErrStartFromPeer, starting nothing;
// the original's then fails with bench.ErrPeerStart, and its error quotes
// how the copy ended: its exit status and the end of its stderr.
package choose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/report"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
)

// Workloads a Question may name.
const (
	Pingpong = "pingpong" // request/response: one message each way, one at a time
	Stream   = "stream"   // one-way: messages sent as fast as the receiver takes them
	HTTP     = "http"     // net/http POST with a body of the size, echoed back, keep-alive on
)

// Defaults of a calibration.
const (
	// DefaultBudget is the wall time a calibration is planned to fit in;
	// New shortens the measured interval of each case to fit it.
	DefaultBudget = 25 * time.Second
	// DefaultRepeats is the repeats of every case: six, the fewest for
	// which the 95% intervals are finite and ~ is trustworthy
	// (report.MinRepeats).
	DefaultRepeats = report.MinRepeats
	// MaxDuration and MinDuration bound the measured interval New picks
	// for each case.
	MaxDuration = 300 * time.Millisecond
	MinDuration = 40 * time.Millisecond
	// DefaultWarmup precedes each measured interval.
	DefaultWarmup = 60 * time.Millisecond
	// caseOverhead is what a case costs besides its warm-up and measured
	// interval (the peer's start, listen, dial, the peer's exit): about
	// 25 ms on an idle 2-core machine, budgeted generously so that a busy
	// one still fits.
	caseOverhead = 120 * time.Millisecond
)

// Errors, tested with errors.Is.
var (
	// ErrBadQuestion means the Question or Options cannot be answered as
	// asked (unknown workload, size out of range, a bad placement or
	// transport spec, a peer that cannot be executed); nothing was
	// measured. Such an error is a *QuestionError, which names the field.
	ErrBadQuestion = errors.New("bad question")
	// ErrNoAnswer means nothing could be ranked: every transport was
	// skipped or failed, or the records hold no matching case.
	ErrNoAnswer = errors.New("no transport could be ranked")
)

// QuestionError is the error of New and FromRun for a bad Question or
// Options: Field names the field at fault, for a program to say which of
// its own settings is wrong (the ipcbench CLI maps "Size" to -s,
// "Placement" to -placement). It wraps ErrBadQuestion and Err.
type QuestionError struct {
	// Field is the field at fault: "Workload", "Size", "Placement" or
	// "Conns" of Question; "Transports", "Budget", "Duration", "Warmup",
	// "Repeats" or "Peer" of Options; "" when none alone is (bench.Options
	// refused what New made of them).
	Field string
	// Err says what is wrong, without ErrBadQuestion's text; it wraps the
	// error it comes from (bench.ErrBadOptions, transports.ErrBadSpec,
	// ...).
	Err error
}

// Error returns ErrBadQuestion's text and Err's: "bad question: workload
// "x": want pingpong, stream or http". Of a *bench.OptionError, Err's text
// is said without bench.ErrBadOptions's, which would only repeat what
// ErrBadQuestion says.
func (e *QuestionError) Error() string {
	msg := e.Err.Error()
	if oe, ok := e.Err.(*bench.OptionError); ok {
		msg = oe.Err.Error()
	}
	return ErrBadQuestion.Error() + ": " + msg
}

// Unwrap returns ErrBadQuestion and Err, for errors.Is and errors.As.
func (e *QuestionError) Unwrap() []error { return []error{ErrBadQuestion, e.Err} }

// badQuestion returns a *QuestionError for field, its Err formatted as
// fmt.Errorf formats it (%w included).
func badQuestion(field, format string, a ...any) error {
	return &QuestionError{Field: field, Err: fmt.Errorf(format, a...)}
}

// optionFields maps the fields of bench.Options that New sets to those of
// the Question and Options they come from.
var optionFields = map[string]string{
	"Transports": "Transports",
	"Workloads":  "Workload",
	"Sizes":      "Size",
	"FaninConns": "Conns",
	"Placements": "Placement",
	"Duration":   "Duration",
	"Warmup":     "Warmup",
	"Repeats":    "Repeats",
}

// badOptions returns the *QuestionError for err, an error of package bench
// (an *bench.OptionError names its field) or of resolving a transport
// spec (field Transports, given as fallback).
func badOptions(fallback string, err error) error {
	field := fallback
	var oe *bench.OptionError
	if errors.As(err, &oe) {
		field = optionFields[oe.Field]
	}
	return &QuestionError{Field: field, Err: err}
}

// Question is what a program asks.
type Question struct {
	// Workload is Pingpong (the default when empty), Stream or HTTP.
	Workload string `json:"workload"`
	// Size is the message size in bytes (the request and the response for
	// Pingpong and HTTP), 1..bench.MaxMessageSize (64 MiB).
	Size int `json:"size"`
	// Placement is where the two processes run, as `ipcbench run
	// -placement` takes it: "unpinned" (the default when empty),
	// "same-core", "cross-core" or "B/P" CPU lists like "0/1".
	Placement string `json:"placement,omitempty"`
	// Conns is how many connections share the one server process,
	// 1..bench.MaxFaninConns (1024); 0 means 1. More than one (Pingpong
	// only) measures the fanin workload, ranked by aggregate msg/s.
	Conns int `json:"conns,omitempty"`
}

// normalized returns q with defaults filled in and its placement parsed,
// or an error wrapping ErrBadQuestion.
func (q Question) normalized() (Question, bench.Placement, error) {
	if q.Workload == "" {
		q.Workload = Pingpong
	}
	if !slices.Contains([]string{Pingpong, Stream, HTTP}, q.Workload) {
		return q, bench.Placement{}, badQuestion("Workload", "workload %q: want %s, %s or %s", q.Workload, Pingpong, Stream, HTTP)
	}
	if q.Size <= 0 || q.Size > bench.MaxMessageSize {
		return q, bench.Placement{}, badQuestion("Size", "size %d out of range 1..%s", q.Size, bench.FormatSize(bench.MaxMessageSize))
	}
	if q.Conns == 0 {
		q.Conns = 1
	}
	if q.Conns < 0 || q.Conns > bench.MaxFaninConns {
		return q, bench.Placement{}, badQuestion("Conns", "conns %d out of range 1..%d", q.Conns, bench.MaxFaninConns)
	}
	if q.Conns > 1 && q.Workload != Pingpong {
		return q, bench.Placement{}, badQuestion("Conns", "%d connections: only %s can be asked with more than one connection (it is then measured as fanin)", q.Conns, Pingpong)
	}
	pl, err := bench.ParsePlacement(q.Placement)
	if err != nil {
		return q, bench.Placement{}, badOptions("Placement", err)
	}
	q.Placement = pl.Name
	return q, pl, nil
}

// benchWorkload is the runner's workload that answers q.
func (q Question) benchWorkload() string {
	if q.Conns > 1 {
		return "fanin"
	}
	return q.Workload
}

// Options tune a calibration. The zero value measures every transport of
// all.List (default variants) within DefaultBudget, with this program as
// its own peer (see the package documentation).
type Options struct {
	// Transports are the specs to measure ("unix", "shm-ring[wait=spin]"),
	// each a comma list as all.ResolveList takes it; empty means every
	// transport of all.List (tcp-public then uses this machine's first
	// non-loopback interface, as its Listen does). A measurement-only
	// variant is refused with ErrBadQuestion.
	Transports []string
	// Budget is the wall time the calibration is planned to fit in; 0
	// means DefaultBudget. It sets the measured interval of each case
	// (between MinDuration and MaxDuration) unless Duration is set. A
	// budget less than every case run's MinDuration and warm-up together
	// is refused with ErrBadQuestion: it cannot be met.
	Budget time.Duration
	// Duration and Warmup, when positive, fix the measured interval and
	// the warm-up of each case instead.
	Duration, Warmup time.Duration
	// Repeats of each case; 0 means DefaultRepeats. Fewer than six make
	// the intervals unbounded and ~ untrustworthy.
	Repeats int
	// Peer is the peer executable; empty means this program
	// (os.Executable), which must call peer.RunIfPeer first in its main
	// (see the package documentation for what happens if it does not).
	// A name without a slash is looked up in PATH. New refuses, with
	// ErrBadQuestion, a Peer that is not a regular file this user may
	// execute. PeerArgs are its arguments (the ipcbench CLI: "peer").
	Peer     string
	PeerArgs []string
	// Records, when not nil, receives the raw records of the calibration
	// (JSON Lines, as `ipcbench run -out` writes them), for `ipcbench
	// report` or a later FromRun.
	Records io.Writer
	// Header is written as the records' header (Tool, Network, ...); the
	// runner fills in its type, version and options.
	Header bench.Header
}

// Calibration is a planned calibration run. Its Progress can be read from
// any goroutine while Run is in progress.
type Calibration struct {
	q       Question
	runner  *bench.Runner
	records io.Writer
	header  bench.Header
}

// New checks q and o and plans the calibration, without measuring
// anything. Every error is a *QuestionError, wrapping ErrBadQuestion.
func New(q Question, o Options) (*Calibration, error) {
	q, pl, err := q.normalized()
	if err != nil {
		return nil, err
	}
	specs := o.Transports
	if len(specs) == 0 {
		specs = all.Names()
	}
	var trs []bench.TransportSpec
	for _, s := range specs {
		rs, err := all.ResolveList(s)
		if err != nil {
			return nil, badOptions("Transports", err)
		}
		for _, r := range rs {
			if mo := transports.MeasurementOnlyOption(r.Transport, r.Spec.Options); mo != "" {
				return nil, badQuestion("Transports", "%s: option %s is measurement-only and never a choice", r.Spec, mo)
			}
			trs = append(trs, bench.TransportSpec{Transport: r.Transport, Options: r.Spec.Options})
		}
	}
	if err := checkPeer(o.Peer); err != nil {
		return nil, err
	}
	repeats := o.Repeats
	if repeats == 0 {
		repeats = DefaultRepeats
	}
	if repeats < 0 {
		return nil, badQuestion("Repeats", "repeats %d must be positive", repeats)
	}
	for _, d := range []struct {
		field, what string
		v           time.Duration
	}{{"Budget", "budget", o.Budget}, {"Duration", "duration", o.Duration}, {"Warmup", "warm-up", o.Warmup}} {
		if d.v < 0 {
			return nil, badQuestion(d.field, "%s %v must not be negative", d.what, d.v)
		}
	}
	warmup := o.Warmup
	if warmup == 0 {
		warmup = DefaultWarmup
	}
	duration := o.Duration
	if duration == 0 {
		runs := len(trs) * repeats
		if least := time.Duration(runs) * (MinDuration + warmup); o.Budget > 0 && o.Budget < least {
			what := "transports"
			if len(trs) == 1 {
				what = "transport"
			}
			// What the caller can change: more budget, and fewer of
			// what there is more than one of and it chose itself (the
			// command line has no repeats to give).
			var fewer []string
			if len(trs) > 1 {
				fewer = append(fewer, "transports")
			}
			if o.Repeats > 1 {
				fewer = append(fewer, "repeats")
			}
			advice := "give more"
			if len(fewer) > 0 {
				advice += ", or fewer " + strings.Join(fewer, " or ")
			}
			return nil, badQuestion("Budget", "budget %v is less than the %v that %d case runs (%d repeats of %d %s) take at the least, each %v measured after %v of warm-up; %s",
				o.Budget, least, runs, repeats, len(trs), what, MinDuration, warmup, advice)
		}
		duration = FitDuration(o.Budget, runs, warmup)
	}
	bo := bench.Options{
		Transports: trs,
		Workloads:  []string{q.benchWorkload()},
		Sizes:      []int{q.Size},
		FaninConns: []int{q.Conns},
		Duration:   duration,
		Warmup:     warmup,
		Repeats:    repeats,
		Placements: []bench.Placement{pl},
	}
	bo.Peer.Path, bo.Peer.Args = o.Peer, o.PeerArgs // an empty Path is this program (proc.Spec)
	r, err := bench.NewRunner(bo)
	if err != nil {
		return nil, badOptions("", err)
	}
	return &Calibration{q: q, runner: r, records: o.Records, header: o.Header}, nil
}

// checkPeer returns a *QuestionError for Peer, naming path and
// why, unless path (Options.Peer) is empty (this program) or names a
// regular file this user may execute: a name without a slash is looked
// up in PATH, as the peer's start does.
func checkPeer(path string) error {
	if path == "" {
		return nil
	}
	if !strings.Contains(path, "/") {
		if _, err := exec.LookPath(path); err != nil {
			var ee *exec.Error
			if errors.As(err, &ee) {
				err = ee.Err
			}
			return badQuestion("Peer", "peer %s: %w", path, err)
		}
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return badQuestion("Peer", "peer %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return badQuestion("Peer", "peer %s: not a regular file (mode %s)", path, fi.Mode())
	}
	if err := unix.Faccessat(unix.AT_FDCWD, path, unix.X_OK, unix.AT_EACCESS); err != nil {
		return badQuestion("Peer", "peer %s: not executable by this user: %w", path, err)
	}
	return nil
}

// FitDuration returns the measured interval of each of cases case runs
// (each after warmup) that makes them fit in budget (0: DefaultBudget),
// between MinDuration and MaxDuration.
func FitDuration(budget time.Duration, cases int, warmup time.Duration) time.Duration {
	if budget <= 0 {
		budget = DefaultBudget
	}
	if cases <= 0 {
		return MaxDuration
	}
	d := budget/time.Duration(cases) - warmup - caseOverhead
	return min(max(d, MinDuration), MaxDuration)
}

// Question returns the question as it will be answered (defaults filled
// in, the placement's canonical name).
func (c *Calibration) Question() Question { return c.q }

// Options returns the runner's effective options: the transports, the
// measured interval, the warm-up and the repeats of each case.
func (c *Calibration) Options() bench.Options { return c.runner.Options() }

// Progress returns how many case runs have finished, how many there are,
// and the case in progress. It is safe to call from any goroutine.
func (c *Calibration) Progress() (done, total int, label string) { return c.runner.Progress() }

// Run measures and answers. Cases that fail or whose transport cannot run
// here are listed in Answer.NotRanked with the reason; the error is nil
// as long as at least one transport was ranked (ErrNoAnswer otherwise). A
// cancelled ctx stops the run, as does a failed write to Options.Records
// (the error then wraps the writer's); an error wrapping
// bench.ErrPeerStart means the peer could not be started at all, and says
// why the first case's peer did not start (a program that did not call
// peer.RunIfPeer first in its main fails this way; in the copy started as
// its peer, Run fails at once with peer.ErrStartFromPeer as well).
func (c *Calibration) Run(ctx context.Context) (*Answer, error) {
	start := time.Now()
	out := c.records
	if out == nil {
		out = io.Discard
	}
	recs, err := c.runner.Run(ctx, c.header, out)
	measuredSome := errors.Is(err, bench.ErrCasesFailed) && !errors.Is(err, bench.ErrPeerStart)
	if err != nil && !measuredSome && !errors.Is(err, bench.ErrNothingMeasured) {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	a, err := answer(c.q, recs.Results, CalibrationSource)
	if err != nil {
		return nil, err
	}
	a.Elapsed = time.Since(start)
	o := c.runner.Options()
	a.Duration, a.Warmup = o.Duration, o.Warmup
	return a, nil
}

// Measure is New followed by Run.
func Measure(ctx context.Context, q Question, o Options) (*Answer, error) {
	c, err := New(q, o)
	if err != nil {
		return nil, err
	}
	return c.Run(ctx)
}
