package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// ErrPeerStart is wrapped by the error of a case whose peer process could
// not be started, even on a second try, and by Run's when no case of the
// run could start its peer, which usually means the executable or its
// environment is broken rather than a transport; the CLI maps the latter to
// its own exit code. It is the error the peer's start itself wraps.
var ErrPeerStart = proc.ErrPeerStart

// ErrCasesFailed is returned by Run (wrapped) when the run completed but at
// least one case failed; the failed results are in the raw records.
var ErrCasesFailed = errors.New("cases failed")

// ErrNothingMeasured is returned by Run (wrapped) when the run completed
// and every case was skipped (the transport cannot run here, or the case
// is another one's under a second name): no case failed, and none
// measured anything. The skipped results, each with its reason, are in the
// raw records.
var ErrNothingMeasured = errors.New("nothing was measured")

// CaseSpec is one planned case: a workload over one transport at one size,
// connection count and placement. Repeats of it share the spec.
type CaseSpec struct {
	Workload  string
	Transport TransportSpec
	Size      int
	Conns     int
	Rate      int
	Placement Placement
}

// Label is a short human description of the case for progress displays.
func (c CaseSpec) Label() string {
	s := c.Workload + " " + c.Transport.Label() + " " + FormatSize(c.Size)
	if c.Conns > 1 {
		s += " ×" + strconv.Itoa(c.Conns)
	}
	if c.Placement.Name != "unpinned" {
		s += " " + c.Placement.Name
	}
	return s
}

// Runner runs a benchmark plan. Its counters can be read concurrently
// (Progress) while Run is in progress.
type Runner struct {
	opts Options
	// timeoutGiven: Options.CaseTimeout was given, not the default (the
	// header then records it).
	timeoutGiven bool
	plan         []CaseSpec
	done         atomic.Int64
	label        atomic.Value // string

	// peersStarted counts the peer processes started (see Run's error).
	peersStarted int

	// beforePeerStart, when set (by tests), is called just before every
	// attempt to start a case's peer process.
	beforePeerStart func()
	// onPeerStart, when set (by tests), is called with the peer's PID as
	// soon as the peer of a case has started; faults tests use it to kill
	// or stop the peer at a chosen moment.
	onPeerStart func(pid int)
	// peerJob, when set (by tests), may change a case's serve job before it
	// is sent, so that the peer rejects or corrupts what it gets.
	peerJob func(*peer.Job)
	// onCaseEnd, when set (by tests), is called by Run with every result
	// as soon as it is recorded.
	onCaseEnd func(Result)
	// onMeasure, when set (by benchmarks), is called with true as the
	// measured interval begins and false as it ends, so a testing.B can
	// time (and count the allocations of) only the measured loops.
	onMeasure func(start bool)
	// noCPUSampler, when set (by allocation tests), leaves out the sampler
	// of where the processes run: it reads /proc, which allocates at its
	// own pace (about 20 samples/s), independent of the message rate.
	noCPUSampler bool
	// onListen, when set (by tests), is called with the case's endpoint as
	// soon as the bench listens, before the peer starts: the stranger
	// tests connect to it first.
	onListen func(ep transports.Endpoint)
	// admitTimeout bounds how long a connection may take to prove it
	// comes from the peer (peer.Admit); 0 means peer.AdmitTimeout.
	admitTimeout time.Duration
	// stallAfter, in count mode without a CaseTimeout of the caller's, is
	// how long a case may measure no message before it times out (see
	// caseRun.watchStall); 0: the case's timeout is CaseTimeout, fixed.
	stallAfter time.Duration
}

// countStall is the stall window of count mode's default timeout: a case
// fails once this long passes in which no loop measured a message.
const countStall = time.Minute

// NewRunner validates opts, fills in defaults and plans the cases.
func NewRunner(opts Options) (*Runner, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Runner{opts: o, timeoutGiven: opts.CaseTimeout > 0}
	firstCPUs() // before any case pins this process
	if opts.Count > 0 && opts.CaseTimeout == 0 {
		r.stallAfter = countStall
	}
	r.plan = r.makePlan()
	r.label.Store("")
	return r, nil
}

// Options returns the effective options (defaults filled in).
func (r *Runner) Options() Options { return r.opts }

// Plan returns the cases of one repeat, in the order they run.
func (r *Runner) Plan() []CaseSpec { return r.plan }

// Total is the number of case runs: the plan times the repeats.
func (r *Runner) Total() int { return len(r.plan) * r.opts.Repeats }

// Progress returns how many case runs have finished, the total, and the
// label of the case in progress. It is safe to call from any goroutine.
func (r *Runner) Progress() (done, total int, label string) {
	return int(r.done.Load()), r.Total(), r.label.Load().(string)
}

func (r *Runner) makePlan() []CaseSpec {
	var plan []CaseSpec
	for _, pl := range r.opts.Placements {
		for _, wn := range r.opts.Workloads {
			w := workloadByName(wn)
			sizes := r.opts.Sizes
			if w.smallOnly {
				sizes = sizes[:1]
			}
			conns := []int{1}
			if w.multiConn {
				conns = r.opts.FaninConns
			}
			for _, size := range sizes {
				for _, c := range conns {
					for _, tr := range r.opts.Transports {
						cs := CaseSpec{Workload: wn, Transport: tr, Size: size, Conns: c, Placement: pl}
						if wn == "rate" {
							cs.Rate = r.opts.Rate
						}
						plan = append(plan, cs)
					}
				}
			}
		}
	}
	return plan
}

// Run executes every case Repeats times, interleaved (the whole plan once,
// then again), writing the header and then one Result per case run to out
// as JSON Lines (see RecordWriter) as soon as each is known, so an
// interrupted run keeps what it measured. It returns the records it wrote:
// the header, with its Type, Version and (when hdr has none) Options filled
// in, and the results.
//
// A case that fails, including one whose peer could not be started even on
// a second try, is recorded as failed with its reason and the run goes on;
// the error then wraps ErrCasesFailed, and ErrPeerStart as well when no
// case could start its peer at all (the executable or the machine is
// broken, not a transport). A run whose every case was skipped returns an
// error wrapping ErrNothingMeasured. A case during which this process was stopped
// and continued (Ctrl-Z, then fg) runs again, up to twice, since its
// timings, or its failure, took in the stop; after that it is recorded as
// failed, with a reason that says so. A cancelled ctx stops the run after
// the case in progress is cleaned up and recorded; the error then wraps
// ctx.Err(). When no case could start its peer, the error also gives the
// reason of the first (the peer's exit status and the end of its stderr,
// when it ran). Errors point at the raw records for the reasons of the
// failed cases, unless out is io.Discard (a caller that keeps none; the
// returned Records still hold them).
//
// A process that was itself started as a peer (a program that did not call
// peer.RunIfPeer first in main) starts no peer: unless Options.Remote is
// set, Run then fails at once, with an error wrapping ErrPeerStart and
// peer.ErrStartFromPeer, having written and measured nothing.
func (r *Runner) Run(ctx context.Context, hdr Header, out io.Writer) (*Records, error) {
	if r.opts.Remote == nil {
		if err := proc.CheckStart(); err != nil {
			return nil, err
		}
	}
	see := " (see the raw records)"
	if out == io.Discard {
		see = ""
	}
	w := NewRecordWriter(out)
	if hdr.Options == nil {
		hdr.Options = r.opts.Describe()
		if r.timeoutGiven {
			// It decides which cases fail; the default follows from the
			// others.
			hdr.Options["case_timeout"] = r.opts.CaseTimeout.String()
		}
	}
	if err := w.WriteHeader(&hdr); err != nil {
		return nil, err
	}
	recs := &Records{Header: hdr}
	failed, startFailed, skipped := 0, 0, 0
	firstStartFailure := "" // the reason of the first case whose peer did not start
	startedBefore := r.peersStarted
	interrupted := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("run interrupted after %d of %d cases: %w", r.done.Load(), r.Total(), err)
		}
		return nil
	}
	for rep := 0; rep < r.opts.Repeats; rep++ {
		for _, cs := range r.plan {
			if err := interrupted(); err != nil {
				return recs, err
			}
			r.label.Store(cs.Label() + " (repeat " + strconv.Itoa(rep+1) + "/" + strconv.Itoa(r.opts.Repeats) + ")")
			res, err := r.RunCase(ctx, cs, rep)
			if res.Status == StatusFailed && ctx.Err() != nil {
				// Its error is the interrupt's echo (a deadline, a canceled wait), not a fault of the case.
				res.Reason = InterruptedReason + res.Reason
			}
			if errors.Is(err, ErrPeerStart) {
				startFailed++
				if firstStartFailure == "" {
					firstStartFailure = res.Reason
				}
			}
			switch res.Status {
			case StatusFailed:
				failed++
			case StatusSkipped:
				skipped++
			}
			recs.Results = append(recs.Results, res)
			if err := w.WriteResult(&recs.Results[len(recs.Results)-1]); err != nil {
				return recs, err
			}
			r.done.Add(1)
			if r.onCaseEnd != nil {
				r.onCaseEnd(res)
			}
			gone, silent := errors.Is(err, errServerGone), errors.Is(err, errServerSilent)
			if rm := r.opts.Remote; rm != nil && (gone || silent) && ctx.Err() == nil {
				// Every case left would fail the same way.
				r.label.Store("")
				why := "is gone (nobody listens there any more)"
				if !gone {
					why = "does not answer (no route to it, or a connect or hello it did not answer in time)"
				}
				err := casesFailed(fmt.Errorf("%d of %d case runs failed%s; the server at %s %s",
					failed, len(recs.Results), see, rm.Address, why))
				if left := r.Total() - int(r.done.Load()); left > 0 {
					err = fmt.Errorf("%w, so the %d case runs left were not run", err, left)
				}
				return recs, err
			}
		}
	}
	r.label.Store("")
	if err := interrupted(); err != nil {
		return recs, err // the last case was interrupted
	}
	switch {
	case startFailed > 0 && r.peersStarted == startedBefore:
		return recs, casesFailed(fmt.Errorf("%d of %d case runs failed%s: %w in every case; the first: %s",
			failed, len(recs.Results), see, ErrPeerStart, withoutPeerStart(firstStartFailure)))
	case failed > 0:
		return recs, casesFailed(fmt.Errorf("%d of %d case runs failed%s", failed, len(recs.Results), see))
	case skipped > 0 && skipped == len(recs.Results):
		what := fmt.Sprintf("all %d case runs were skipped", skipped)
		if skipped == 1 {
			what = "the one case run was skipped"
		}
		return recs, fmt.Errorf("%w: %s%s; the first: %s", ErrNothingMeasured, what, see, recs.Results[0].Reason)
	}
	return recs, nil
}

// withoutPeerStart returns reason, a failed case's, without the words of
// ErrPeerStart after its transport, which Run's error says already:
// "unix: /x/peer (pid 7): exited before the handshake: ...", not "unix:
// peer failed to start: /x/peer ...".
func withoutPeerStart(reason string) string {
	return strings.Replace(reason, ": "+ErrPeerStart.Error()+": ", ": ", 1)
}

// casesFailedError is Run's error when cases failed: err says so in
// words, and it wraps ErrCasesFailed too without its text, which would
// say it again ("2 of 2 case runs failed: cases failed").
type casesFailedError struct{ err error }

// casesFailed returns a *casesFailedError saying err and wrapping
// ErrCasesFailed and err.
func casesFailed(err error) error { return &casesFailedError{err} }

// Error returns err's text.
func (e *casesFailedError) Error() string { return e.err.Error() }

// Unwrap returns ErrCasesFailed and err.
func (e *casesFailedError) Unwrap() []error { return []error{ErrCasesFailed, e.err} }

// RunCase runs a single case and returns its result: once, or again, up
// to twice, when this process or the peer was stopped and continued
// during it (see Run). It is what Run does for every planned case; tests
// and callers that want one number use it directly. The error is nil for
// an OK or skipped case, else the failure (wrapping ErrPeerStart when the
// peer could not be started, and ErrSelfStopped or ErrPeerStopped when
// this process or the peer was stopped during each run of the case).
func (r *Runner) RunCase(ctx context.Context, cs CaseSpec, repeat int) (Result, error) {
	res, err := r.runCase(ctx, cs, repeat)
	for try := 0; try < selfStopRetries && (errors.Is(err, ErrSelfStopped) || errors.Is(err, ErrPeerStopped)) && ctx.Err() == nil; try++ {
		// This process (Ctrl-Z) or the peer was stopped and continued:
		// the case's numbers, or its timeout, took in the stop; it runs
		// again.
		res, err = r.runCase(ctx, cs, repeat)
	}
	return res, err
}
